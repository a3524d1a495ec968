"""The campaign the benchmarks use and the data made from it: answer-sheet bodies, body
templates for wrk, probe sheets, and records and verdicts as the pipeline sees them."""

from __future__ import annotations

import datetime as dt
import json
import random
import zoneinfo
from pathlib import Path
from typing import Any

from benchmarks.common import EXAMPLE_CAMPAIGN, HASH_KEY, PROBE_LINK, PROBE_UNIT


def bench_definition() -> Any:
    """The example campaign (135 units, 494 links), collecting today, plus the probe unit."""
    from schemas.campaign import CampaignDefinition, Link, Unit, load_campaign_file

    definition: CampaignDefinition = load_campaign_file(EXAMPLE_CAMPAIGN)
    today = dt.datetime.now(zoneinfo.ZoneInfo(definition.timezone)).date()
    counting = next(p for p in definition.phases if p.counts)
    if not counting.start <= today <= counting.end:
        shift = (today - dt.timedelta(days=3)) - counting.start
        phases = [
            p.model_copy(update={"start": p.start + shift, "end": p.end + shift})
            for p in definition.phases
        ]
        phases = [
            p.model_copy(update={"end": max(p.end, today + dt.timedelta(days=7))})
            if p.counts
            else p
            for p in phases
        ]
        definition = definition.model_copy(update={"phases": phases})
    province = definition.provinces[0].id
    units = [
        *definition.units,
        Unit(
            id=PROBE_UNIT,
            name="benchmark probe",
            kind="volunteer",
            province=province,
            planned_samples=1,
        ),
    ]
    links = [*definition.links, Link(code=PROBE_LINK, unit=PROBE_UNIT, channel="bench")]
    return CampaignDefinition.model_validate(
        {
            **definition.model_dump(),
            "units": [u.model_dump() for u in units],
            "links": [lk.model_dump() for lk in links],
        }
    )


def definition_json(definition: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(definition.model_dump_json())
    return out


def sheet_bodies(
    definition: Any, n: int, seed: int = 7, valid_share: float = 0.9
) -> list[dict[str, Any]]:
    """n realistic answer sheets (the demo generator: 10% carry a flaw) for `definition`."""
    from simulation.generator import SheetFactory

    factory = SheetFactory(definition, valid_share=valid_share)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    out = []
    for _ in range(n):
        body = factory.make(rng, now).body
        if body.get("link_code") == PROBE_LINK:  # the probe's count must be the probes alone
            continue
        out.append(body)
    return out


ID_PLACEHOLDER = "@@ID@@"


def write_body_templates(path: Path, definition: Any, n: int, seed: int = 7) -> Path:
    """One answer-sheet body per line, with @@ID@@ where wrk puts a unique token: in the
    submission_id and the device_id, so every request is a new sheet from a new device."""
    lines = []
    for body in sheet_bodies(definition, n, seed):
        body["submission_id"] = ID_PLACEHOLDER
        if body.get("device_id"):
            body["device_id"] = "d" + ID_PLACEHOLDER
        lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def probe_body(seq: int, run: str) -> dict[str, Any]:
    """A valid sheet credited to the probe unit, unique per (run, seq)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "submission_id": f"probe-{run}-{seq:08d}",
        "campaign": "2026",
        "link_code": PROBE_LINK,
        "questionnaire_version": "2026.1",
        "started_at": (now - dt.timedelta(minutes=6)).isoformat(),
        "submitted_at": now.isoformat(),
        "respondent": {"province": "11", "city": "1101", "age_group": "25-34"},
        "device_id": f"probe-device-{run}-{seq}",
        "answers": {
            "q1": 4,
            "q2": 3,
            "q3": 5,
            "q4": 2,
            "q5": 4,
            "q6": 3,
            "q7": 4,
            "q8": "1至3小时",
            "q9": "其他",
            "q10": ["网络诈骗"],
            "q11": ["未成年人网络保护"],
        },
    }


# -- records as the pipeline sees them -----------------------------------------------------------


def received_record(
    body: dict[str, Any], received_at: dt.datetime, client: str = "", network: str = ""
) -> bytes:
    """A raw-log record exactly as ingest/collector.py writes it (the body as posted; `client`
    and `network` as the keyed hashes it writes, 32 hex digits each)."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join(
        (
            b'{"v":1,"kind":"submission.received","received_at":"',
            received_at.isoformat().encode(),
            b'","client":"',
            client.encode(),
            b'","network":"',
            network.encode(),
            b'","body":',
            raw,
            b"}",
        )
    )


def unique_bodies(definition: Any, n: int, run: str, seed: int = 11) -> list[dict[str, Any]]:
    """n generated sheets, each with its own submission_id and device_id (as wrk sends them)."""
    base = sheet_bodies(definition, min(n, 4000), seed)
    out = []
    for i in range(n):
        body = dict(base[i % len(base)])
        body["submission_id"] = f"{run}-{i:012d}"
        if body.get("device_id"):
            body["device_id"] = f"d{run}-{i:012d}"
        out.append(body)
    return out


def registry_for(definition: Any) -> Any:
    import datetime as _dt

    from core.registry import Registry
    from schemas.events import CampaignDefined

    registry = Registry()
    registry.apply(
        CampaignDefined(
            campaign=definition.campaign,
            defined_at=_dt.datetime(2026, 1, 1, tzinfo=_dt.UTC),
            definition=definition,
        )
    )
    return registry


def judged_rows(definition: Any, n: int, run: str) -> list[Any]:
    """n verdicts as the judge makes them from generated sheets (unique ids and devices)."""
    from core.judge import JudgeState, judge
    from schemas.events import SubmissionReceived

    registry = registry_for(definition)
    state = JudgeState.empty()
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i, body in enumerate(unique_bodies(definition, n, run)):
        received = SubmissionReceived(received_at=now, client=f"{i:032x}", body=body)
        verdict, _ = judge(received, f"0:{i}", registry, state, HASH_KEY)
        rows.append(verdict)
    return rows
