"""Which campaign a link code opens, and the statuses of the page routes (in-process)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import pages
from api.app import build_api
from api.pages import find_link, json_for_script
from api.services import Services
from core.counting import Count
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined
from tests.helpers import campaign_definition

NOW = dt.datetime.now(dt.UTC)


class _NoCounts:
    def unit_counts(self, campaign: str) -> dict[str, Count]:
        return {}


def _registry(*definitions: dict[str, Any]) -> Registry:
    registry = Registry()
    for d in definitions:
        defn = CampaignDefinition.model_validate(d)
        registry.apply(CampaignDefined(campaign=defn.campaign, defined_at=NOW, definition=defn))
    return registry


def _client(registry: Registry) -> TestClient:
    async def define(definition: CampaignDefinition) -> None:
        return None

    services = Services(registry=registry, store=_NoCounts(),  # type: ignore[arg-type]
                        admin_token="", define_campaign=define, ready=lambda: True)
    return TestClient(build_api(services))


def _shifted(campaign: str, days: int) -> dict[str, Any]:
    d = campaign_definition(campaign, today_phase="none")
    for phase in d["phases"]:
        for key in ("start", "end"):
            phase[key] = str(dt.date.fromisoformat(phase[key]) + dt.timedelta(days=days))
    return d


def test_the_campaign_whose_phase_covers_today_wins_over_a_newer_one() -> None:
    future = _shifted("future", 60)  # newer, but not open today
    for order in ((campaign_definition("open"), future), (future, campaign_definition("open"))):
        state = find_link(_registry(*order), "Gd7kQ2xP", NOW)
        assert state is not None and state.definition.campaign == "open"


def test_without_a_current_phase_the_newest_campaign_wins() -> None:
    old, new = _shifted("old", 0), _shifted("new", 5)
    for order in ((new, old), (old, new)):
        state = find_link(_registry(*order), "Gd7kQ2xP", NOW)
        assert state is not None and state.definition.campaign == "new"
    assert find_link(_registry(old), "NoSuch12", NOW) is None


@pytest.mark.parametrize(("path", "status"), [
    ("/s/Gd7kQ2xP", 200), ("/s/NoSuch12", 404), ("/s/Sh9zY8xR", 410), ("/s/..%2F..", 404),
    ("/display/c1", 200), ("/display/nope", 404), ("/display/%3Cx%3E", 404),
    ("/static/survey.js", 200), ("/static/display.css", 200), ("/static/nope.js", 404),
])
def test_page_routes_answer_html_with_the_right_status(path: str, status: int) -> None:
    r = _client(_registry(campaign_definition("c1"))).get(path)
    assert r.status_code == status
    if path.startswith(("/s/", "/display/")):
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_revoked_link_answers_410_even_when_another_campaign_has_it_live() -> None:
    # The covering campaign is chosen first; its own revocation decides.
    r = _client(_registry(campaign_definition("c1"))).get("/s/Sh9zY8xR")
    assert r.status_code == 410 and "链接已停用" in r.text


def test_a_failing_page_is_an_html_500_without_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> str:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pages, "_answering_page", broken)
    monkeypatch.setattr(pages, "_display_page", broken)
    client = _client(_registry(campaign_definition("c1")))
    for path in ("/s/Gd7kQ2xP", "/display/c1"):
        r = client.get(path)
        assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
        assert "secret internals" not in r.text and "Traceback" not in r.text


def test_script_data_cannot_close_its_script_element() -> None:
    text = json_for_script({"x": "</script><!-- & <b>"})
    assert "<" not in text and ">" not in text and "&" not in text
