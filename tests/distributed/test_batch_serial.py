"""``batch()`` in this process: one folder per exam, the table, the report, resume by hash, failures recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hifield as hf
from hifield.distributed import SERIAL, batch, read_table, study_from_dict, study_status
from hifield.distributed.exam import ERRORS_DIR, EXAMS_DIR, IMAGES, PARTIAL_DIR, RECORD


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny: Any, sar_protocol: str) -> tuple[Path, Any]:
    """The tiny study plus one exam refused for SAR, run serially once for the whole module."""
    root = tmp_path_factory.mktemp("study")
    spec = tiny(exams=[{"protocol": sar_protocol, "field": "7T", "acceleration": 2}])
    result = batch(study_from_dict(spec), out=root, scheduler=SERIAL)
    return root, result


def test_batch_is_the_public_hf_batch() -> None:
    assert hf.batch is batch


def test_every_exam_has_a_complete_folder_named_by_its_hash(finished: tuple[Path, Any]) -> None:
    root, result = finished
    folders = sorted(p.name for p in (root / EXAMS_DIR).iterdir())
    assert folders == sorted({row["exam_id"] for row in result.rows})  # no .partial left behind
    for name in folders:
        record = json.loads((root / EXAMS_DIR / name / RECORD).read_text())
        assert record["exam_id"] == name
        if record["status"] == "ok":
            with np.load(root / EXAMS_DIR / name / IMAGES) as images:
                assert set(images.files) == {"truth", "fft", "sense"}
                assert images["truth"].shape == (1, 64, 64) and images["sense"].dtype == np.float32


def test_the_table_has_one_row_per_exam_and_method_with_inputs_and_results(finished: tuple[Path, Any]) -> None:
    root, result = finished
    rows = read_table(root)
    assert len(rows) == 5 * 2
    assert rows == result.rows  # the Parquet file holds exactly what batch() returned
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 8
    assert {(r["field"], r["acceleration"], r["method"]) for r in ok} == {
        (f, a, m) for f in ("1.5T", "3T") for a in (2.0, 3.0) for m in ("fft", "sense")
    }
    for row in ok:
        assert row["matrix"] == 64 and row["n_coils"] == 4 and row["phantom"] == "shepp-logan"
        assert 0 < row["ssim"] <= 1 and row["psnr"] > 10 and row["nmse"] > 0
        assert row["scan_time_s"] < row["scan_time_full_s"]
        assert row["wall_time_s"] > 0 and row["worker"].startswith("serial:") and row["peak_rss_mib"] > 0
    # SENSE beats zero filling on the same raw data
    for exam_id in {r["exam_id"] for r in ok}:
        by_method = {r["method"]: r["ssim"] for r in ok if r["exam_id"] == exam_id}
        assert by_method["sense"] > by_method["fft"]
    csv_text = (root / "results.csv").read_text().splitlines()
    assert len(csv_text) == 1 + len(rows) and csv_text[0].startswith("exam_id,status,reason,phantom")


def test_a_sar_refusal_is_recorded_with_its_one_line_reason(finished: tuple[Path, Any]) -> None:
    root, result = finished
    failed = [r for r in result.rows if r["status"] == "failed"]
    assert {r["method"] for r in failed} == {"fft", "sense"}
    reason = failed[0]["reason"]
    assert "head SAR" in reason and "W/kg" in reason and "\n" not in reason
    assert failed[0]["field"] == "7T" and failed[0]["ssim"] is None
    status = study_status(root)
    assert (status.total, status.done, status.counts) == (5, 5, {"ok": 4, "failed": 1})
    assert "5/5 exams done (4 ok, 1 failed)" in status.line()
    assert "head SAR" in (root / "report.html").read_text()


def test_the_report_has_its_three_figures(finished: tuple[Path, Any]) -> None:
    root, result = finished
    page = (root / "report.html").read_text()
    for name in ("ssim_vs_r.png", "scan_time_vs_quality.png", "worst_cases.png"):
        assert (root / name).stat().st_size > 5000
        assert f'src="{name}"' in page
    assert result.files["report"] == root / "report.html"


def test_a_second_run_does_only_what_is_missing(finished: tuple[Path, Any], tiny: Any) -> None:
    root, _ = finished
    stamps = {p.name: p.stat().st_mtime_ns for p in (root / EXAMS_DIR).iterdir()}
    again = batch(study_from_dict(tiny()), out=root, scheduler=SERIAL, report=False)
    assert again.ran == 0
    assert {p.name: p.stat().st_mtime_ns for p in (root / EXAMS_DIR).iterdir()} == stamps
    # one more exam: only it runs
    spec = tiny(exams=[{"field": "3T", "acceleration": 2, "seed": 7}])
    more = batch(study_from_dict(spec), out=root, scheduler=SERIAL, report=False)
    assert more.ran == 1 and more.status.counts == {"ok": 5}


def test_an_unexpected_error_is_recorded_and_retried_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Any
) -> None:
    import hifield.pipeline

    spec = tiny(axes={"fields": ["3T"], "accelerations": [2]})
    real_scan = hifield.pipeline.scan

    def broken(config: Any, **_: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hifield.pipeline, "scan", broken)
    first = batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False)
    assert [(r["status"], r["reason"]) for r in first.rows] == [("error", "RuntimeError: disk on fire")] * 2
    assert first.status.counts == {"error": 1} and first.status.done == 0
    assert not [p for p in (tmp_path / EXAMS_DIR).iterdir()]  # no exam folder for a broken exam
    assert len(list((tmp_path / ERRORS_DIR).iterdir())) == 1
    monkeypatch.setattr(hifield.pipeline, "scan", real_scan)
    second = batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False)
    assert second.ran == 1 and second.status.counts == {"ok": 1}
    assert not list((tmp_path / ERRORS_DIR).iterdir())


def test_leftovers_of_an_interrupted_exam_are_removed_and_never_count(tmp_path: Path, tiny: Any) -> None:
    spec = tiny(axes={"fields": ["3T"], "accelerations": [2]})
    exam_id = study_from_dict(spec).exams[0].exam_id
    leftover = tmp_path / EXAMS_DIR / PARTIAL_DIR / f"{exam_id}-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "raw.h5").write_bytes(b"half")
    result = batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False)
    assert result.ran == 1 and not (tmp_path / EXAMS_DIR / PARTIAL_DIR).exists()
    assert os.listdir(tmp_path / EXAMS_DIR) == [exam_id]


def test_retry_failed_runs_refused_exams_again(tmp_path: Path, sar_protocol: str) -> None:
    spec = {
        "axes": {"fields": ["7T"]},
        "fixed": {"protocol": sar_protocol, "matrix": 64, "n_coils": 2, "write_files": False},
        "methods": ["fft"],
    }
    first = batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False)
    assert first.status.counts == {"failed": 1}
    assert batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False).ran == 0
    again = batch(study_from_dict(spec), out=tmp_path, scheduler=SERIAL, report=False, retry_failed=True)
    assert again.ran == 1 and again.status.counts == {"failed": 1}


def test_the_csv_copy_reads_back_to_the_same_rows_without_pyarrow(
    finished: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    root, _ = finished
    from_parquet = read_table(root)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as without the extra: read the CSV
    from_csv = read_table(root)
    assert from_csv == from_parquet and len(from_csv) >= 8
