"""The composable verbs through files: simulate -> undersample -> recon, checked like BART's pipeline tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def full_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "full.h5"
    proc = run("simulate", "--matrix", "96", "--coils", "8", "--out", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["acceleration"] == 1 and summary["scan_time_s"] > 0 and path.is_file()
    return path


@pytest.mark.parametrize(("method", "min_ssim"), [("sense", 0.80), ("cs", 0.90), ("grappa", 0.75)])
def test_simulate_undersample_recon_reaches_ssim(full_raw: Path, tmp_path: Path, method: str, min_ssim: float) -> None:
    r3 = tmp_path / "r3.h5"
    proc = run(
        "undersample",
        str(full_raw),
        "--pattern",
        "equispaced" if method == "grappa" else "variable-density",
        "--accel",
        "3",
        "--calib",
        "24",
        "--out",
        str(r3),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lines_acquired"] < 96
    out = tmp_path / f"{method}.nii.gz"
    proc = run("recon", str(r3), "--method", method, "--out", str(out), "--reference", str(full_raw), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    zero_filled = json.loads(
        run(
            "recon",
            str(r3),
            "--method",
            "fft",
            "--out",
            str(tmp_path / "zf.npy"),
            "--reference",
            str(full_raw),
            "--json",
        ).stdout
    )
    assert out.is_file()
    assert result["ssim"] >= min_ssim, result
    assert result["ssim"] > zero_filled["ssim"], (result, zero_filled)


def test_recon_writes_a_dicom_series(full_raw: Path, tmp_path: Path) -> None:
    import pydicom

    series = tmp_path / "series"
    proc = run("recon", str(full_raw), "--method", "fft", "--out", str(series))
    assert proc.returncode == 0, proc.stderr
    files = sorted(series.glob("*.dcm"))
    assert files and pydicom.dcmread(files[0]).Modality == "MR"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["recon", "missing.h5", "--out", "x.nii.gz"], "missing.h5"),
        (["recon", "{raw}", "--method", "magic", "--out", "x.nii.gz"], "unknown"),
        (["recon", "{raw}", "--out", "x.txt"], "unknown output type"),
        (["undersample", "{raw}", "--accel", "0", "--out", "y.h5"], "acceleration must be a number >= 1"),
        (["undersample", "{raw}", "--accel", "4", "--calib", "500", "--out", "y.h5"], "calibration"),
        (["simulate", "--engine", "nosuch", "--matrix", "32", "--out", "z.h5"], "unknown simulation engine"),
    ],
)
def test_verbs_refuse_bad_input_in_one_line(full_raw: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    argv = [a.replace("{raw}", str(full_raw)) for a in args]
    argv = [
        str(tmp_path / a) if a.endswith((".h5", ".gz", ".txt")) and "{" not in a and "/" not in a else a for a in argv
    ]
    proc = run(*argv)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not list(tmp_path.glob("*.partial*"))


def test_corrupt_raw_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    proc = run("recon", str(bad), "--out", str(tmp_path / "o.nii.gz"))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize(("protocol", "engine"), [("gre_t1_2d", "bloch"), ("gre_t1_2d", "fast"), ("tse_t2_2d", "fast")])
def test_simulate_a_seq_file(tmp_path: Path, protocol: str, engine: str) -> None:
    import numpy as np

    import hifield as hf
    from hifield.io import read_ismrmrd
    from hifield.sequence import write_seq

    scanner = hf.Scanner.preset("3T")
    built = hf.get_protocol(protocol).with_changes(matrix=24).build(scanner)
    seq_path = write_seq(built, tmp_path / f"{protocol}.seq")
    out = tmp_path / "from_seq.h5"
    proc = run(
        "simulate", "--seq", str(seq_path), "--phantom", "shepp-logan", "--coils", "2", "--engine", engine,
        "--out", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["engine"] == engine and summary["scan_time_s"] == pytest.approx(built.duration_s, rel=1e-3)
    raw = read_ismrmrd(out)
    assert raw.kspace.shape[-2:] == (24, 24) and np.abs(raw.kspace).max() > 0


def test_simulate_refuses_a_seq_file_without_adc(tmp_path: Path) -> None:
    import pypulseq as pp

    seq = pp.Sequence()
    seq.add_block(pp.make_delay(1e-3))
    path = tmp_path / "no_adc.seq"
    seq.write(str(path))
    proc = run("simulate", "--seq", str(path), "--out", str(tmp_path / "x.h5"))
    assert proc.returncode == 1 and "no ADC" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_recon_whitens_with_the_files_noise_scan(full_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "white.npy"
    proc = run("recon", str(full_raw), "--method", "sense", "--whiten", "--out", str(out), "--reference", str(full_raw),
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ssim"] > 0.8


def test_recon_and_scan_offer_the_registrys_methods() -> None:
    from hifield.pipeline import RECON_CHOICES
    from hifield.recon import reconstructor_names

    recon_help = " ".join(run("recon", "--help").stdout.split())
    scan_help = " ".join(run("scan", "--help").stdout.split())
    assert f"Reconstruction: {', '.join(reconstructor_names())}." in recon_help.replace("│ ", "").replace(" │", "")
    assert f"reconstructions: {', '.join(RECON_CHOICES)}." in scan_help.replace("│ ", "").replace(" │", "")


def test_simulate_plays_a_seq_file_as_written_unless_asked_for_the_steady_state(tmp_path: Path) -> None:
    """A community .seq without dummy scans is simulated from rest, as a scanner plays it (its first lines carry
    the transient: more signal than the steady state); ``--start steady-state`` gives the prepared steady state.
    Both equal the engine called in-process with the same choice."""
    import numpy as np

    import hifield as hf
    from hifield.io import read_ismrmrd
    from hifield.phantom import make_phantom
    from hifield.sim.engines.fast import simulate_fast

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sequence"))
    from community import community_flash

    path = tmp_path / "flash.seq"
    community_flash(32, n_dummy=0).write(str(path))
    files = {}
    for start in (None, "steady-state"):
        out = tmp_path / f"{start}.h5"
        extra = () if start is None else ("--start", start)
        proc = run("simulate", "--seq", str(path), "--coils", "2", "--no-noise", "--out", str(out), "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["start"] == (start or "as-written")
        files[start] = read_ismrmrd(out).kspace
    scanner = hf.Scanner.resolve("3T").with_receive_coils(2)
    built = hf.sequence.load_seq(path, scanner_name=scanner.name)
    phantom = make_phantom("brain", b0_t=3.0, matrix=32, fov_m=built.protocol.fov_m, oversampling=2)
    rng = np.random.default_rng(0)
    for start, steady in ((None, False), ("steady-state", True)):
        expected = simulate_fast(phantom, built, scanner, noise=False, rng=rng, steady_state=steady).kspace
        assert np.allclose(files[start], expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert np.abs(files[None] - files["steady-state"]).max() > 0.05 * np.abs(files["steady-state"]).max()
    proc = run("simulate", "--seq", str(path), "--start", "prepared", "--out", str(tmp_path / "x.h5"))
    assert proc.returncode == 1 and "--start" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()
