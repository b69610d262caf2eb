"""The lesion check of benchmarks/learned_recon.py: a map flags a lost lesion only if it stands out over it, in the
direction of the error for a signed map, and few other places stand out as far."""

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
    residual = row["net"]["maps"]["dc_residual_image"]
    assert residual["flags"] and residual["excess"] > 0.5 * row["net"]["abs_error"] and residual["false_alarm"] == 0
    assert not row["net"]["maps"]["null_space"]["flags"]
    assert row["kept"]["kept"] and "flagged" not in row["kept"]


def test_a_map_with_blobs_as_strong_elsewhere_does_not_flag_the_lesion() -> None:
    from scipy.ndimage import gaussian_filter

    truth, lost, masks = _case()
    bump = (truth - 1.0) * 0.6
    noise = gaussian_filter(np.random.default_rng(0).standard_normal((64, 64)), 3.0)
    blobs = bump + 1.5 * noise / noise.std()  # lesion-sized blobs as strong as the lesion's all over the object
    (row,) = bench.lesion_contrasts(truth, {"net": lost}, {"net": {"dc_residual_image": blobs}}, masks)
    entry = row["net"]["maps"]["dc_residual_image"]
    assert entry["excess"] > 0.5 * row["net"]["abs_error"] and entry["false_alarm"] > 0.05
    assert not row["net"]["flagged"]


def test_a_signed_correction_flags_only_in_the_direction_of_the_error() -> None:
    truth, lost, masks = _case()
    brighter = (truth - 1.0) * 0.8  # the data say: brighter here, which the lost bright lesion needs
    (row,) = bench.lesion_contrasts(truth, {"net": lost}, {"net": {"dc_correction": brighter}}, masks)
    assert row["net"]["flagged"]
    (row,) = bench.lesion_contrasts(truth, {"net": lost}, {"net": {"dc_correction": -brighter}}, masks)
    assert row["net"]["maps"]["dc_correction"]["excess"] < 0 and not row["net"]["flagged"]


def test_a_significance_map_flags_by_its_level_over_the_lesion_in_noise_standard_deviations() -> None:
    truth, lost, masks = _case()
    disc = truth - 1.0
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((64, 64)).astype(np.float32)  # z of noise alone
    for level, flags in ((6.0, True), (2.0, False), (-6.0, False)):  # far above noise; below Z_FLAG; wrong sign
        z = noise + level * disc  # a matched filter's output: high over the lesion, its ring not subtracted
        (row,) = bench.lesion_contrasts(truth, {"net": lost}, {"net": {"dc_significance": z}}, masks)
        entry = row["net"]["maps"]["dc_significance"]
        assert entry["flags"] is flags and row["net"]["flagged"] is flags
        assert abs(entry["excess"] - level * float(disc[disc >= 0.9].mean())) < 0.5  # the mean over the lesion


def test_the_interval_column_counts_the_lesion_pixels_whose_truth_lies_inside() -> None:
    truth, lost, masks = _case()
    narrow = (lost - 0.1, lost + 0.1)  # misses the lost disc (truth up to 2, image 1)
    wide = (lost - 0.1, lost + 1.5)  # reaches it
    maps = {"net": {"null_space": np.zeros_like(truth)}, "wide": {"null_space": np.zeros_like(truth)}}
    (row,) = bench.lesion_contrasts(
        truth, {"net": lost, "wide": lost}, maps, masks, intervals={"net": narrow, "wide": wide}
    )
    assert row["net"]["interval_covers"] == 0.0 and row["wide"]["interval_covers"] == 1.0
    assert "interval_covers" not in bench.lesion_contrasts(truth, {"net": lost}, {"net": {}}, masks)[0]["net"]


def test_roc_auc_is_the_chance_that_a_positive_outscores_a_negative() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(400) < 0.3
    assert bench.roc_auc(positive.astype(float) + 0.01 * rng.random(400), positive) == 1.0  # perfect ranking
    assert bench.roc_auc(-positive.astype(float), positive) == 0.0
    assert abs(bench.roc_auc(rng.random(400), positive) - 0.5) < 0.1  # unrelated score: chance
    assert np.isnan(bench.roc_auc(rng.random(10), np.zeros(10, bool)))


def test_where_worse_than_cs_asks_whether_the_interval_is_wide_there() -> None:
    truth = np.ones((32, 32), np.float32)
    cs = truth + 0.01
    pred = truth.copy()
    pred[:8] += 0.5  # the learned image is worse than CS in the top rows only
    region = np.ones_like(truth, bool)
    wide_there = np.where(np.arange(32)[:, None] < 8, 0.5, 0.05) * np.ones((1, 32), np.float32)
    w = bench.where_worse(truth, pred, cs, pred - wide_there, pred + wide_there, region)
    assert w["fraction"] == 0.25 and w["width_auc"] == 1.0 and w["coverage"] == 1.0
    flat = np.full_like(truth, 0.125)  # the same width everywhere: shows nothing, covers nothing there
    w = bench.where_worse(truth, pred, cs, pred - flat, pred + flat, region)
    assert w["width_auc"] == 0.5 and w["coverage"] == 0.0 and "significance_auc" not in w
    z = -np.where(np.arange(32)[:, None] < 8, 9.0, 0.5) * np.ones((1, 32))  # the data say: too bright up there
    assert bench.where_worse(truth, pred, cs, pred - flat, pred + flat, region, z)["significance_auc"] == 1.0


def test_the_encoding_limit_is_the_truth_when_fully_sampled_and_loses_detail_when_not() -> None:
    from hifield.pipeline import scan
    from hifield.scan_config import ScanConfig

    full = ScanConfig(acceleration=1.0, matrix=64, n_calibration=8, recons=("fft",), write_files=False, seed=3)
    truth = scan(full).truth.reshape(64, 64)
    limit = bench.encoding_limit(full, n_iter=50)
    assert np.abs(limit - truth).max() < 1e-3 * truth.max()  # nothing is in the null space of a full scan
    under = ScanConfig(acceleration=6.0, matrix=64, n_calibration=8, recons=("fft",), write_files=False, seed=3)
    lost = np.linalg.norm(bench.encoding_limit(under, n_iter=50) - truth) / np.linalg.norm(truth)
    assert 0.01 < lost < 0.5  # R 6 leaves some of the image where the data cannot see it, not all of it


def test_the_held_out_range_is_read_from_the_weights_for_the_bin_of_the_rows_acceleration() -> None:
    m = {"conformal_test_coverage_p10_p90_by_acceleration": {"5<=R<8": [0.81, 0.97], "R>=8": [0.74, 0.96]}}
    assert bench.held_out_range(m, 5.95) == "0.81-0.97"
    assert bench.held_out_range(m, 8.0) == "0.74-0.96" and bench.held_out_range(m, 12.19) == "0.74-0.96"
    assert bench.held_out_range(m, 4.0) == "-" and bench.held_out_range({}, 8.0) == "-"  # not recorded
