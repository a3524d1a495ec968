"""Attribution (link -> unit -> province -> work region) and the three leaderboards."""

from __future__ import annotations

import datetime as dt

import pytest

from core.counting import Count, leaderboard, roll_up, tally

UTC = dt.UTC


@pytest.mark.parametrize(
    ("link", "unit", "province", "region", "channel"),
    [
        ("Gd7kQ2xP", "gd-cyber", "44", "south", "wechat"),
        ("Gd7kQ2xW", "gd-cyber", "44", "south", "weibo"),
        ("GdUni001", "gd-uni", "44", "south", "web"),
        ("Gx1aB2cD", "gx-net", "45", "south", "wechat"),
        ("Sh9zY8xW", "sh-vol", "31", "east", "poster"),
    ],
)
def test_submission_is_credited_through_its_link(
    make_submission, judge_one, link: str, unit: str, province: str, region: str, channel: str
) -> None:
    judged = judge_one(make_submission(link_code=link))
    assert (judged.link_code, judged.unit, judged.province, judged.work_region,
            judged.channel) == (link, unit, province, region, channel)


def test_respondents_own_province_is_kept_apart_from_the_credited_one(
    make_submission, judge_one
) -> None:
    judged = judge_one(make_submission(
        link_code="Gd7kQ2xP", respondent={"province": "31", "city": "3101", "age_group": "18-24"},
    ))
    assert (judged.province, judged.work_region) == ("44", "south")
    assert (judged.respondent_province, judged.respondent_city, judged.age_group) == (
        "31", "3101", "18-24",
    )


def test_missing_respondent_details_are_empty(make_submission, judge_one) -> None:
    judged = judge_one(make_submission(omit=["respondent"]))
    assert (judged.status, judged.respondent_province, judged.province) == ("accepted", "", "44")


def test_tally_counts_each_status_against_the_credited_unit(
    make_submission, make_registry, judge_stream
) -> None:
    sheets = [
        make_submission(link_code="Gd7kQ2xP"),
        make_submission(link_code="Gd7kQ2xW"),  # another link of the same unit
        make_submission(link_code="Gd7kQ2xP", duration=1),
        make_submission(link_code="Gx1aB2cD",
                        received_at=dt.datetime(2023, 9, 12, 1, tzinfo=UTC)),
        make_submission(link_code="NoSuchLink"),
    ]
    counts = tally(j for j, _ in judge_stream(make_registry(), sheets)).for_campaign("2023")
    assert counts == {"gd-cyber": Count(valid=2, rejected=1, test=0),
                      "gx-net": Count(valid=0, rejected=0, test=1)}


def _counts(**valid: int) -> dict[str, Count]:
    return {unit.replace("_", "-"): Count(valid=v) for unit, v in valid.items()}


def test_units_are_ranked_by_valid_with_planned_samples_as_target(
    make_registry,
) -> None:
    state = make_registry().get("2023")
    rows = leaderboard(state, _counts(gd_cyber=10, gd_uni=40, gx_net=20, sh_vol=0), "unit")
    assert [(r.rank, r.id, r.valid, r.target) for r in rows] == [
        (1, "gd-uni", 40, 300),
        (2, "gx-net", 20, 200),
        (3, "gd-cyber", 10, 500),
        (4, "bj-net", 0, 100),
        (4, "sh-vol", 0, 100),
    ]
    assert rows[0].name == "广东某大学"
    assert rows[0].progress == pytest.approx(40 / 300, abs=1e-6)
    assert rows[2].progress == pytest.approx(10 / 500, abs=1e-6)


def test_units_with_equal_valid_share_a_rank_and_the_next_rank_is_skipped(
    make_registry,
) -> None:
    state = make_registry().get("2023")
    rows = leaderboard(state, _counts(gd_cyber=7, gd_uni=7, gx_net=9, sh_vol=1, bj_net=7),
                       "unit")
    assert [(r.rank, r.id) for r in rows] == [
        (1, "gx-net"), (2, "bj-net"), (2, "gd-cyber"), (2, "gd-uni"), (5, "sh-vol"),
    ]


def test_provinces_are_ranked_by_progress_not_by_valid(make_registry) -> None:
    state = make_registry().get("2023")
    # 44 has the most valid (60 of 1000), 31 the best progress (30 of 200).
    rows = leaderboard(state, _counts(gd_cyber=50, gd_uni=10, gx_net=40, sh_vol=30),
                       "province")
    assert [(r.rank, r.id, r.valid, r.target, r.progress) for r in rows] == [
        (1, "31", 30, 200, 0.15),
        (2, "45", 40, 400, 0.1),
        (3, "44", 60, 1000, 0.06),
        (4, "11", 0, 300, 0.0),
    ]


