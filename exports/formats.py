"""The export formats and their file types: light (no pyarrow), for argument parsers and routes."""

from __future__ import annotations

from typing import Final

FORMATS: Final = ("csv", "xlsx", "sav", "parquet")
STATUSES: Final = ("accepted", "all")
MEDIA_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "sav": "application/x-spss-sav",
    "parquet": "application/vnd.apache.parquet",
}
# Excel's sheet holds 1,048,576 rows; one is the header.
XLSX_MAX_ROWS: Final = 1_048_575
# Formats their library finishes only at the end, written to a path rather than a stream.
NEEDS_PATH: Final = frozenset({"xlsx", "sav"})
