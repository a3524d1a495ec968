"""The registry fold of units' own links (link.issued, link.revoked): the plan bounds live
links, a code is taken once, and folding the same log again (a restart, a replay, the other
runtime) gives the same links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import (
    CampaignDefined,
    LinkIssued,
    LinkRevoked,
    decode_event,
    encode_event,
)
from tests.helpers import campaign_definition

T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def defined(planned_links: int) -> CampaignDefined:
    d = campaign_definition("c1")
    d["units"][1]["planned_links"] = planned_links  # gx-net holds one link from the file
    return CampaignDefined(campaign="c1", defined_at=T0,
                           definition=CampaignDefinition.model_validate(d))


def issued(code: str, unit: str = "gx-net", minutes: int = 1) -> LinkIssued:
    return LinkIssued(campaign="c1", link_code=code, unit=unit, channel="wechat",
                      issued_at=T0 + dt.timedelta(minutes=minutes))


def fold(events: Sequence[object]) -> Registry:
    registry = Registry()
    for event in events:
        registry.apply(decode_event(encode_event(event)))  # type: ignore[arg-type]
    return registry


def test_planned_links_defaults_to_ten() -> None:
    definition = CampaignDefinition.model_validate(campaign_definition("c1"))
    assert {u.planned_links for u in definition.units} == {10}


def test_issue_past_the_plan_is_not_folded() -> None:
    """Catches a fold that trusts the API's check alone: two processes racing past the plan."""
    registry = fold([defined(3), issued("AAAA0001"), issued("AAAA0002"), issued("AAAA0003")])
    state = registry.get("c1")
    assert state is not None
    assert [lk.code for lk in state.live_links("gx-net")] == ["Gx1aB2cD", "AAAA0001", "AAAA0002"]
    assert "AAAA0003" not in state.links and state.links_left("gx-net") == 0


def test_revoking_frees_room_and_a_code_is_taken_once() -> None:
    registry = fold([
        defined(2), issued("AAAA0001"),
        LinkRevoked(campaign="c1", link_code="AAAA0001", revoked_at=T0 + dt.timedelta(hours=1)),
        issued("AAAA0001", unit="gd-cyber", minutes=90),  # a reused code: ignored
        issued("AAAA0002", minutes=91),
    ])
    state = registry.get("c1")
    assert state is not None
    assert state.links["AAAA0001"].unit == "gx-net"
    assert state.link_revoked_at("AAAA0001", T0 + dt.timedelta(hours=2))
    assert not state.link_revoked_at("AAAA0001", T0 + dt.timedelta(minutes=30))
    assert state.links["AAAA0002"].issued_at == T0 + dt.timedelta(minutes=91)
    assert state.attribute("AAAA0002") is not None


def test_a_redefinition_keeps_issued_links_and_folding_again_agrees() -> None:
    log = [defined(5), issued("AAAA0001"), issued("AAAA0002", minutes=2),
           LinkRevoked(campaign="c1", link_code="AAAA0002", revoked_at=T0 + dt.timedelta(hours=1)),
           defined(5)]
    first, second = fold(log), fold(log)
    a, b = first.get("c1"), second.get("c1")
    assert a is not None and b is not None
    assert a.links == b.links
    assert {"AAAA0001", "AAAA0002"} <= set(a.links)
    assert a.links["AAAA0002"].revoked_at is not None
