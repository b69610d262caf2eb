"""The lesion check of benchmarks/learned_recon.py: a map flags a lost lesion only if it stands out over it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SPEC = importlib.util.spec_from_file_location(
    "learned_recon_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "learned_recon.py"
)
assert SPEC is not None and SPEC.loader is not None
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)


def _case() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Truth 64 x 64 of ones with a bright disc of 2 (mask on a 2x finer grid), and an image that lost the disc."""
    yy, xx = np.mgrid[:128, :128]
    fine = (yy - 64) ** 2 + (xx - 64) ** 2 <= 10**2
    truth = np.ones((64, 64), np.float32)
    frac = fine.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    truth += frac.astype(np.float32)
    return truth, np.ones((64, 64), np.float32), [fine]


def test_a_map_high_everywhere_does_not_flag_a_lost_lesion() -> None:
    truth, lost, masks = _case()
    flat = np.full((64, 64), 5.0, np.float32)
    maps = {"net": {"null_space": flat, "dc_residual_image": flat}}
    (row,) = bench.lesion_contrasts(truth, {"net": lost}, maps, masks)
    assert not row["net"]["kept"] and not row["net"]["flagged"] and not row["net"]["passes"]


def test_a_map_that_stands_out_over_the_lesion_flags_it() -> None:
    truth, lost, masks = _case()
    bump = (truth - 1.0) * 0.6  # stands out by 0.6 of the lost contrast over its ring
    maps = {"net": {"null_space": np.zeros_like(truth), "dc_residual_image": bump}}
    (row,) = bench.lesion_contrasts(truth, {"net": lost, "kept": truth}, maps, masks)
    assert row["net"]["flagged"] and row["net"]["passes"]
    assert row["net"]["residual_excess"] > 0.5 * row["net"]["abs_error"]
    assert row["kept"]["kept"] and "flagged" not in row["kept"]
