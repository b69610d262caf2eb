"""Tests of the Cartesian sampling patterns and retrospective undersampling."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError
from hifield.sampling import equispaced_lines, full_lines, make_pattern, undersample, variable_density_lines


@pytest.mark.parametrize("n_lines", [64, 256, 320])
@pytest.mark.parametrize("accel", [2.0, 4.0, 6.0, 8.0])
def test_effective_acceleration_within_two_percent(n_lines: int, accel: float) -> None:
    pattern = variable_density_lines(n_lines, acceleration=accel, n_calibration=min(24, n_lines // 8), seed=3)
    assert abs(pattern.acceleration - accel) / accel < 0.02 or abs(pattern.n_acquired - n_lines / accel) <= 0.5


def test_centre_fully_sampled_and_calibration_subset() -> None:
    pattern = variable_density_lines(256, acceleration=4, n_calibration=24, seed=0)
    centre = pattern.mask[0, 128 - 12 : 128 + 12, 0]
    assert centre.all()
    assert pattern.calibration_lines == 24
    assert not np.any(pattern.calibration & ~pattern.mask)


def test_same_seed_same_pattern_and_other_seed_differs() -> None:
    a = variable_density_lines(256, acceleration=4, seed=11)
    b = variable_density_lines(256, acceleration=4, seed=11)
    c = variable_density_lines(256, acceleration=4, seed=12)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.mask, c.mask)


def test_density_falls_towards_the_edge() -> None:
    hits = np.zeros(256)
    for seed in range(40):
        hits += variable_density_lines(256, acceleration=4, n_calibration=0, seed=seed).mask[0, :, 0]
    centre = hits[128 - 32 : 128 + 32].mean()
    edge = np.r_[hits[:32], hits[-32:]].mean()
    assert centre > 2 * edge


def test_psf_side_lobe_lower_than_equispaced() -> None:
    vd = variable_density_lines(256, acceleration=4, n_calibration=0, seed=0, power=1.0)
    eq = equispaced_lines(256, acceleration=4, n_calibration=0)
    assert vd.psf_peak_sidelobe() < eq.psf_peak_sidelobe()
    assert eq.psf_peak_sidelobe() == pytest.approx(1.0)


def test_order_centre_out_starts_at_centre() -> None:
    pattern = variable_density_lines(128, acceleration=2, seed=0, order="centre-out")
    assert pattern.order[0] == 64
    assert sorted(pattern.order.tolist()) == np.flatnonzero(pattern.mask[0, :, 0]).tolist()


def test_full_pattern_is_every_line() -> None:
    full = full_lines(32)
    assert full.acceleration == 1.0 and full.order.tolist() == list(range(32))
    assert make_pattern("variable-density", 32, acceleration=1).n_acquired == 32


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"acceleration": 0.5}, "acceleration must be a number >= 1"),
        ({"acceleration": float("nan")}, "acceleration must be a number >= 1"),
        ({"acceleration": 4, "n_calibration": 300}, "does not fit"),
        ({"acceleration": 20, "n_calibration": 24}, "fewer than the 24 calibration lines"),
    ],
)
def test_bad_requests_give_one_line_errors(kwargs: dict[str, float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        variable_density_lines(256, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_unknown_pattern_name() -> None:
    with pytest.raises(ConfigError, match="unknown sampling pattern 'zigzag'"):
        make_pattern("zigzag", 64, acceleration=2)
    with pytest.raises(ConfigError, match="non-Cartesian"):
        make_pattern("spiral", 64, acceleration=2)
    with pytest.raises(ConfigError, match="unknown sampling pattern 'zigzag'"):
        make_pattern("zigzag", 64, acceleration=1)  # R = 1 is the full pattern, but only for a known name


def _raw(n: int = 32) -> RawData:
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((4, 1, n, n)) + 1j * rng.standard_normal((4, 1, n, n))).astype(np.complex64)
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, 0.2, 0.2),
        matrix=(1, n, n),
        te_s=0.004,
        tr_s=0.01,
        flip_angle_rad=0.3,
        scan_time_s=n * 0.01,
        scan_time_full_s=n * 0.01,
    )
    return RawData(kspace=kspace, header=header)


def test_undersample_zeroes_unacquired_lines_and_scales_time() -> None:
    raw = _raw()
    pattern = variable_density_lines(32, acceleration=2, n_calibration=8, seed=1)
    result = undersample(raw, pattern)
    kept = pattern.mask[0, :, 0]
    assert np.all(result.kspace[..., ~kept, :] == 0)
    np.testing.assert_array_equal(result.kspace[..., kept, :], raw.kspace[..., kept, :])
    assert result.header.acceleration == pytest.approx(2.0)
    assert result.header.scan_time_s == pytest.approx(raw.header.scan_time_s / 2)
    assert result.calibration is not None and int(result.calibration[0, :, 0].sum()) == 8
    with pytest.raises(ConfigError, match="already undersampled"):
        undersample(result, pattern)
    with pytest.raises(ConfigError, match="phase-encode lines"):
        undersample(raw, variable_density_lines(64, acceleration=2, seed=0))


def test_on_grid_places_a_k1_pattern_on_every_partition() -> None:
    from hifield.sampling import on_grid

    pattern = variable_density_lines(32, acceleration=2, n_calibration=8, seed=1)
    mask, calibration = on_grid(pattern, axis="k1", grid=(1, 32))
    assert mask.shape == calibration.shape == (1, 32, 1)
    np.testing.assert_array_equal(mask, pattern.mask)
    np.testing.assert_array_equal(calibration, pattern.calibration)


def test_on_grid_places_a_partition_pattern_on_whole_planes() -> None:
    from hifield.sampling import on_grid

    pattern = equispaced_lines(16, acceleration=2, n_calibration=4)
    mask, marked = on_grid(pattern, axis="k2", grid=(16, 8))
    assert np.array_equal(mask[:, :, 0].all(axis=1), pattern.mask.reshape(-1))
    assert np.array_equal(marked[:, :, 0].any(axis=1), pattern.calibration.reshape(-1))
    assert marked[pattern.calibration.reshape(-1)].all()  # every k1 line of a calibration partition
    with pytest.raises(ConfigError, match="cannot sample the 16 partitions"):
        on_grid(equispaced_lines(8, acceleration=2, n_calibration=2), axis="k2", grid=(16, 8))


def test_centre_lines_are_all_calibration() -> None:
    from hifield.sampling import centre_lines

    pattern = centre_lines(64, 24)
    assert pattern.n_acquired == pattern.calibration_lines == 24
    assert pattern.order.tolist() == list(range(20, 44))
