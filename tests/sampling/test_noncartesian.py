"""Tests of golden-angle radial, stack-of-stars and variable-density spiral patterns from gradient waveforms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from hifield.errors import ConfigError, HardwareLimitError
from hifield.hardware import Scanner
from hifield.sampling.noncartesian import (
    GOLDEN_ANGLE_RAD,
    GOLDEN_RATIO,
    NonCartesianPattern,
    golden_angle_radial,
    k_from_gradient,
    point_spread_function,
)
from hifield.sampling.spiral import spiral_effective_acceleration, variable_density_spiral

GRAD = Scanner.preset("3T").gradients


def _check_limits(p: NonCartesianPattern) -> None:
    lim_g, lim_s = GRAD.max_grad_t_per_m, GRAD.max_slew_t_per_m_per_s
    for part in range(p.n_partitions):
        waves = np.stack([p.waveform(i, part) for i in range(p.n_shots)])
        slew = np.diff(waves, axis=1) / p.raster_time_s
        assert np.abs(waves).max() <= lim_g  # per axis
        assert np.abs(slew).max() <= lim_s  # per axis
        assert np.all(waves[:, 0] == 0) and np.all(waves[:, -1] == 0)  # starts and ends at zero


# ----------------------------------------------------------------------------------------------- radial


def test_golden_angle_increment() -> None:
    assert math.degrees(GOLDEN_ANGLE_RAD) == pytest.approx(111.246, abs=5e-4)
    assert GOLDEN_ANGLE_RAD == pytest.approx(math.pi * (math.sqrt(5) - 1) / 2)
    p = golden_angle_radial(64, fov_m=0.2, gradients=GRAD, n_spokes=5)
    k = p.trajectory.kspace_m
    angles = np.arctan2(k[:, -1, 1], k[:, -1, 2])  # direction of the last (positive-k) sample of each spoke
    steps = np.mod(np.diff(angles), 2 * np.pi)
    np.testing.assert_allclose(steps, GOLDEN_ANGLE_RAD, atol=1e-9)


@pytest.mark.parametrize("n", [7, 13, 34, 89, 100, 233, 377])
def test_golden_angle_uniformity(n: int) -> None:
    angles = np.sort(np.mod(np.arange(n) * GOLDEN_ANGLE_RAD, np.pi))
    gaps = np.diff(np.r_[angles, angles[0] + np.pi])
    distinct = np.unique(np.round(gaps, 9))
    assert distinct.size <= 3  # three-distance theorem
    assert gaps.max() / gaps.min() <= GOLDEN_RATIO**2 + 1e-9
    assert gaps.max() <= 2.0 * np.pi / n
    if n in (13, 34, 89, 233, 377):  # Fibonacci numbers: two gaps in the golden ratio
        assert distinct.size == 2
        assert distinct[1] / distinct[0] == pytest.approx(GOLDEN_RATIO, rel=1e-6)


def test_radial_samples_from_waveform_lie_on_the_nyquist_spoke() -> None:
    n, fov = 64, 0.22
    p = golden_angle_radial(n, fov_m=fov, gradients=GRAD, n_spokes=21)
    k = p.trajectory.kspace_m
    angles = np.arange(21) * GOLDEN_ANGLE_RAD
    expected_r = (np.arange(n) - n // 2) / fov
    np.testing.assert_allclose(k[..., 2], np.cos(angles)[:, None] * expected_r, atol=1e-8 * n / fov)
    np.testing.assert_allclose(k[..., 1], np.sin(angles)[:, None] * expected_r, atol=1e-8 * n / fov)
    assert np.all(k[..., 0] == 0)
    _check_limits(p)


@pytest.mark.parametrize("accel", [1.0, 2.0, 4.0, 8.0])
def test_radial_effective_acceleration_and_calibration(accel: float) -> None:
    p = golden_angle_radial(256, fov_m=0.24, gradients=GRAD, acceleration=accel)
    assert abs(p.acceleration - accel) / accel < 0.02
    assert p.n_shots == round(256 * np.pi / 2 / accel)
    assert p.calibration_radius_m == pytest.approx(min(p.n_shots / (np.pi * 0.24), 128 / 0.24))


def test_stack_of_stars_partitions_from_z_gradient() -> None:
    p = golden_angle_radial(48, fov_m=0.2, gradients=GRAD, acceleration=3, n_partitions=8, fov_z_m=0.08)
    k = p.trajectory.kspace_m
    assert k.shape == (8, p.n_shots, 48, 3)
    np.testing.assert_allclose(k[:, :, :, 0], ((np.arange(8) - 4) / 0.08)[:, None, None] * np.ones((1, p.n_shots, 48)))
    np.testing.assert_allclose(k[3, :, :, 1:], k[4, :, :, 1:], atol=1e-9)  # same in-plane spokes per partition
    assert p.name == "stack-of-stars"
    _check_limits(p)


def test_density_compensation_integrates_to_the_disc_area() -> None:
    kmax = 128 / 0.24
    radial = golden_angle_radial(256, fov_m=0.24, gradients=GRAD, acceleration=1)
    assert radial.trajectory.density is not None
    assert radial.trajectory.density.sum() == pytest.approx(np.pi * kmax**2, rel=0.02)
    spiral = variable_density_spiral(256, fov_m=0.24, gradients=GRAD, n_interleaves=8, acceleration=2)
    assert spiral.trajectory.density is not None
    assert spiral.trajectory.density.sum() == pytest.approx(np.pi * kmax**2, rel=0.03)


def test_psf_nufft_matches_direct_sum() -> None:
    p = golden_angle_radial(32, fov_m=0.2, gradients=GRAD, n_spokes=13)
    np.testing.assert_allclose(p.psf(method="nufft"), p.psf(method="direct"), atol=1e-7)
    k = np.array([[0.0, 0.0], [10.0, -20.0], [33.0, 5.0]])
    a = point_spread_function(k, np.array([1.0, 0.5, 2.0]), fov_m=0.15, n=9, method="nufft")
    b = point_spread_function(k, np.array([1.0, 0.5, 2.0]), fov_m=0.15, n=9, method="direct")
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_radial_side_lobes_grow_with_undersampling() -> None:
    lobes = [golden_angle_radial(96, fov_m=0.2, gradients=GRAD, acceleration=r).psf_peak_sidelobe() for r in (1, 4, 12)]
    assert lobes[0] < lobes[1] < lobes[2]
    assert lobes[0] < 0.1  # only the jinc ringing of the round support


def test_radial_bad_input() -> None:
    with pytest.raises(ConfigError, match="acceleration must be a number >= 1"):
        golden_angle_radial(64, fov_m=0.2, gradients=GRAD, acceleration=0.5)
    with pytest.raises(ConfigError, match="leaves no spoke") as info:
        golden_angle_radial(64, fov_m=0.2, gradients=GRAD, acceleration=500)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="exactly one"):
        golden_angle_radial(64, fov_m=0.2, gradients=GRAD)
    with pytest.raises(ConfigError, match="slab thickness"):
        golden_angle_radial(64, fov_m=0.2, gradients=GRAD, n_spokes=10, n_partitions=4)
    with pytest.raises(HardwareLimitError, match=r"exceeds the 80\.0 mT/m limit"):
        golden_angle_radial(64, fov_m=0.02, gradients=GRAD, n_spokes=10, dwell_s=1e-6)


# ----------------------------------------------------------------------------------------------- spiral


@pytest.mark.parametrize(("accel", "n_il"), [(1.0, 16), (2.0, 8), (4.0, 4), (6.0, 2)])
def test_spiral_within_gradient_and_slew_limits(accel: float, n_il: int) -> None:
    p = variable_density_spiral(256, fov_m=0.24, gradients=GRAD, n_interleaves=n_il, acceleration=accel)
    _check_limits(p)
    g = p.gradient_t_per_m
    assert np.linalg.norm(g, axis=-1).max() <= GRAD.max_grad_t_per_m  # vector norm too
    assert np.linalg.norm(np.diff(g, axis=1), axis=-1).max() / p.raster_time_s <= GRAD.max_slew_t_per_m_per_s
    # time-optimal: the slew limit is actually used (within the 2 % design margin)
    assert np.abs(np.diff(g, axis=1)).max() / p.raster_time_s > 0.95 * GRAD.max_slew_t_per_m_per_s
    assert abs(p.acceleration - accel) / accel < 0.02
    kr = np.hypot(p.trajectory.kspace_m[..., 1], p.trajectory.kspace_m[..., 2])
    assert kr.max() == pytest.approx(128 / 0.24, rel=0.01)


def test_spiral_trajectory_is_the_integral_of_its_waveform() -> None:
    p = variable_density_spiral(96, fov_m=0.2, gradients=GRAD, n_interleaves=3, acceleration=2)
    # independent integration: fine cumulative trapezoid of the linearly upsampled waveform
    up = 20
    t_fine = np.arange((p.gradient_t_per_m.shape[1] - 1) * up + 1) * p.raster_time_s / up
    t_r = np.arange(p.gradient_t_per_m.shape[1]) * p.raster_time_s
    g_fine = np.stack([np.interp(t_fine, t_r, p.gradient_t_per_m[1, :, a]) for a in range(3)], axis=-1)
    k_fine = np.concatenate([np.zeros((1, 3)), np.cumsum(0.5 * (g_fine[1:] + g_fine[:-1]), axis=0)])
    k_fine *= 42.577478518e6 * p.raster_time_s / up
    k_at_adc = np.stack([np.interp(p.adc_times_s, t_fine, k_fine[:, a]) for a in range(3)], axis=-1)
    np.testing.assert_allclose(p.trajectory.kspace_m[1], k_at_adc, atol=1e-6 * 48 / 0.2)
    np.testing.assert_allclose(
        k_from_gradient(p.gradient_t_per_m, p.raster_time_s, p.adc_times_s), p.trajectory.kspace_m
    )


def test_spiral_centre_nyquist_and_edge_undersampled() -> None:
    fov, n = 0.24, 128
    dk = 1 / fov
    full = variable_density_spiral(n, fov_m=fov, gradients=GRAD, n_interleaves=8, acceleration=1)
    vd = variable_density_spiral(
        n, fov_m=fov, gradients=GRAD, n_interleaves=8, acceleration=4, calibration_fraction=0.3
    )
    grid = (np.stack(np.meshgrid(np.arange(-64, 64), np.arange(-64, 64)), -1).reshape(-1, 2) + 0.5) * dk

    def gap(p: NonCartesianPattern, lo: float, hi: float) -> float:
        pts = p.trajectory.kspace_m[..., 1:].reshape(-1, 2)
        r = np.hypot(grid[:, 0], grid[:, 1])
        sel = grid[(r > lo) & (r < hi)]
        return float(cKDTree(pts).query(sel)[0].max() / dk)

    kc = vd.calibration_radius_m
    assert kc == pytest.approx(0.3 * 64 / fov)
    assert gap(full, 0, 60 * dk) < 0.75  # Nyquist: no grid point farther than ~dk / sqrt(2) from a sample
    assert gap(vd, 0, kc - dk) < 0.75
    assert gap(vd, 50 * dk, 60 * dk) > 1.5


def test_spiral_acceleration_matches_path_length_ratio() -> None:
    # analytic R (path-length integral) against the measured lengths of the designed trajectories
    full = variable_density_spiral(128, fov_m=0.24, gradients=GRAD, n_interleaves=4, acceleration=1)
    vd = variable_density_spiral(128, fov_m=0.24, gradients=GRAD, n_interleaves=4, acceleration=3)

    def length(p: NonCartesianPattern) -> float:
        return float(np.linalg.norm(np.diff(p.trajectory.kspace_m[0], axis=0), axis=-1).sum())

    assert length(full) / length(vd) == pytest.approx(3.0, rel=0.03)
    assert spiral_effective_acceleration(500.0, 100.0, 1e9) == pytest.approx(25.0, rel=0.01)  # limit (kmax/kc)^2


def test_spiral_side_lobes_grow_with_acceleration() -> None:
    lobes = [
        variable_density_spiral(64, fov_m=0.2, gradients=GRAD, n_interleaves=4, acceleration=r).psf_peak_sidelobe()
        for r in (1, 4)
    ]
    assert lobes[0] < lobes[1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"acceleration": 0.9}, "acceleration must be a number >= 1"),
        ({"acceleration": 20, "calibration_fraction": 0.25}, "beyond what a calibration radius"),
        ({"calibration_fraction": 1.5}, "does not fit the matrix"),
        ({"n_interleaves": 0}, "interleaves must be an integer >= 1"),
    ],
)
def test_spiral_bad_input(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"n_interleaves": 4, **kwargs}
    with pytest.raises(ConfigError, match=needle) as info:
        variable_density_spiral(64, fov_m=0.2, gradients=GRAD, **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["radial", "spiral"])
def test_pypulseq_accepts_the_waveforms_within_3t_limits(kind: str) -> None:
    """Independent check: pypulseq's own slew/amplitude check passes at the 3T limits and fails at 0.75 x slew."""
    pp = pytest.importorskip("pypulseq")
    if kind == "radial":
        p = golden_angle_radial(128, fov_m=0.24, gradients=GRAD, acceleration=3)
    else:
        p = variable_density_spiral(128, fov_m=0.24, gradients=GRAD, n_interleaves=4, acceleration=3)
    times = np.arange(p.gradient_t_per_m.shape[1]) * p.raster_time_s
    ok = pp.Opts(max_grad=80, grad_unit="mT/m", max_slew=200, slew_unit="T/m/s", grad_raster_time=p.raster_time_s)
    tight = pp.Opts(max_grad=80, grad_unit="mT/m", max_slew=150, slew_unit="T/m/s", grad_raster_time=p.raster_time_s)
    for shot in (0, p.n_shots - 1):
        w = p.waveform(shot) * 42.577478518e6  # Hz/m
        for axis, col in (("x", 2), ("y", 1)):
            pp.make_extended_trapezoid(axis, times=times, amplitudes=w[:, col], system=ok)
    w = p.waveform(0) * 42.577478518e6
    with pytest.raises(ValueError, match=r"[Ss]lew"):
        pp.make_extended_trapezoid("x", times=times, amplitudes=np.hypot(w[:, 1], w[:, 2]), system=tight)
