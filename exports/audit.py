"""The audit record of an export: who took which data out, when, with what filters.

One function, `record_export`, is the only place an export is audited: today it writes one JSON
line to the `survey.audit` logger (kept wherever the process's logs are kept); point it at the
admin audit trail once there is one, and every export path (CLI, HTTP, freeze) follows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

log = logging.getLogger("survey.audit")


@dataclass(frozen=True)
class ExportAudit:
    action: str  # "export"
    who: str  # the caller as far as it is known: a token's role and label, or the OS user
    via: str  # "cli", "http", "freeze"
    at: str  # ISO time the export started
    campaign: str
    format: str
    status: str
    filters: dict[str, str] = field(default_factory=dict)
    scope: dict[str, str] = field(default_factory=dict)
    as_of: str = ""
    rows: int = 0
    outcome: str = ""  # "completed", "refused: ...", "failed: ..."


def record_export(entry: ExportAudit) -> None:
    log.info("audit %s", json.dumps(asdict(entry), ensure_ascii=False, sort_keys=True))