def test_province_target_is_internet_users_times_target_rate(make_registry) -> None:
    state = make_registry().get("2023")
    assert {p: state.province_target(p) for p in state.provinces} == {
        "44": 1000, "45": 400, "31": 200, "11": 300,
    }


def test_work_regions_are_ranked_by_progress_against_the_sum_of_their_provinces(
    make_registry,
) -> None:
    state = make_registry().get("2023")
    rows = leaderboard(state, _counts(gd_cyber=100, gx_net=40, sh_vol=10, bj_net=60),
                       "work_region")
    assert [(r.rank, r.id, r.name, r.valid, r.target) for r in rows] == [
        (1, "north", "华北", 60, 300),  # 0.2
        (2, "south", "华南", 140, 1400),  # 0.1
        (3, "east", "华东", 10, 200),  # 0.05
    ]
    assert rows[1].progress == pytest.approx(0.1)


def test_regions_with_equal_progress_share_a_rank(make_registry) -> None:
    state = make_registry().get("2023")
    # 31: 20/200 and 45: 40/400 are both 10 %.
    rows = leaderboard(state, _counts(sh_vol=20, gx_net=40, gd_cyber=10), "province")
    assert [(r.rank, r.id) for r in rows] == [(1, "31"), (1, "45"), (3, "44"), (4, "11")]


def test_leaderboard_lists_every_entity_even_before_anything_came_in(make_registry) -> None:
    state = make_registry().get("2023")
    for level, expected in [("unit", 5), ("province", 4), ("work_region", 3)]:
        rows = leaderboard(state, {}, level)
        assert len(rows) == expected
        assert {r.rank for r in rows} == {1}
        assert all(r.valid == 0 and r.progress == 0.0 for r in rows)


def test_leaderboard_limit_keeps_the_top_rows(make_registry) -> None:
    state = make_registry().get("2023")
    rows = leaderboard(state, _counts(gd_cyber=3, gd_uni=2, gx_net=1), "unit", limit=2)
    assert [r.id for r in rows] == ["gd-cyber", "gd-uni"]


def test_rejected_counts_are_shown_but_do_not_rank(make_registry) -> None:
    state = make_registry().get("2023")
    counts = {"gd-cyber": Count(valid=1, rejected=100), "gx-net": Count(valid=2, rejected=0)}
    rows = leaderboard(state, counts, "unit")
    assert [(r.id, r.rejected) for r in rows[:2]] == [("gx-net", 0), ("gd-cyber", 100)]


def test_zero_target_gives_zero_progress(make_campaign_dict, make_campaign,
                                         make_registry) -> None:
    provinces = make_campaign_dict()["provinces"]
    provinces[2]["target_rate"] = 0  # 31
    state = make_registry(make_campaign(provinces=provinces)).get("2023")
    rows = {r.id: r for r in leaderboard(state, _counts(sh_vol=5), "province")}
    assert (rows["31"].target, rows["31"].valid, rows["31"].progress) == (0, 5, 0.0)


def test_roll_up_sums_units_into_provinces_and_work_regions(make_registry) -> None:
    state = make_registry().get("2023")
    counts = {
        "gd-cyber": Count(valid=5, rejected=1, test=2),
        "gd-uni": Count(valid=3, rejected=2, test=0),
        "gx-net": Count(valid=1, rejected=0, test=4),
        "gone-unit": Count(valid=99),  # not in the registry: not credited anywhere
    }
    assert roll_up(state, counts, "province") == {
        "44": Count(8, 3, 2), "45": Count(1, 0, 4), "31": Count(), "11": Count(),
    }
    assert roll_up(state, counts, "work_region") == {
        "south": Count(9, 3, 6), "east": Count(), "north": Count(),
    }


def test_leaderboard_from_judged_stream_counts_only_collection_phase(
    make_submission, make_registry, judge_stream
) -> None:
    registry = make_registry()
    sheets = [
        make_submission(link_code="Sh9zY8xW"),
        make_submission(link_code="Sh9zY8xW"),
        make_submission(link_code="Gd7kQ2xP"),
        make_submission(link_code="Gd7kQ2xP",
                        received_at=dt.datetime(2023, 9, 11, 4, tzinfo=UTC)),
        make_submission(link_code="Gd7kQ2xP",
                        received_at=dt.datetime(2023, 9, 11, 5, tzinfo=UTC)),
    ]
    counts = tally(j for j, _ in judge_stream(registry, sheets)).for_campaign("2023")
    rows = leaderboard(registry.get("2023"), counts, "unit")
    assert [(r.rank, r.id, r.valid) for r in rows[:2]] == [(1, "sh-vol", 2), (2, "gd-cyber", 1)]
    regions = leaderboard(registry.get("2023"), counts, "work_region")
    assert [(r.id, r.valid) for r in regions] == [("east", 2), ("south", 1), ("north", 0)]
