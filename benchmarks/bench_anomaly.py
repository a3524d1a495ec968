"""Anomaly detectors: precision/recall on generated padding, and per-verdict cost at volume.

1. The padded campaign of tests/core/test_anomaly_detection.py (same seeds and sizes): precision
   and recall per scenario, and the share of honest sheets flagged in an honest-only campaign.
2. Cost per verdict of AnomalyEngine.observe over a stream of honest verdicts (the stream is
   generated and judged once, then observed `--passes` times, each pass a day later, so the
   engine sees as many verdicts as asked for without holding them all), and the engine's memory
   (tracemalloc) after the stream.

    python -m benchmarks.bench_anomaly [--sheets N] [--passes P] [--skip-quality]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import tracemalloc
from pathlib import Path

from core.anomaly import AnomalyEngine
from schemas.campaign import TextQuestion, load_campaign_file
from schemas.events import SubmissionJudged
from simulation.padding import DEFAULT_SCENARIOS, judge_all, measure, simulate

EXAMPLE = Path(__file__).resolve().parents[1] / "simulation" / "examples" / "campaign.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sheets", type=int, default=100_000, help="honest sheets generated")
    parser.add_argument("--passes", type=int, default=10, help="times the stream is observed")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    definition = load_campaign_file(str(EXAMPLE))
    text_ids = frozenset(
        q.id for q in definition.questionnaire.questions if isinstance(q, TextQuestion)
    )

    def engine() -> AnomalyEngine:
        return AnomalyEngine(text_questions=lambda campaign, version: text_ids)

    if not args.skip_quality:
        for seed, scenarios in ((7, DEFAULT_SCENARIOS), (11, ())):
            sheets = simulate(definition, seed=seed, days=3, honest_per_day=12_000,
                              scenarios=scenarios, hash_key="bench")
            verdicts = judge_all(sheets, definition, "bench")
            eng = engine()
            findings = [f for j, _ in verdicts for f in eng.observe(j)]
            print(f"seed {seed}, {len(verdicts)} verdicts, {len(findings)} finding events")
            print(measure(eng, verdicts, findings).table() + "\n")

    days = max(1, args.sheets // 30_000)
    sheets = simulate(definition, seed=5, days=days, honest_per_day=args.sheets // days,
                      scenarios=(), hash_key="bench")
    stream = [j for j, _ in judge_all(sheets, definition, "bench")]
    span = dt.timedelta(days=days)

    def shifted(p: int) -> list[SubmissionJudged]:
        # Another day's sheets: later receive times, other ids and devices, same shapes.
        return stream if p == 0 else [
            j.model_copy(update={
                "received_at": j.received_at + p * span,
                "submission_id": f"{j.submission_id}-{p}",
                "device_hash": f"{p:04x}{j.device_hash[4:]}",
            })
            for j in stream
        ]

    eng = engine()
    observed, cpu, raised = 0, 0.0, 0
    for p in range(args.passes):
        batch = shifted(p)
        started = time.process_time()
        for j in batch:
            raised += len(eng.observe(j))
        cpu += time.process_time() - started
        observed += len(batch)
    print(f"observed {observed} verdicts: {cpu / observed * 1e6:.1f} us of CPU each "
          f"({observed / cpu:,.0f}/s on one core); {raised} finding events (repeated texts "
          "across passes form clusters)")

    tracemalloc.start()
    measured = engine()
    for j in stream:
        measured.observe(j)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    camp = next(iter(measured.campaigns.values()))
    print(f"engine memory after {len(stream)} verdicts: {held / 2**20:.1f} MiB "
          f"({len(camp.links)} links, {len(camp.text.clusters)} text clusters; links are capped "
          f"at {measured.config.max_links}, clusters at {measured.config.text.max_clusters})")

if __name__ == "__main__":
    main()
