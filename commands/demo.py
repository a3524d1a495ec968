"""`survey-ingest demo`: `serve` on the example campaign with generated answer sheets flowing in.

The one production command that imports `simulation/`: a demo needs traffic to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import zoneinfo

from core.access import new_token, new_token_id, token_sha256
from runtime.embedded import EmbeddedRuntime
from runtime.serve import uvicorn_server
from runtime.signals import graceful_signals
from schemas.access import Role
from schemas.campaign import CampaignDefinition, load_campaign_file
from schemas.events import Actor, TokenIssued
from schemas.settings import Settings
from simulation import EXAMPLE_CAMPAIGN
from simulation.traffic import run_generator


async def demo(settings: Settings, rate: float, duration: float | None) -> None:
    definition = _collecting_today(load_campaign_file(EXAMPLE_CAMPAIGN))
    runtime = EmbeddedRuntime(settings)
    await runtime.define_campaign(definition)
    analyst = await _analyst_token(runtime, definition.campaign)
    await runtime.start()
    server = uvicorn_server(runtime.app, settings, runtime.end_streams)
    base = f"http://{settings.host}:{settings.port}"
    camp = definition.campaign
    print(
        "\nsurvey-ingest demo — generated answer sheets are flowing in (placeholder figures).\n"
        f"  live display:    {base}/display/{camp}\n"
        f"  leaderboard:     {base}/v1/campaigns/{camp}/leaderboard?level=unit&limit=10\n"
        f"  by province:     {base}/v1/campaigns/{camp}/leaderboard?level=province\n"
        f"  by work region:  {base}/v1/campaigns/{camp}/leaderboard?level=work_region\n"
        f"  live events:     {base}/v1/campaigns/{camp}/live\n"
        f"  API docs:        {base}/docs\n"
        f"  analyst token:   {analyst}\n"
        f"     e.g. curl -H 'Authorization: Bearer {analyst}' "
        f"'{base}/v1/campaigns/{camp}/counts?by=work_region'\n"
        f"     or sign in at {base}/portal\n"
        "  other tokens:    survey-ingest access grant"
        " --role unit|coordinator|analyst|admin|monitor"
        f" --campaign {camp} [--unit U | --work-region W] --label WHO\n"
        f"                   --url {base} --token $SURVEY_ADMIN_TOKEN   (or, stopped: --data-dir "
        f"{settings.data_dir})\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    stop = asyncio.Event()
    # Before the server starts: uvicorn keeps the handler it finds (see graceful_signals).
    with graceful_signals():
        server_task = asyncio.create_task(server.serve())
        while not server.started and not server_task.done():
            await asyncio.sleep(0.05)
        generator = asyncio.create_task(
            run_generator(base, definition, rate_per_s=rate, duration_s=duration,
                          concurrency=16, stop_event=stop)
        )
        board = asyncio.create_task(_print_leaderboard(runtime, camp, stop))
        try:
            await asyncio.wait({server_task, generator}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            server.should_exit = True
            for task in (generator, board):
                with contextlib.suppress(Exception):
                    await task
            with contextlib.suppress(Exception):
                await server_task
            await runtime.stop()


async def _analyst_token(runtime: EmbeddedRuntime, campaign: str) -> str:
    """Issue an analyst token for the demo campaign (shown once, on the console)."""
    token = new_token()
    await runtime.publish_registry(TokenIssued(
        token_id=new_token_id(), token_sha256=token_sha256(token), role=Role.analyst,
        campaign=campaign, label="demo analyst", issued_at=dt.datetime.now(dt.UTC),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7),
        by=Actor(token_id="demo", label="survey-ingest demo"),
    ))
    return token


def _collecting_today(definition: CampaignDefinition) -> CampaignDefinition:
    """The example's dates moved, if needed, so that today falls in its counting phase: a demo
    run on any day shows a moving leaderboard rather than every sheet outside the window."""
    today = dt.datetime.now(zoneinfo.ZoneInfo(definition.timezone)).date()
    counting = next((p for p in definition.phases if p.counts), None)
    if counting is None or counting.start <= today <= counting.end:
        return definition
    shift = (today - dt.timedelta(days=3)) - counting.start
    phases = [p.model_copy(update={"start": p.start + shift, "end": p.end + shift})
              for p in definition.phases]
    if counting.end + shift < today:
        phases = [p.model_copy(update={"end": today + dt.timedelta(days=7)})
                  if p.name == counting.name else p for p in phases]
    return definition.model_copy(update={"phases": phases})


async def _print_leaderboard(runtime: EmbeddedRuntime, campaign: str, stop: asyncio.Event) -> None:
    from core.counting import leaderboard

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
        state = runtime.registry.get(campaign)
        if state is None:
            continue
        counts = await asyncio.to_thread(runtime.store.unit_counts, campaign)
        rows = leaderboard(state, counts, "unit", 5)
        total = sum(c.valid for c in counts.values())
        rejected = sum(c.rejected for c in counts.values())
        print(f"[leaderboard] valid={total} rejected={rejected} top units: "
              + "; ".join(f"{r.rank}. {r.name} {r.valid}" for r in rows), flush=True)
