"""The opens tally (api/opens.py) against a sink that fails on demand: nothing counted twice or
lost across a failed flush, and reads add the unflushed tally to what is stored."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest

from api.opens import OpenCounter
from core.registry import Registry
from schemas.campaign import CampaignDefinition
from schemas.events import CampaignDefined
from storage.opens import OpensRow
from tests.helpers import campaign_definition


class FlakySink:
    def __init__(self) -> None:
        self.rows: list[OpensRow] = []
        self.fail = False

    def add_opens(self, rows: Sequence[OpensRow]) -> None:
        if self.fail:
            raise OSError("store down")
        self.rows += rows

    def opens_by(
        self, campaign: str, by: Sequence[str], *, units: Sequence[str] | None = None,
        **_: object,
    ) -> dict[tuple[str, ...], int]:
        out: dict[tuple[str, ...], int] = {}
        for r in self.rows:
            if r.campaign == campaign and (units is None or r.unit in units):
                key = tuple({"link": r.link_code, "unit": r.unit}[n] for n in by)
                out[key] = out.get(key, 0) + r.opens
        return out


def registry() -> Registry:
    reg = Registry()
    d = CampaignDefinition.model_validate(campaign_definition("c1"))
    reg.apply(CampaignDefined(campaign="c1", defined_at=dt.datetime.now(dt.UTC), definition=d))
    return reg


def test_a_failed_flush_keeps_the_tally_and_reads_count_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Catches a flush that drops its batch when the store refuses it, or a read that adds the
    batch in flight twice (stored and pending)."""
    sink = FlakySink()
    counter = OpenCounter(registry(), sink)

    async def scenario() -> None:
        for _ in range(3):
            counter.hit("c1", "Gd7kQ2xP")
        counter.hit("c1", "Gx1aB2cD")
        counter.hit("c1", "NoSuch12")  # not in the registry: nothing to credit it to
        assert await counter.per_link("c1") == {"Gd7kQ2xP": 3, "Gx1aB2cD": 1}
        sink.fail = True
        await counter.flush()
        assert sink.rows == [] and await counter.per_link("c1") == {"Gd7kQ2xP": 3, "Gx1aB2cD": 1}
        counter.hit("c1", "Gd7kQ2xP")
        sink.fail = False
        await counter.flush()
        assert sum(r.opens for r in sink.rows) == 5
        assert await counter.per_link("c1") == {"Gd7kQ2xP": 4, "Gx1aB2cD": 1}
        assert await counter.per_link("c1", ["gx-net"]) == {"Gx1aB2cD": 1}
        counter.hit("c1", "Gx1aB2cD")
        assert await counter.grouped("c1", ["unit"]) == {("gd-cyber",): 4, ("gx-net",): 2}

    asyncio.run(scenario())
    assert "opens not stored" in caplog.text
