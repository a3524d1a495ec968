"""`report --all-eligible`: every eligible report of a campaign (national, work regions,
provinces, topics) into one folder each, built in parallel processes, with an index.html.

Resumable: a folder holding its three files and `done.json` is skipped, so a run stopped half
way picks up where it was. The figures are gathered in this process over its one store
connection (a chDB data directory belongs to one process at a time; the queries are aggregates,
seconds each) and the documents, where the time goes (WeasyPrint), are laid out in worker
processes while the next report's figures are gathered."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.progress import SILENT, Progress
from core.registry import CampaignState
from reports import queries
from reports.eligibility import ELIGIBILITY_THRESHOLD, eligible_regions, eligible_topics
from reports.model import ReportData
from reports.queries import Aggregates, Scope

DONE = "done.json"


@dataclass(frozen=True)
class Job:
    kind: str  # national | work_region | province | topic
    id: str
    name: str
    valid: int

    @property
    def folder(self) -> str:
        return "national" if self.kind == "national" else f"{self.kind}-{self.id}"


def eligible_jobs(store: Aggregates, state: CampaignState, campaign: str,
                  unit_counts: Any, threshold: int = ELIGIBILITY_THRESHOLD) -> list[Job]:
    """The national report plus every work region, province and topic past the threshold."""
    total = int(store.aggregate(queries.valid_count_sql(Scope(campaign)))[0][0])
    jobs = [Job("national", "", "全国", total)]
    for level in ("work_region", "province"):
        jobs += [Job(level, r.id, r.name, r.valid)
                 for r in eligible_regions(state, unit_counts, level, threshold)]
    topics = {t.id: t for t in state.definition.topics}

    def count(topic_id: str) -> int:
        scope = Scope(campaign, topic=topics[topic_id])
        return int(store.aggregate(queries.valid_count_sql(scope))[0][0])

    jobs += [Job("topic", r.id, r.name, r.valid)
             for r in eligible_topics(state, count, threshold)]
    return jobs


def is_done(folder: Path) -> bool:
    return (folder / DONE).is_file() and all(
        (folder / f"report.{x}").is_file() for x in ("html", "pdf", "docx"))


def render_one(data: ReportData, folder: Path) -> dict[str, Any]:
    """Worker side: write one report's three files; its summary for the index."""
    from reports.render import write_report

    started = time.monotonic()
    written = write_report(data, folder)
    return {"scope": data.scope_label, "valid": data.valid, "pages": written.pages,
            "index": data.index.value if data.index and data.index.defined else None,
            "render_seconds": round(time.monotonic() - started, 2)}


def run_all(jobs: list[Job], out: Path, build: Callable[[Job], ReportData],
            workers: int = 2, progress: Progress = SILENT) -> list[dict[str, Any]]:
    """Builds the jobs not done yet: figures by `build` here, documents in `workers`
    processes; returns one summary per job (those skipped read back from done.json).
    `progress`: one step per report, those already done first."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        folder = out / job.folder
        if is_done(folder):
            results[job.folder] = {**json.loads((folder / DONE).read_text()), "skipped": True}
        else:
            todo.append(job)
    progress.stage("reports", len(jobs), "reports")
    progress.advance(len(jobs) - len(todo))
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: dict[Future[dict[str, Any]], Job] = {}
        for job in todo:
            started = time.monotonic()
            data = build(job)
            build_seconds = round(time.monotonic() - started, 2)
            future = pool.submit(render_one, data, out / job.folder)
            futures[future] = job
            future.build_seconds = build_seconds  # type: ignore[attr-defined]
        for future in as_completed(futures):
            job = futures[future]
            summary = {**future.result(), "kind": job.kind, "id": job.id,
                       "build_seconds": future.build_seconds}  # type: ignore[attr-defined]
            (out / job.folder / DONE).write_text(json.dumps(summary, ensure_ascii=False))
            results[job.folder] = summary
            progress.advance()
    ordered = [results[j.folder] for j in jobs]
    write_index(jobs, ordered, out)
    return ordered


def write_index(jobs: list[Job], results: list[dict[str, Any]], out: Path) -> Path:
    kinds = {"national": "全国", "work_region": "工作区", "province": "省份", "topic": "专题"}
    rows = []
    for job, r in zip(jobs, results, strict=True):
        e = html.escape
        index = r.get("index")
        rows.append(
            f"<tr><td>{kinds[job.kind]}</td><td>{e(job.name)}</td><td>{r.get('valid', 0):,}</td>"
            f"<td>{'—' if index is None else f'{index:.1f}'}</td>"
            f'<td><a href="{job.folder}/report.html">HTML</a> · '
            f'<a href="{job.folder}/report.pdf">PDF</a> · '
            f'<a href="{job.folder}/report.docx">DOCX</a></td></tr>')
    page = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>报告索引'
            '</title><style>body{font-family:"Noto Sans CJK SC",sans-serif;margin:2em}'
            'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}'
            '</style></head><body><h1>统计报告索引</h1><p>生成于 '
            f'{time.strftime("%Y-%m-%d %H:%M", time.gmtime())} UTC</p><table><tr><th>类别</th>'
            '<th>名称</th><th>有效样本</th><th>加权满意度指数</th><th>文件</th></tr>'
            + "".join(rows) + "</table></body></html>")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
