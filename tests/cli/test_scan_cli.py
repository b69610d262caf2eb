"""``hifield scan`` end to end in a subprocess, and its refusals of bad input."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def scan_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("scan") / "exam"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hifield.cli.main",
            "scan",
            "--matrix",
            "128",
            "--slices",
            "1",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout), proc.stderr


def test_scan_writes_every_output(scan_output: tuple[Path, dict, str]) -> None:
    out, summary, _ = scan_output
    assert (out / "raw.h5").is_file()
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["reconstructions"] == summary["reconstructions"]
    for method in ("fft", "sense", "cs"):
        assert list((out / "dicom" / method).glob("*.dcm")), method
        assert (out / "nifti" / f"{method}.nii.gz").is_file()
    assert not list(out.parent.glob(".exam.partial-*")), "staging folder left behind"


def test_summary_has_scan_times_and_metrics(scan_output: tuple[Path, dict, str]) -> None:
    _, summary, _ = scan_output
    assert summary["acceleration"] == pytest.approx(4.0, rel=0.02)
    assert summary["scan_time_full_s"] / summary["scan_time_s"] == pytest.approx(summary["acceleration"], rel=0.05)
    methods = {r["method"]: r for r in summary["reconstructions"]}
    assert set(methods) == {"fft", "sense", "cs"}
    for row in methods.values():
        assert {"nmse", "psnr", "ssim"} <= set(row)
        assert 0 < row["ssim"] <= 1 and row["nmse"] > 0
    assert methods["cs"]["ssim"] >= methods["fft"]["ssim"] + 0.1
    assert methods["sense"]["nmse"] < methods["fft"]["nmse"]


def test_dicom_reads_back_with_mr_attributes(scan_output: tuple[Path, dict, str]) -> None:
    import pydicom

    out, summary, _ = scan_output
    files = sorted((out / "dicom" / "cs").glob("*.dcm"))
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert float(ds.MagneticFieldStrength) == pytest.approx(3.0)
    assert float(ds.EchoTime) == pytest.approx(summary["te_ms"], rel=1e-3)
    assert float(ds.RepetitionTime) == pytest.approx(summary["tr_ms"], rel=1e-3)
    assert float(ds.FlipAngle) == pytest.approx(summary["flip_angle_deg"], rel=1e-3)
    assert (ds.Rows, ds.Columns) == (128, 128)
    pixels = ds.pixel_array.astype(float)
    assert pixels.max() > 0 and np.isfinite(pixels).all()


def test_ismrmrd_raw_reads_back(scan_output: tuple[Path, dict, str]) -> None:
    from hifield.io import read_ismrmrd

    out, summary, _ = scan_output
    raw = read_ismrmrd(out / "raw.h5")
    assert raw.kspace.shape[-2:] == (128, 128)
    assert raw.n_coils == 16
    assert int(raw.sampling_mask[0, :, 0].sum()) == summary["lines_acquired"]


def test_console_shows_progress_and_table(hifield_cli: Runner, tmp_path: Path) -> None:
    proc = hifield_cli(
        "scan", "--matrix", "64", "--slices", "1", "--calib", "12", "--recon", "fft", "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "Simulating" in text and "fft" in text and "scan time" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--protocol", "nosuch"], "unknown protocol"),
        (["--field", "4T"], "unknown --field"),
        (["--recon", "magic"], "unknown --recon"),
        (["--accel", "0.5"], "acceleration must be a number >= 1; got '0.5'"),
        (["--accel", "abc"], "acceleration must be a number >= 1; got 'abc'"),
        (["--matrix", "-5"], "matrix must be an integer between 8 and 1024; got '-5'"),
        (["--matrix", "abc"], "matrix must be an integer between 8 and 1024; got 'abc'"),
        (["--matrix", "2048"], "matrix must be an integer between 8 and 1024; got '2048'"),
        (["--pattern", "zigzag"], "unknown sampling pattern 'zigzag'"),
    ],
)
def test_bad_input_one_line_exit_1(hifield_cli: Runner, tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "never"
    proc = hifield_cli("scan", "--slices", "1", "--out", str(out), *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_unwritable_output_folder(hifield_cli: Runner, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = hifield_cli("scan", "--matrix", "64", "--slices", "1", "--calib", "12", "--out", str(blocker / "sub"))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "not writable" in proc.stderr
    assert blocker.read_text() == "not a folder"


def test_existing_outputs_survive_a_failed_scan(hifield_cli: Runner, tmp_path: Path) -> None:
    out = tmp_path / "exam"
    out.mkdir()
    (out / "summary.json").write_text('{"keep": true}')
    proc = hifield_cli("scan", "--out", str(out), "--protocol", "nosuch")
    assert proc.returncode == 1
    assert json.loads((out / "summary.json").read_text()) == {"keep": True}


def test_default_exam_covers_the_brain_and_slices_1_gives_one_slice(hifield_cli: Runner, tmp_path: Path) -> None:
    # the default exam is the whole-brain stack (24 x 5 mm axial); small matrix and one method to keep it short
    small = ("--matrix", "32", "--calib", "8", "--recon", "fft", "--json")
    proc = hifield_cli("scan", *small, "--out", str(tmp_path / "brain"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_slices"] == 24 and summary["slice_thickness_mm"] == pytest.approx(5.0)
    assert np.ptp(summary["slice_positions_mm"]) >= 110.0  # the brain's height
    assert len(list((tmp_path / "brain" / "dicom" / "fft").glob("*.dcm"))) == 24
    one = hifield_cli("scan", *small, "--slices", "1", "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert "n_slices" not in json.loads(one.stdout)
    assert len(list((tmp_path / "one" / "dicom" / "fft").glob("*.dcm"))) == 1
