"""Tests of the variable-density Poisson-disc (k2, k1) sampler."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError
from hifield.sampling import undersample
from hifield.sampling.caipi import caipirinha
from hifield.sampling.grid2d import SamplingPattern2D, calibration_region, normalised_radius
from hifield.sampling.poisson import poisson_disc, poisson_disc_mask


@pytest.mark.parametrize("shape", [(64, 64), (96, 80), (128, 128)])
@pytest.mark.parametrize("accel", [2.0, 3.5, 6.0, 9.0])
def test_effective_acceleration_within_two_percent(shape: tuple[int, int], accel: float) -> None:
    pattern = poisson_disc(shape, acceleration=accel, calibration=(12, 12), seed=5)
    assert isinstance(pattern, SamplingPattern2D)
    assert pattern.mask.shape == (*shape, 1)
    assert abs(pattern.acceleration - accel) / accel < 0.02
    assert pattern.requested_acceleration == accel


def test_calibration_region_fully_sampled_rectangular_and_elliptical() -> None:
    rect = poisson_disc((80, 64), acceleration=6, calibration=(20, 16), seed=0)
    assert rect.mask[30:50, 24:40, 0].all()
    assert rect.calibration_lines == 20 * 16
    ell = poisson_disc((80, 64), acceleration=6, calibration=(20, 16), elliptical_calibration=True, seed=0)
    region = calibration_region((80, 64), (20, 16), elliptical=True)
    assert ell.mask[region, 0].all()
    # an ellipse covers pi/4 of its bounding box (discretised)
    assert abs(ell.calibration_lines / (20 * 16) - np.pi / 4) < 0.05
    assert not np.any(ell.calibration & ~ell.mask)


def test_same_seed_same_pattern_other_seed_differs() -> None:
    a = poisson_disc((64, 48), acceleration=5, calibration=(8, 8), seed=21)
    b = poisson_disc((64, 48), acceleration=5, calibration=(8, 8), seed=21)
    c = poisson_disc((64, 48), acceleration=5, calibration=(8, 8), seed=22)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.mask, c.mask)


def test_poisson_disc_property_and_maximality() -> None:
    shape = (48, 40)
    rho = normalised_radius(shape)
    radius = 1.5 + 2.5 * rho
    taken = poisson_disc_mask(radius, seed=3)
    pts = np.argwhere(taken)
    dist = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    r = radius[pts[:, 0], pts[:, 1]]
    np.fill_diagonal(dist, np.inf)
    # no two points closer than the smaller of their radii
    assert np.all(dist >= np.minimum(r[:, None], r[None, :]) - 1e-12)
    # maximal: every free grid point has an accepted point closer than its own radius
    free = np.argwhere(~taken)
    d_free = np.sqrt(((free[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert np.all(d_free < radius[free[:, 0], free[:, 1]])


def test_density_falls_from_centre_to_edge() -> None:
    p = poisson_disc((128, 128), acceleration=6, calibration=(0, 0), seed=1)
    rho = normalised_radius((128, 128))
    m = p.mask[:, :, 0]
    inner = m[(rho > 0.05) & (rho < 0.25)].mean()
    middle = m[(rho > 0.45) & (rho < 0.65)].mean()
    outer = m[(rho > 0.85) & (rho < 1.0)].mean()
    assert inner > 1.5 * middle
    assert middle > outer


def test_corner_cut_leaves_corners_empty() -> None:
    p = poisson_disc((64, 64), acceleration=3, calibration=(8, 8), corner_cut=True, seed=0)
    assert not p.mask[normalised_radius((64, 64)) > 1.0 + 1e-9, 0].any()
    q = poisson_disc((64, 64), acceleration=3, calibration=(8, 8), corner_cut=False, seed=0)
    assert q.mask[normalised_radius((64, 64)) > 1.0 + 1e-9, 0].any()


def test_psf_side_lobe_below_equispaced_lattice_at_same_r() -> None:
    lattice = caipirinha((64, 64), ry=2, rz=2, shift=0, calibration=(0, 0))
    vd = poisson_disc((64, 64), acceleration=lattice.acceleration, calibration=(0, 0), corner_cut=False, seed=0)
    assert vd.acceleration == pytest.approx(4.0)
    assert lattice.psf_peak_sidelobe() == pytest.approx(1.0)
    assert vd.psf_peak_sidelobe() < 0.5


def test_order_is_a_permutation_and_centre_out_starts_at_centre() -> None:
    p = poisson_disc((40, 32), acceleration=3, calibration=(8, 8), seed=0, order="centre-out")
    assert tuple(p.order_2d[0]) == (20, 16)
    pts = np.argwhere(p.mask[:, :, 0])
    assert sorted(map(tuple, p.order_2d.tolist())) == sorted(map(tuple, pts.tolist()))
    np.testing.assert_array_equal(p.order, p.order_2d[:, 0] * 32 + p.order_2d[:, 1])
    lin = poisson_disc((40, 32), acceleration=3, calibration=(8, 8), seed=0)
    assert np.all(np.diff(lin.order) > 0)


def test_undersample_3d_raw_with_poisson_pattern() -> None:
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((2, 16, 24, 8)) + 1j * rng.standard_normal((2, 16, 24, 8))).astype(np.complex64)
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.1, 0.2, 0.2),
        matrix=(16, 24, 8),
        te_s=0.004,
        tr_s=0.01,
        flip_angle_rad=0.2,
        scan_time_s=16 * 24 * 0.01,
        scan_time_full_s=16 * 24 * 0.01,
    )
    raw = RawData(kspace=k, header=header)
    p = poisson_disc((16, 24), acceleration=3, calibration=(4, 4), seed=0)
    out = undersample(raw, p)
    assert np.all(out.kspace[:, ~p.mask[:, :, 0], :] == 0)
    assert out.header.scan_time_s == pytest.approx(raw.header.scan_time_s / p.acceleration)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"acceleration": 0.8}, "acceleration must be a number >= 1"),
        ({"acceleration": float("inf")}, "acceleration must be a number >= 1"),
        ({"acceleration": 4, "calibration": (80, 8)}, "does not fit"),
        ({"acceleration": 40, "calibration": (24, 24)}, "fewer than the 576 calibration points"),
        ({"acceleration": 1.1, "corner_cut": True}, "below what the corner-cut"),
        ({"acceleration": 4, "power": -1.0}, "power"),
    ],
)
def test_bad_requests_give_one_line_errors(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        poisson_disc((64, 64), **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("accel", [1.5, 2.0, 4.0, 8.0, 12.0])
def test_bisection_alone_reaches_two_percent(accel: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The radius-scale bisection itself lands within 2 % (the exact-count step only trims the last points)."""
    import hifield.sampling.poisson as module

    seen: list[tuple[int, int]] = []
    original = module._adjust_count

    def spy(mask: np.ndarray, n_target: int, **kwargs: object) -> np.ndarray:
        seen.append((int(mask.sum()), n_target))
        return original(mask, n_target, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_adjust_count", spy)
    module.poisson_disc((96, 96), acceleration=accel, calibration=(16, 16), seed=7)
    count, target = seen[-1]
    assert abs(count - target) / target < 0.02
