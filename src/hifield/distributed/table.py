"""The study's results table (one row per exam and method; Parquet plus a CSV copy) and its progress count."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hifield._atomic import atomic_write_bytes
from hifield.distributed.exam import ERRORS_DIR, EXAMS_DIR, read_record
from hifield.distributed.study import EXAM_OPTIONS, Exam
from hifield.errors import ConfigError

MANIFEST = "study.json"
"""The study folder's list of exams (id, options), written before any exam runs; ``hifield study status`` reads it."""
TABLE = "results"
"""Stem of the results table: ``results.parquet`` and ``results.csv``."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("exam_id", "string"),
    ("status", "string"),
    ("reason", "string"),
    ("phantom", "string"),
    ("protocol", "string"),
    ("field", "string"),
    ("acceleration", "float64"),
    ("pattern", "string"),
    ("n_calibration", "int64"),
    ("matrix", "int64"),
    ("n_coils", "int64"),
    ("engine", "string"),
    ("seed", "int64"),
    ("recons", "string"),
    ("write_files", "bool"),
    ("n_slices", "int64"),
    ("slice_thickness_m", "float64"),
    ("rf_shim", "string"),
    ("b0_shim", "string"),
    ("ideal", "bool"),
    ("adapt", "bool"),
    ("method", "string"),
    ("field_t", "float64"),
    ("acceleration_achieved", "float64"),
    ("lines_acquired", "int64"),
    ("scan_time_s", "float64"),
    ("scan_time_full_s", "float64"),
    ("nmse", "float64"),
    ("psnr", "float64"),
    ("ssim", "float64"),
    ("recon_time_s", "float64"),
    ("wall_time_s", "float64"),
    ("worker", "string"),
    ("hostname", "string"),
    ("peak_rss_mib", "float64"),
    ("folder", "string"),
)
"""Columns of the results table and their types (inputs first, then results, then where and how long)."""


def rows_from_record(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The table rows of one exam record: one per reconstruction method (a failed exam: one per requested method).

    Examples
    --------
    >>> rows = rows_from_record({"exam_id": "ab", "status": "failed", "reason": "SAR 4.1 W/kg > 3.2 W/kg",
    ...                          "options": {"recons": ["fft", "cs"], "field": "7T"}})
    >>> [(r["method"], r["status"], r["field"], r["ssim"]) for r in rows]
    [('fft', 'failed', '7T', None), ('cs', 'failed', '7T', None)]
    """
    options = dict(record.get("options") or {})
    base: dict[str, Any] = {name: None for name, _ in COLUMNS}
    base.update({name: options.get(name) for name in EXAM_OPTIONS})
    base["recons"] = ",".join(options.get("recons") or [])
    for key in ("exam_id", "status", "reason", "wall_time_s", "worker", "hostname", "peak_rss_mib", "folder"):
        base[key] = record.get(key)
    summary = record.get("summary") or {}
    if summary:
        base.update(
            field_t=summary.get("field_t"),
            acceleration_achieved=summary.get("acceleration"),
            lines_acquired=summary.get("lines_acquired"),
            scan_time_s=summary.get("scan_time_s"),
            scan_time_full_s=summary.get("scan_time_full_s"),
        )
        return [
            {
                **base,
                "method": m["method"],
                "nmse": m["nmse"],
                "psnr": m["psnr"],
                "ssim": m["ssim"],
                "recon_time_s": m.get("time_s"),
            }
            for m in summary.get("reconstructions", [])
        ]
    return [{**base, "method": method} for method in (options.get("recons") or [None])]


def write_manifest(root: Path, name: str, exams: list[Exam]) -> None:
    """Write ``study.json``: the study's name and each exam's id and options (the exams it must have)."""
    data = {"name": name, "exams": [{"exam_id": e.exam_id, "options": e.options()} for e in exams]}
    atomic_write_bytes(root / MANIFEST, (json.dumps(data, indent=1) + "\n").encode())


def read_manifest(root: Path) -> dict[str, Any]:
    """Read ``study.json`` of a study folder.

    Raises
    ------
    ConfigError
        If ``root`` holds no study.
    """
    path = Path(root) / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{str(root)!r} holds no study (no {MANIFEST}); give the --out folder of a study") from None
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON; run the study again to rewrite it") from None


