"""Tests of the receive coil arrays: loop field vs analytic, covariance, sensitivities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.hardware.coils import MU0_T_M_PER_A, CoilArray, loop_field


@pytest.mark.parametrize("radius", [0.02, 0.05, 0.1])
def test_loop_on_axis_matches_analytic(radius: float) -> None:
    z = np.linspace(-0.3, 0.3, 61)
    pts = np.stack([z, np.zeros_like(z), np.zeros_like(z)], axis=-1)
    b = loop_field(pts, centre_m=np.zeros(3), normal=np.array([1.0, 0.0, 0.0]), radius_m=radius, current_a=2.0)
    expected = MU0_T_M_PER_A * 2.0 * radius**2 / (2.0 * (radius**2 + z**2) ** 1.5)
    np.testing.assert_allclose(b[:, 0], expected, rtol=1e-10)
    np.testing.assert_allclose(b[:, 1:], 0.0, atol=1e-15)


def test_loop_near_axis_is_continuous_and_far_field_is_dipole() -> None:
    a = 0.05
    n = np.array([0.0, 0.0, 1.0])  # axis along x
    # near the axis (rho = 1e-7 m) the field equals the on-axis value
    b = loop_field(np.array([[1e-7, 0.0, 0.03]]), centre_m=np.zeros(3), normal=n, radius_m=a)
    on_axis = MU0_T_M_PER_A * a**2 / (2 * (a**2 + 0.03**2) ** 1.5)
    assert b[0, 2] == pytest.approx(on_axis, rel=1e-6)
    # far off axis: magnetic dipole m = I pi a^2; in the loop plane B = -mu0 m / (4 pi r^3) along the axis
    r = 2.0
    b = loop_field(np.array([[r, 0.0, 0.0]]), centre_m=np.zeros(3), normal=n, radius_m=a)
    dipole = -MU0_T_M_PER_A * math.pi * a**2 / (4 * math.pi * r**3)
    assert b[0, 2] == pytest.approx(dipole, rel=1e-3)


def test_loop_field_is_divergence_free() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(-0.1, 0.1, (20, 3))
    p[:, 0] += 0.04  # keep away from the wire
    kw = dict(centre_m=np.array([0.0, 0.01, -0.02]), normal=np.array([0.3, 0.5, 0.8]), radius_m=0.05)
    h = 1e-6
    div = np.zeros(len(p))
    for ax in range(3):
        e = np.zeros(3)
        e[ax] = h
        div += (loop_field(p + e, **kw)[:, ax] - loop_field(p - e, **kw)[:, ax]) / (2 * h)
    scale = np.abs(loop_field(p, **kw)).max() / 0.05
    assert np.max(np.abs(div)) < 1e-4 * scale


@pytest.mark.parametrize("n", [1, 8, 16, 32, 64])
@pytest.mark.parametrize("layout", ["helmet", "cylinder"])
def test_noise_covariance_is_hermitian_pd_with_realistic_coupling(n: int, layout: str) -> None:
    coils = CoilArray.head_array(n, b0_t=3.0, layout=layout)
    psi = coils.noise_covariance
    assert psi.shape == (n, n) and psi.dtype == np.complex128
    np.testing.assert_allclose(psi, psi.conj().T, atol=1e-14)
    assert np.linalg.eigvalsh(psi).min() > 0.1
    np.testing.assert_allclose(np.diag(psi).real, 1.0, atol=0.11)
    if n > 1:
        d = np.sqrt(np.diag(psi).real)
        corr = np.abs(psi) / d[:, None] / d[None, :]
        np.fill_diagonal(corr, 0.0)
        nearest = corr.max(axis=1)
        assert np.all(nearest >= 0.05) and np.all(nearest <= 0.2)


def test_sensitivities_shape_dtype_normalisation() -> None:
    coils = CoilArray.head_array(16, b0_t=3.0)
    aff = centred_affine((1, 256, 256), (0.005, 0.24 / 256, 0.24 / 256))
    s = coils.sensitivities(aff, (1, 256, 256))
    assert s.shape == (16, 1, 256, 256) and s.dtype == np.complex64
    rss = np.sqrt((np.abs(s) ** 2).sum(axis=0))
    assert rss[0, 128, 128] == pytest.approx(1.0, rel=1e-5)
    # surface coils: brighter near the periphery of the head than at the centre
    assert rss[0, 128, 30] > 1.5
    assert np.all(np.isfinite(s))


def test_single_loop_sensitivity_matches_biot_savart_transverse_field() -> None:
    coils = CoilArray.head_array(4, b0_t=3.0)
    aff = centred_affine((3, 16, 16), (0.01, 0.01, 0.01))
    s = coils.sensitivities(aff, (3, 16, 16))
    idx = (2, 5, 11)
    pos = (aff @ np.array([*idx, 1.0]))[:3]
    raw = []
    for c in range(4):
        b = loop_field(pos[None], centre_m=coils.centres_m[c], normal=coils.normals[c], radius_m=coils.loop_radius_m)
        raw.append(0.5 * (b[0, 2] + 1j * b[0, 1]) * np.exp(1j * coils.phases_rad[c]))
    ref = []
    for c in range(4):
        b = loop_field(
            np.zeros((1, 3)), centre_m=coils.centres_m[c], normal=coils.normals[c], radius_m=coils.loop_radius_m
        )
        ref.append(0.5 * (b[0, 2] + 1j * b[0, 1]))
    expected = np.array(raw) / np.sqrt(np.sum(np.abs(ref) ** 2))
    np.testing.assert_allclose(s[(slice(None), *idx)], expected, rtol=1e-5)


def test_bad_input_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        CoilArray.head_array(0, b0_t=3.0)
    with pytest.raises(ConfigError):
        CoilArray.head_array(8, b0_t=3.0, layout="birdcage")


def test_sensitivities_refuse_grids_larger_than_memory() -> None:
    coils = CoilArray.head_array(64, b0_t=3.0)
    with pytest.raises(ConfigError, match="GiB"):
        coils.sensitivities(np.eye(4) * 1e-3, (2048, 2048, 2048))


def test_loop_field_matches_numerical_biot_savart_off_axis() -> None:
    # independent check: sum mu0 I / (4 pi) dl x r / |r|^3 over 4000 segments of a tilted loop, in (x, y, z) order
    a, current = 0.04, 1.5
    centre_zyx = np.array([0.01, -0.02, 0.03])
    normal_zyx = np.array([0.6, 0.0, 0.8])  # (z, y, x)
    nrm = normal_zyx[::-1]  # (x, y, z)
    u = np.cross(nrm, [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(nrm, u)  # u, v, n right-handed: the loop runs from u towards v
    t = np.linspace(0, 2 * np.pi, 4001)[:-1] + np.pi / 4000
    dt = 2 * np.pi / 4000
    wire = centre_zyx[::-1] + a * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
    dl = a * dt * (-np.sin(t)[:, None] * u + np.cos(t)[:, None] * v)
    rng = np.random.default_rng(3)
    pts_zyx = centre_zyx + rng.uniform(-0.08, 0.08, (12, 3))
    b_num = []
    for p in pts_zyx:
        r = p[::-1] - wire
        b = MU0_T_M_PER_A * current / (4 * np.pi) * np.sum(np.cross(dl, r) / np.linalg.norm(r, axis=1)[:, None] ** 3, 0)
        b_num.append(b[::-1])  # back to (z, y, x)
    b_closed = loop_field(pts_zyx, centre_m=centre_zyx, normal=normal_zyx, radius_m=a, current_a=current)
    np.testing.assert_allclose(b_closed, np.array(b_num), rtol=1e-4, atol=1e-4 * np.abs(b_closed).max())


def test_sensitivities_of_a_repeated_grid_are_reused_and_independent() -> None:
    coils = CoilArray.head_array(8, b0_t=3.0)
    affine = centred_affine((1, 32, 32), (0.005, 0.008, 0.008))
    first = coils.sensitivities(affine, (1, 32, 32))
    first[:] = 0  # a caller's change must not reach the next caller
    second = coils.sensitivities(affine, (1, 32, 32))
    fresh = CoilArray.head_array(8, b0_t=3.0).sensitivities(affine, (1, 32, 32))
    np.testing.assert_array_equal(second, fresh)
    other = coils.sensitivities(centred_affine((1, 16, 16), (0.005, 0.016, 0.016)), (1, 16, 16))
    assert other.shape == (8, 1, 16, 16)  # another grid is computed, not served from the cache


def test_elliptic_integrals_by_the_agm_equal_scipy_special():
    """K(m), E(m) from the arithmetic-geometric mean against scipy's Cephes implementation, up to m = 1 - 1e-15."""
    from scipy.special import ellipe, ellipk

    from hifield.hardware.coils import elliptic_k_e

    m = np.concatenate([np.linspace(0.0, 0.999, 2001), 1.0 - np.logspace(-15, -3, 60)])
    k, e = elliptic_k_e(m)
    np.testing.assert_allclose(k, ellipk(m), rtol=1e-13)
    np.testing.assert_allclose(e, ellipe(m), rtol=1e-13)
    # Legendre's relation at m = 1/2: 2 E K - K^2 = pi / 2
    kh, eh = elliptic_k_e(np.array([0.5]))
    assert 2 * eh[0] * kh[0] - kh[0] ** 2 == pytest.approx(np.pi / 2, rel=1e-14)
