"""The link_opens table (migration 0012) through storage.opens, on chDB and on the ClickHouse
server (18.16 in the test session): tallies from several flushes and processes add up, grouped
and filtered as /counts asks, and no caller text reaches the SQL but through literal()."""

from __future__ import annotations

import datetime as dt

import pytest

from storage import SqlStore
from storage.opens import OpensRow, SqlOpens, opens_query

D1, D2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)


def test_flushes_add_up_by_link_unit_channel_and_day(store: SqlStore) -> None:
    opens = SqlOpens(store)
    opens.add_opens([OpensRow("c", "L1", "gd", "wechat", D1, 3),
                     OpensRow("c", "L2", "gd", "poster", D1, 1)])
    # A second flush (or another process) for the same key adds, never replaces.
    opens.add_opens([OpensRow("c", "L1", "gd", "wechat", D1, 2),
                     OpensRow("c", "L1", "gd", "wechat", D2, 4),
                     OpensRow("c", "X9", "gx", "wechat", D2, 7),
                     OpensRow("other", "L1", "gd", "wechat", D1, 100),
                     OpensRow("c", "L3", "gd", "", D1, 0)])  # nothing to add: not written
    assert opens.opens_by("c", ["link"]) == {("L1",): 9, ("L2",): 1, ("X9",): 7}
    assert opens.opens_by("c", ["unit"]) == {("gd",): 10, ("gx",): 7}
    assert opens.opens_by("c", ["channel", "day"]) == {
        ("wechat", "2026-11-20"): 5, ("poster", "2026-11-20"): 1, ("wechat", "2026-11-21"): 11}
    assert opens.opens_by("c", []) == {(): 17}
    assert opens.opens_by("c", ["link"], units=["gd"], date_from=D2) == {("L1",): 4}
    assert opens.opens_by("c", ["unit"], units=[]) == {}  # a scope with no unit: nothing
    assert opens.opens_by("c", ["link"], link="L2", channel="poster") == {("L2",): 1}


def test_hostile_filter_values_are_literals(store: SqlStore) -> None:
    opens = SqlOpens(store)
    opens.add_opens([OpensRow("c", "L1", "gd", "it's", D1, 1)])
    assert opens.opens_by("c", ["channel"], channel="it's") == {("it's",): 1}
    assert opens.opens_by("c", ["link"], link="' OR 1=1 --") == {}


def test_groupings_outside_the_table_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be grouped by 'province'"):
        opens_query("c", ["province"])