def gather_records(root: Path, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record of each exam (``entries`` as in ``study.json``: ``exam_id`` and ``options``), in order: its
    folder's, else its last unexpected error, else ``status: missing``."""
    records = []
    for entry in entries:
        exam_id = entry["exam_id"]
        record = read_record(root, exam_id)
        if record is None:
            try:
                record = dict(json.loads((root / ERRORS_DIR / f"{exam_id}.json").read_text()))
            except (OSError, ValueError):
                record = {"exam_id": exam_id, "status": "missing", "options": entry.get("options")}
        records.append(record)
    return records


@dataclass(frozen=True)
class StudyStatus:
    """How far a study is."""

    name: str
    """Study name."""
    total: int
    """Exams in the study."""
    counts: dict[str, int]
    """Exams by status: ok, failed (refused or bad option, with a reason), error (retried next run), missing."""
    failures: list[tuple[str, str, str]]
    """``(exam_id, status, reason)`` of each failed or broken exam."""

    @property
    def done(self) -> int:
        """Exams with a final result (ok or failed)."""
        return self.counts.get("ok", 0) + self.counts.get("failed", 0)

    def line(self) -> str:
        """One line: ``name: 12/16 exams done (11 ok, 1 failed), 4 to run``."""
        parts = [f"{self.counts[k]} {k}" for k in ("ok", "failed", "error") if self.counts.get(k)]
        todo = self.total - self.done
        complete = " (complete)" if todo == 0 else ""
        counts = ", ".join(parts) or "none yet"
        return f"{self.name}: {self.done}/{self.total} exams done ({counts}), {todo} to run{complete}"


def study_status(root: str | Path) -> StudyStatus:
    """Count the exams of the study in ``root`` by status (reads ``study.json`` and the exam folders).

    Raises
    ------
    ConfigError
        If ``root`` holds no study.
    """
    root = Path(root)
    manifest = read_manifest(root)
    entries = list(manifest.get("exams", []))
    records = gather_records(root, entries)
    counts = Counter(str(r.get("status")) for r in records)
    failures = [
        (r["exam_id"], r["status"], str(r.get("reason"))) for r in records if r["status"] in ("failed", "error")
    ]
    return StudyStatus(
        name=str(manifest.get("name", root.name)), total=len(entries), counts=dict(counts), failures=failures
    )


def write_table(root: Path, rows: list[dict[str, Any]]) -> dict[str, Path]:
    """Write ``results.csv`` and, when pyarrow is installed, ``results.parquet`` (each atomically).

    Returns
    -------
    dict
        ``{"csv": path, "parquet": path}`` (no ``parquet`` without pyarrow).
    """
    names = [name for name, _ in COLUMNS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in names})
    written = {"csv": atomic_write_bytes(root / f"{TABLE}.csv", buffer.getvalue().encode())}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    schema = pa.schema([(name, pa.bool_() if kind == "bool" else pa.type_for_alias(kind)) for name, kind in COLUMNS])
    table = pa.Table.from_pylist([{k: row.get(k) for k in names} for row in rows], schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    written["parquet"] = atomic_write_bytes(root / f"{TABLE}.parquet", sink.getvalue().to_pybytes())
    return written


def read_table(root: str | Path) -> list[dict[str, Any]]:
    """The rows of ``results.parquet`` (or of ``results.csv`` without pyarrow), as dicts with typed values."""
    root = Path(root)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None and (root / f"{TABLE}.parquet").is_file():
        return list(pq.read_table(root / f"{TABLE}.parquet").to_pylist())
    kinds = dict(COLUMNS)
    convert: dict[str, Callable[[str], Any]] = {
        "float64": float,
        "int64": int,
        "bool": lambda v: v == "True",
        "string": str,
    }
    with open(root / f"{TABLE}.csv", newline="") as handle:
        return [
            {k: (None if v == "" else convert[kinds[k]](v)) for k, v in row.items()} for row in csv.DictReader(handle)
        ]


__all__ = [
    "COLUMNS",
    "EXAMS_DIR",
    "MANIFEST",
    "TABLE",
    "StudyStatus",
    "gather_records",
    "read_manifest",
    "read_table",
    "rows_from_record",
    "study_status",
    "write_manifest",
    "write_table",
]
