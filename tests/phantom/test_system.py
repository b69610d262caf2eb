"""Tests of the NIST system phantom, the water-fat phantom and the phantom factory."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.phantom import PHANTOM_KINDS, make_phantom, nist_phantom, water_fat_phantom
from hifield.phantom.system import NIST_SPHERE_RADIUS_M, nist_sphere_centres_m

# Stupic et al. 2021 via physics-safety.md §4.4 (ms)
NICL2_T1_3T = (1989, 1454, 984.1, 706.0, 496.7, 351.5, 247.13, 175.3, 125.9, 89.0, 62.7, 44.53, 30.84, 21.719)
NICL2_T2_15T = (1669, 1244, 859.3, 628.5, 446.3, 321.2, 227.7, 161.9, 117.1, 81.9, 57.7, 41.0, 28.7, 20.2)
MNCL2_T2_3T = (581.3, 403.5, 278.1, 190.94, 133.27, 96.89, 64.07, 46.42, 31.97, 22.56, 15.81, 11.24, 7.91, 5.59)


def test_nist_values_are_the_published_ones() -> None:
    p3 = nist_phantom(b0_t=3.0, matrix=64)
    np.testing.assert_allclose([t.t1_s * 1e3 for t in p3.tissues], NICL2_T1_3T)
    p15 = nist_phantom(b0_t=1.5, matrix=64)
    np.testing.assert_allclose([t.t2_s * 1e3 for t in p15.tissues], NICL2_T2_15T)
    t2 = nist_phantom(b0_t=3.0, array="t2", matrix=64)
    np.testing.assert_allclose([t.t2_s * 1e3 for t in t2.tissues], MNCL2_T2_3T)
    assert not p3.interpolated
    with pytest.raises(ConfigError, match="calibrated only"):
        nist_phantom(b0_t=7.0)
    with pytest.raises(ConfigError, match="calibrated only"):
        p3.at_field(5.0)
    with pytest.raises(ConfigError, match="calibrated only"):
        nist_phantom(b0_t=1.5, array="t2")


def test_nist_geometry_partial_volume_areas() -> None:
    p = nist_phantom(matrix=128, fov_m=0.16)
    area = p.fractions.sum(axis=(1, 2, 3)) * p.voxel_size_m[1] * p.voxel_size_m[2]
    np.testing.assert_allclose(area, np.pi * NIST_SPHERE_RADIUS_M**2, rtol=0.01)
    # each sphere sits where its centre says: centroid of its fraction map
    pos = p.positions_m()[0]
    for i, c in enumerate(nist_sphere_centres_m()):
        w = p.fractions[i, 0]
        centroid = (pos * w[..., None]).sum(axis=(0, 1)) / w.sum()
        np.testing.assert_allclose(centroid[1:], c[1:], atol=2e-4)
    # 3D spheres: volume 4/3 pi r^3
    v = nist_phantom(matrix=48, fov_m=0.16, n_slices=10, oversampling=3)
    vol = v.fractions.sum(axis=(1, 2, 3)) * np.prod(v.voxel_size_m)
    # the 10-slice slab (33 mm) covers each 20 mm sphere completely
    np.testing.assert_allclose(vol, 4 / 3 * np.pi * NIST_SPHERE_RADIUS_M**3, rtol=0.03)


def test_water_fat_phantom_fractions() -> None:
    ff = (0.0, 0.25, 0.5, 1.0)
    p = water_fat_phantom(fat_fractions=ff, matrix=96)
    w, f = p.fractions
    total = w + f
    assert total.max() == pytest.approx(1.0)
    full = total > 0.999
    measured = f[full].reshape(-1)
    # every fully-filled voxel carries one of the requested fat fractions
    assert np.all(np.min(np.abs(measured[:, None] - np.array(ff)[None, :]), axis=1) < 1e-6)
    assert len(p.tissues[1].chemical_shift_ppm) == 6
    single = water_fat_phantom(fat_fractions=ff, matrix=32, fat_peaks="single")
    assert single.tissues[1].chemical_shift_ppm == (-3.4,)
    assert single.at_field(7.0).tissues[1].chemical_shift_ppm == (-3.4,)
    with pytest.raises(ConfigError):
        water_fat_phantom(fat_fractions=(1.5,))


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_factory_builds_every_kind(kind: str) -> None:
    p = make_phantom(kind, b0_t=3.0, matrix=32)
    assert p.shape == (1, 32, 32) and p.pd.max() > 0


def test_factory_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="unknown phantom"):
        make_phantom("pumpkin")


def _grid_ifft(ksp: np.ndarray, n: int, fov: float) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ksp))) * (n / fov) ** 2


def _kgrid(n: int, fov: float) -> np.ndarray:
    k = (np.arange(n) - n // 2) / fov
    ky, kx = np.meshgrid(k, k, indexing="ij")
    return np.stack([np.zeros_like(ky), ky, kx], axis=-1)


def test_nist_analytic_kspace_reconstructs_the_phantom() -> None:
    from hifield.phantom import nist_kspace

    n, fov = 128, 0.16
    p = nist_phantom(matrix=n, fov_m=fov, oversampling=4)
    values = {t.name: t.t2_s for t in p.tissues}  # any per-sphere signal: here T2 [s]
    img = _grid_ifft(nist_kspace(_kgrid(n, fov), values=values), n, fov).real
    truth = np.tensordot([t.t2_s for t in p.tissues], p.fractions[:, 0], axes=(0, 0))
    assert np.linalg.norm(img - truth) / np.linalg.norm(truth) < 0.15
    # DC = sum of areas x values; 3D DC = volumes
    k0 = np.zeros((1, 3))
    area = np.pi * NIST_SPHERE_RADIUS_M**2
    assert nist_kspace(k0)[0].real == pytest.approx(14 * area)
    assert nist_kspace(k0, ndim=3)[0].real == pytest.approx(14 * 4 / 3 * np.pi * NIST_SPHERE_RADIUS_M**3)


def test_water_fat_analytic_kspace_opposed_phase() -> None:
    from hifield.phantom import water_fat_kspace

    n, fov = 128, 0.24
    ff = (0.0, 0.5, 1.0)
    p = water_fat_phantom(matrix=n, fov_m=fov, fat_fractions=ff, oversampling=4)
    # opposed phase: fat = -1 relative to water (single-peak model at TE = 1.15 ms at 3 T)
    img = _grid_ifft(water_fat_kspace(_kgrid(n, fov), fat_fractions=ff, water=1.0, fat=-1.0), n, fov).real
    truth = p.fractions[0, 0] - p.fractions[1, 0]
    assert np.linalg.norm(img - truth) / np.linalg.norm(np.abs(p.fractions[:, 0]).sum(axis=0)) < 0.15
    # the 50 % vial vanishes at opposed phase, the pure-fat vial is negative
    pos = p.positions_m()[0]
    from hifield.phantom.system import _vial_centres_m

    for c, expected in zip(_vial_centres_m(3), (1.0, 0.0, -1.0), strict=True):
        near = np.hypot(pos[..., 1] - c[1], pos[..., 2] - c[2]) < 0.008
        assert img[near].mean() == pytest.approx(expected, abs=0.05)
