"""``--accel`` followed from the command line to the mask in the ISMRMRD file, through one path."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

Runner = Callable[..., subprocess.CompletedProcess[str]]


def _planned(protocol: str, *, matrix: int, accel: float, pattern: str, calib: int, seed: int):  # type: ignore[no-untyped-def]
    """The pattern the same options give in-process: what the BuiltSequence carried."""
    from hifield.pipeline import ScanConfig, build_exam

    config = ScanConfig(
        protocol=protocol,
        acceleration=accel,
        pattern=pattern,
        n_calibration=calib,
        matrix=matrix,
        n_coils=4,
        seed=seed,
        write_files=False,
    ).validated()
    built = build_exam(config).acquisition.accelerated
    assert built.pattern is not None
    return built


def _grid(built, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    from hifield.sampling import on_grid

    return on_grid(built.pattern, axis=built.pattern_axis, grid=shape)


def _plane(flags: np.ndarray | None, raw) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Mask or calibration flags of the file on the ``(k2, k1, 1)`` grid (they hold along the readout)."""
    assert flags is not None
    full = np.broadcast_to(flags, raw.kspace.shape[-3:])
    assert (full == full[..., :1]).all()
    return full[..., :1]


@pytest.mark.parametrize(
    ("protocol", "matrix", "accel", "pattern", "calib"),
    [
        ("gre_t1_2d", 48, "3", "variable-density", 12),
        ("gre_t1_2d", 48, "2", "equispaced", 8),
        ("tse_t2_2d", 48, "2.5", "partial-fourier", 8),
    ],
)
def test_simulate_writes_the_mask_and_acs_of_the_pattern_the_sequence_carried(
    hifield_cli: Runner, tmp_path: Path, protocol: str, matrix: int, accel: str, pattern: str, calib: int
) -> None:
    from hifield.io import read_raw

    out = tmp_path / "raw.h5"
    args = ["--protocol", protocol, "--matrix", str(matrix), "--accel", accel, "--pattern", pattern]
    args += ["--calib", str(calib), "--coils", "4", "--seed", "3", "--out", str(out), "--json"]
    proc = hifield_cli("simulate", *args)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)

    built = _planned(protocol, matrix=matrix, accel=float(accel), pattern=pattern, calib=calib, seed=3)
    raw = read_raw(out)
    mask, calibration = _grid(built, raw.kspace.shape[-3:-1])
    np.testing.assert_array_equal(_plane(raw.mask, raw), mask)
    np.testing.assert_array_equal(_plane(raw.calibration, raw), calibration)
    assert int(calibration.sum()) == calib
    assert raw.header.acceleration == pytest.approx(built.pattern.acceleration)
    assert summary["pattern"] == built.pattern.name
    assert summary["acceleration"] == round(built.pattern.acceleration, 4)


def test_scan_writes_the_mask_of_its_pattern_and_reports_the_calibration_request(
    hifield_cli: Runner, tmp_path: Path
) -> None:
    from hifield.io import read_raw

    out = tmp_path / "exam"
    args = [
        "--matrix",
        "48",
        "--slices",
        "1",
        "--accel",
        "3",
        "--calib",
        "12",
        "--coils",
        "4",
        "--recon",
        "fft",
        "--seed",
        "5",
    ]
    proc = hifield_cli("scan", *args, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    built = _planned("gre_t1_2d", matrix=48, accel=3.0, pattern="variable-density", calib=12, seed=5)
    raw = read_raw(out / "raw.h5")
    mask, calibration = _grid(built, raw.kspace.shape[-3:-1])
    np.testing.assert_array_equal(_plane(raw.mask, raw), mask)
    np.testing.assert_array_equal(_plane(raw.calibration, raw), calibration)
    assert summary["calibration_lines_requested"] == summary["calibration_lines"] == 12
    assert summary["lines_acquired"] == built.pattern.n_acquired


def test_a_3d_protocol_is_accelerated_along_its_partitions_by_simulate_as_by_scan(
    hifield_cli: Runner, tmp_path: Path
) -> None:
    from hifield.io import read_raw
    from hifield.pipeline import ScanConfig, build_exam

    out = tmp_path / "raw3d.h5"
    args = ["--protocol", "gre_t1_3d", "--matrix", "32", "--accel", "2", "--calib", "24", "--coils", "2"]
    args += ["--pattern", "equispaced"]  # a line pattern; the default samples the (k2, k1) plane
    proc = hifield_cli("simulate", *args, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    built = build_exam(
        ScanConfig(
            protocol="gre_t1_3d", matrix=32, acceleration=2.0, n_calibration=24, n_coils=2, pattern="equispaced"
        ).validated()
    ).acquisition.accelerated
    assert built.pattern_axis == "k2"
    n_partitions = int(built.protocol.n_partitions)
    # the calibration request is capped at a quarter of the slab's partitions, visibly
    assert built.pattern.calibration_lines == n_partitions // 4 < 24
    raw = read_raw(out)
    mask, calibration = _grid(built, raw.kspace.shape[-3:-1])
    np.testing.assert_array_equal(_plane(raw.mask, raw), mask)
    np.testing.assert_array_equal(_plane(raw.calibration, raw), calibration)
    assert mask[:, :, 0].all(axis=1).sum() == built.pattern.n_acquired  # whole partitions


def test_simulate_gives_the_raw_data_of_scan_with_its_field_effects(hifield_cli: Runner, tmp_path: Path) -> None:
    """``hifield simulate`` on a protocol plays the accelerated scan of ``hifield scan`` on the same phantom, B1+ and
    B0 effects included: without noise its k-space is the pipeline's own (``simulate_exam``); ``--ideal`` drops the
    effects, and at 7 T that changes the data."""
    from hifield import pipeline
    from hifield.io import read_raw

    common = ["--field", "7T", "--matrix", "48", "--accel", "2", "--calib", "8", "--coils", "4", "--no-noise"]
    for name, extra in (("effects.h5", []), ("ideal.h5", ["--ideal"])):
        proc = hifield_cli("simulate", *common, *extra, "--out", str(tmp_path / name))
        assert proc.returncode == 0, proc.stderr
    config = pipeline.ScanConfig(
        field="7T", matrix=48, acceleration=2, n_calibration=8, n_coils=4, write_files=False
    ).validated()
    exam = pipeline.exam_for(config)
    _, expected = pipeline.simulate_exam(config, exam, pipeline.exam_phantom(config, exam)[0], noise=False)
    effects, ideal = read_raw(tmp_path / "effects.h5").kspace, read_raw(tmp_path / "ideal.h5").kspace
    peak = float(np.abs(expected.kspace).max())
    np.testing.assert_allclose(effects, expected.kspace, rtol=0, atol=1e-5 * peak)
    assert np.abs(ideal - effects).max() > 0.05 * peak
