"""Loading a changed campaign definition is an update; revocations count from when loaded."""

from __future__ import annotations

import datetime as dt

from core.registry import Registry
from schemas.events import CampaignDefined, LinkRevoked

UTC = dt.UTC
RELOADED_AT = dt.datetime(2023, 9, 16, tzinfo=UTC)


def test_reloading_a_changed_definition_adds_links_and_units(
    make_campaign_dict, make_campaign, make_registry, make_submission, judge_stream
) -> None:
    data = make_campaign_dict()
    units = [*data["units"], {"id": "gz-vol", "name": "广州志愿者队", "kind": "volunteer",
                              "province": "44", "planned_samples": 50}]
    links = [*data["links"], {"code": "GzNew001", "unit": "gz-vol", "channel": "qr"}]
    registry = make_registry(make_campaign(), (make_campaign(units=units, links=links),
                                               RELOADED_AT))
    before = make_submission(link_code="GzNew001",
                             received_at=dt.datetime(2023, 9, 14, tzinfo=UTC))
    after = make_submission(link_code="GzNew001",
                            received_at=dt.datetime(2023, 9, 17, tzinfo=UTC))

    # The registry as it stands decides: the link is known once the update is folded in.
    verdicts = [j for j, _ in judge_stream(registry, [before, after])]
    assert all((v.status, v.unit, v.province, v.work_region) ==
               ("accepted", "gz-vol", "44", "south") for v in verdicts)
    assert "gz-vol" in registry.get("2023").units


def test_link_unknown_before_the_update_is_known_after_it(
    make_campaign_dict, make_campaign, make_submission, judge_one
) -> None:
    registry = Registry()
    first = make_campaign()
    registry.apply(CampaignDefined(campaign="2023", defined_at=dt.datetime(2023, 9, 1,
                                   tzinfo=UTC), definition=first))
    sheet = make_submission(link_code="GzNew001")
    assert judge_one(sheet, registry).reasons == ("unknown_link",)

    links = [*make_campaign_dict()["links"], {"code": "GzNew001", "unit": "gd-uni"}]
    registry.apply(CampaignDefined(campaign="2023", defined_at=RELOADED_AT,
                                   definition=make_campaign(links=links)))
    judged = judge_one(make_submission(link_code="GzNew001"), registry)
    assert (judged.status, judged.unit) == ("accepted", "gd-uni")


def test_links_left_out_of_a_reload_keep_working(
    make_campaign_dict, make_campaign, make_registry, make_submission, judge_one
) -> None:
    links = [lk for lk in make_campaign_dict()["links"] if lk["code"] != "Sh9zY8xW"]
    registry = make_registry(make_campaign(), (make_campaign(links=links), RELOADED_AT))
    judged = judge_one(make_submission(link_code="Sh9zY8xW",
                                       received_at=dt.datetime(2023, 9, 18, tzinfo=UTC)),
                       registry)
    assert (judged.status, judged.unit) == ("accepted", "sh-vol")


def test_earlier_questionnaire_versions_stay_valid_after_a_new_one(
    make_campaign_dict, make_campaign, make_registry, make_submission, judge_one
) -> None:
    questionnaire = make_campaign_dict()["questionnaire"]
    questionnaire["version"] = "2023.2"
    questionnaire["questions"][3]["max_length"] = 10
    registry = make_registry(make_campaign(), (make_campaign(questionnaire=questionnaire),
                                               RELOADED_AT))
    old = judge_one(make_submission(answers={"q4": "a longer free text"}), registry)
    new = judge_one(make_submission(questionnaire_version="2023.2",
                                    answers={"q4": "a longer free text"}), registry)
    assert (old.status, old.reasons) == ("accepted", ())
    assert (new.status, new.reasons) == ("rejected", ("invalid_answer",))


def test_revoking_a_link_in_a_reload_stops_it_counting_from_then_on(
    make_campaign_dict, make_campaign, make_registry
) -> None:
    links = make_campaign_dict()["links"]
    links[3]["revoked"] = True  # Gx1aB2cD
    registry = make_registry(make_campaign(), (make_campaign(links=links), RELOADED_AT))
    state = registry.get("2023")
    assert not state.link_revoked_at("Gx1aB2cD", RELOADED_AT - dt.timedelta(microseconds=1))
    assert state.link_revoked_at("Gx1aB2cD", RELOADED_AT)
    assert not state.link_revoked_at("Gd7kQ2xP", RELOADED_AT + dt.timedelta(days=5))


def test_loading_the_same_revocation_again_keeps_the_first_time(
    make_campaign_dict, make_campaign, make_registry
) -> None:
    links = make_campaign_dict()["links"]
    links[3]["revoked"] = True
    revoked = make_campaign(links=links)
    later = RELOADED_AT + dt.timedelta(days=3)
    registry = make_registry((revoked, RELOADED_AT), (revoked, later))
    assert registry.get("2023").links["Gx1aB2cD"].revoked_at == RELOADED_AT


def test_earliest_link_revoked_event_wins_and_unknown_ones_are_ignored(make_registry) -> None:
    registry: Registry = make_registry()
    t1 = dt.datetime(2023, 9, 18, tzinfo=UTC)
    t0 = dt.datetime(2023, 9, 17, tzinfo=UTC)
    for event in [
        LinkRevoked(campaign="2023", link_code="Gd7kQ2xW", revoked_at=t1),
        LinkRevoked(campaign="2023", link_code="Gd7kQ2xW", revoked_at=t0),
        LinkRevoked(campaign="2023", link_code="Gd7kQ2xW", revoked_at=t1),
        LinkRevoked(campaign="2023", link_code="NoSuchLink", revoked_at=t0),
        LinkRevoked(campaign="1999", link_code="Gd7kQ2xW", revoked_at=t0),
    ]:
        registry.apply(event)
    state = registry.get("2023")
    assert state.links["Gd7kQ2xW"].revoked_at == t0
    assert "NoSuchLink" not in state.links
    assert registry.get("1999") is None


def test_link_revoked_in_the_first_load_counts_from_that_load(
    make_campaign_dict, make_campaign, make_registry, make_submission, judge_stream
) -> None:
    links = make_campaign_dict()["links"]
    links[0]["revoked"] = True
    loaded_at = dt.datetime(2023, 9, 12, tzinfo=UTC)
    registry = make_registry((make_campaign(links=links), loaded_at))
    verdicts = [j for j, _ in judge_stream(registry, [make_submission()])]
    assert verdicts[0].reasons == ("revoked_link",)


def test_campaigns_are_kept_apart(make_campaign, make_registry) -> None:
    registry = make_registry(make_campaign(), make_campaign(campaign="2024",
                                                            timezone="Asia/Urumqi"))
    assert set(registry.campaigns) == {"2023", "2024"}
    assert str(registry.get("2024").tz) == "Asia/Urumqi"
    assert str(registry.get("2023").tz) == "Asia/Shanghai"
