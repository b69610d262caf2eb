"""Tests of the field maps: susceptibility -> B0 (sphere, cylinder), B1+ vs field, RF shimming, g-factor, SNR."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.hardware.coils import CoilArray
from hifield.hardware.fields import (
    b1_plus_map,
    coefficient_of_variation,
    combine,
    field_from_susceptibility,
    g_factor_map,
    off_resonance_hz,
    quadrature_weights,
    rf_shim,
    snr_field_factor,
    tissue_wavenumber,
    transmit_array_maps,
)


def test_sphere_field_matches_analytic() -> None:
    n, d, a, dchi = 64, 1e-3, 10e-3, 1.0
    c = np.arange(n) - n / 2 + 0.5
    z, y, x = np.meshgrid(c * d, c * d, c * d, indexing="ij")
    r = np.sqrt(z**2 + y**2 + x**2)
    # supersampled sphere (partial volume) to reduce staircase error
    sub = np.zeros((n, n, n))
    for oz in (-0.25, 0.25):
        for oy in (-0.25, 0.25):
            for ox in (-0.25, 0.25):
                sub += np.sqrt((z + oz * d) ** 2 + (y + oy * d) ** 2 + (x + ox * d) ** 2) <= a
    chi = dchi * sub / 8
    field = field_from_susceptibility(chi, (d, d, d), padding=2)
    inside = r < 0.6 * a
    assert np.abs(field[inside]).max() < 0.02 * dchi
    outside = (r > 1.4 * a) & (r < 2.5 * a)
    cos2 = (z / np.maximum(r, 1e-12)) ** 2
    expected = dchi / 3 * (a / r) ** 3 * (3 * cos2 - 1)
    err = np.abs(field[outside] - expected[outside])
    assert err.max() < 0.03 * dchi / 3
    # polar vs equatorial: +2/3 vs -1/3 of dchi (a/r)^3
    assert field[n // 2 + 15, n // 2, n // 2] > 0 > field[n // 2, n // 2, n // 2 + 15]


@pytest.mark.parametrize("axis", ["z", "y"])
def test_infinite_cylinder_field_matches_analytic(axis: str) -> None:
    # periodic along its axis = infinite; zero padding only across it
    n, d, a, dchi = 96, 1e-3, 8e-3, 1.0
    c = (np.arange(n) - n / 2 + 0.5) * d
    if axis == "z":  # parallel to B0: theta = 0 -> inside dchi/3, outside 0
        nz = 4
        zz, yy, xx = np.meshgrid(np.arange(nz) * d, c, c, indexing="ij")
        rho2 = yy**2 + xx**2
        chi = dchi * (rho2 <= a * a)
        # pad only in-plane: tile along z is already periodic
        big = np.zeros((nz, 2 * n, 2 * n))
        big[:, :n, :n] = chi
        f = field_from_susceptibility(big, (d, d, d), padding=1)[:, :n, :n]
        inside = rho2 < (0.7 * a) ** 2
        np.testing.assert_allclose(f[inside], dchi / 3, atol=0.02)
        outside = (rho2 > (1.5 * a) ** 2) & (rho2 < (3 * a) ** 2)
        assert np.abs(f[outside]).max() < 0.02
    else:  # along y, perpendicular to B0 (theta = 90°): inside -dchi/6; outside dchi/2 (a/rho)^2 cos(2 phi)
        ny = 4
        zz, yy, xx = np.meshgrid(c, np.arange(ny) * d, c, indexing="ij")
        rho2 = zz**2 + xx**2
        chi = dchi * (rho2 <= a * a)
        big = np.zeros((2 * n, ny, 2 * n))
        big[:n, :, :n] = chi
        f = field_from_susceptibility(big, (d, d, d), padding=1)[:n, :, :n]
        inside = rho2 < (0.7 * a) ** 2
        # the k = 0 convention shifts the whole map by the mean (cylinder area fraction x dchi/6)
        offset = dchi / 6 * np.pi * a * a / ((2 * n * d) ** 2)
        np.testing.assert_allclose(f[inside], -dchi / 6 + offset, atol=0.02)
        outside = (rho2 > (1.5 * a) ** 2) & (rho2 < (3 * a) ** 2)
        cos2phi = (zz**2 - xx**2) / np.maximum(rho2, 1e-12)  # phi from the B0 (z) direction
        expected = dchi / 2 * (a * a / np.maximum(rho2, 1e-12)) * cos2phi + offset
        assert np.abs(f[outside] - expected[outside]).max() < 0.02


def test_off_resonance_scales_with_field() -> None:
    assert off_resonance_hz(np.array([1.0]), 3.0)[0] == pytest.approx(127.73, abs=0.01)
    assert off_resonance_hz(np.array([1.0]), 7.0)[0] == pytest.approx(298.04, abs=0.01)


def test_b1_central_brightening_grows_with_field() -> None:
    aff = centred_affine((1, 64, 64), (0.005, 0.003, 0.003))
    cov = []
    centre_to_edge = []
    yy, xx = np.meshgrid(np.arange(64) - 32, np.arange(64) - 32, indexing="ij")
    head = (yy * 0.003) ** 2 + (xx * 0.003) ** 2 < 0.085**2
    for b0 in (1.5, 3.0, 5.0, 7.0):
        m = np.abs(b1_plus_map(aff, (1, 64, 64), b0_t=b0))[0]
        cov.append(m[head].std() / m[head].mean())
        centre_to_edge.append(m[32, 32] / m[32, 60])
    assert all(np.diff(cov) > 0) and all(np.diff(centre_to_edge) > 0)
    assert centre_to_edge[1] > 1.2  # central brightening at 3 T
    assert cov[0] < 0.05


def test_tissue_wavelength_matches_notes() -> None:
    # physics-safety.md §3.3: ≈ 32 / 20 / 15 cm at 3 / 5 / 7 T (c / (f sqrt(eps_r)), lossless)
    for b0, lam_cm in ((3.0, 32), (5.0, 20), (7.0, 15)):
        k = tissue_wavenumber(b0)
        assert 2 * np.pi / k.real * 100 == pytest.approx(lam_cm, rel=0.35)
        assert k.imag < 0  # loss


def _brain_mask(b0: float, matrix: int = 48) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    from scipy import ndimage

    from hifield.phantom import brain_phantom

    p = brain_phantom(b0_t=b0, matrix=matrix, off_resonance=False)
    # the brain: parenchyma (GM + WM) with the ventricles filled in, without the CSF around the brain
    mask = ndimage.binary_fill_holes(((p.fractions[0] + p.fractions[1]) > 0.5)[0])[None]
    return p.affine, mask, p.shape


@pytest.mark.parametrize("b0", [5.0, 7.0])
def test_rf_shimming_lowers_b1_cov_by_30_percent_against_quadrature(b0: float) -> None:
    affine, mask, shape = _brain_mask(b0)
    maps = transmit_array_maps(affine, shape, b0_t=b0, n_channels=8)
    assert maps.shape == (8, *shape)
    cp = combine(maps, quadrature_weights(8))
    assert abs(cp[0, shape[1] // 2, shape[2] // 2]) == pytest.approx(1.0, abs=0.1)
    w = rf_shim(maps, mask)
    cov_cp = coefficient_of_variation(cp, mask)
    cov_shim = coefficient_of_variation(combine(maps, w), mask)
    assert cov_cp > 0.1  # the CP mode is visibly inhomogeneous at UHF
    assert cov_shim <= 0.7 * cov_cp
    # same mean flip angle as the CP mode
    assert np.abs(combine(maps, w))[mask].mean() == pytest.approx(np.abs(cp)[mask].mean(), rel=1e-3)


def test_g_factor_analytic_and_properties() -> None:
    # two coils, R = 2, one aliasing pair per column: S = [[1, 1], [1, -1]] / sqrt(2) is orthogonal -> g = 1
    s = np.zeros((2, 1, 2, 1), np.complex64)
    s[:, 0, 0, 0] = [1, 1]
    s[:, 0, 1, 0] = [1, -1]
    np.testing.assert_allclose(g_factor_map(s, acceleration=2)[0, :, 0], 1.0, atol=1e-6)
    # S = [[1, 1], [0, 0.5]]: (S^H S) = [[1, 1], [1, 1.25]], inverse diag = [5, 4] -> g = [sqrt(5), sqrt(5)]
    s[:, 0, 0, 0] = [1, 0]
    s[:, 0, 1, 0] = [1, 0.5]
    g = g_factor_map(s, acceleration=2)[0, :, 0]
    np.testing.assert_allclose(g, [np.sqrt(1 * 5), np.sqrt(1.25 * 4)], rtol=1e-5)
    # noise correlation enters through the covariance
    psi = np.array([[1.0, 0.3], [0.3, 1.0]])
    g_corr = g_factor_map(s, acceleration=2, noise_covariance=psi)[0, :, 0]
    assert np.all(g_corr != g)


def test_g_factor_of_a_head_array_grows_with_acceleration() -> None:
    coils = CoilArray.head_array(16, b0_t=3.0)
    aff = centred_affine((1, 64, 64), (0.005, 0.0035, 0.0035))
    sens = coils.sensitivities(aff, (1, 64, 64))
    yy, xx = np.meshgrid(np.arange(64) - 32, np.arange(64) - 32, indexing="ij")
    mask = ((yy / 26) ** 2 + (xx / 21) ** 2 < 1)[None]
    g1 = g_factor_map(sens, acceleration=1, mask=mask)
    np.testing.assert_allclose(g1[mask], 1.0, atol=1e-5)
    means = [
        float(g_factor_map(sens, acceleration=r, noise_covariance=coils.noise_covariance, mask=mask)[mask].mean())
        for r in (2, 4, 8)
    ]
    assert means[0] >= 1.0 - 1e-6 and means[0] < 1.3
    assert np.all(np.diff(means) > 0)
    with pytest.raises(ConfigError, match="divide"):
        g_factor_map(sens, acceleration=3)


def test_snr_scaling_with_field() -> None:
    assert snr_field_factor(3.0) == 1.0
    assert snr_field_factor(7.0) == pytest.approx((7 / 3) ** 1.65)
    assert snr_field_factor(1.5, exponent=1.0) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        snr_field_factor(-1.0)
