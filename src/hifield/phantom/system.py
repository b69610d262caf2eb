"""Test-object phantoms: the ISMRM/NIST system phantom's T1/T2 sphere arrays and a water-fat fraction phantom.

Both are built from spheres/cylinders with exact partial-volume fractions (supersampled), so fitted T1/T2 or fat
fractions can be checked against the published values (physics-safety.md §4.4).

NIST geometry (simplified): the 14 spheres of one array plate, 20 mm in diameter, 10 on a circle of radius 55 mm
and 4 on a circle of radius 20 mm, in the plate's plane (axial); the fill around them is left empty (PD 0) so that
each sphere's signal is its own. Sphere ``i`` has the tissue ``nist_<array>_<i>``, defined only at the fields
where the phantom was calibrated (NiCl2: 1.5 and 3 T; MnCl2: 3 T).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.phantom.phantom import Phantom, check_memory
from hifield.phantom.tissues import check_field, tissue_properties

NIST_SPHERE_RADIUS_M: float = 0.010
"""Radius of each NIST sphere in the model [m]."""

WATER_FAT_FRACTIONS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
"""Default fat fractions of the water-fat phantom's vials."""
WATER_FAT_VIAL_RADIUS_M: float = 0.015
"""Radius of each water-fat vial [m]."""


def _vial_centres_m(n: int) -> list[NDArray[np.float64]]:
    """Centres (z, y, x) [m] of ``n`` vials on a ring of radius 6 cm (one vial: at the centre)."""
    ring = 0.0 if n == 1 else 0.06
    out = []
    for i in range(n):
        a = 2 * math.pi * i / n - math.pi / 2
        out.append(np.array([0.0, ring * math.sin(a), ring * math.cos(a)]))
    return out


def nist_sphere_centres_m() -> NDArray[np.float64]:
    """Centres of the 14 spheres (z, y, x) [m]: spheres 1-10 on the outer ring, 11-14 on the inner ring."""
    centres = []
    for i in range(10):
        a = 2 * math.pi * i / 10 - math.pi / 2
        centres.append((0.0, 0.055 * math.sin(a), 0.055 * math.cos(a)))
    for i in range(4):
        a = 2 * math.pi * i / 4 - math.pi / 4
        centres.append((0.0, 0.020 * math.sin(a), 0.020 * math.cos(a)))
    return np.asarray(centres, dtype=np.float64)


def _grid(matrix: int, fov_m: float, n_slices: int, thickness_m: float) -> NDArray[np.float64]:
    if int(matrix) != matrix or matrix < 8 or int(n_slices) != n_slices or n_slices < 1:
        raise ConfigError(f"matrix {matrix} must be >= 8 and slices {n_slices} >= 1 (integers)")
    if not 0.05 <= fov_m <= 0.6:
        raise ConfigError(f"field of view {fov_m} m is outside 0.05-0.6 m")
    d = fov_m / matrix
    dz = thickness_m if n_slices == 1 else d
    return centred_affine((int(n_slices), int(matrix), int(matrix)), (dz, d, d))


def _supersampled_fraction(
    affine: NDArray[np.float64],
    shape: tuple[int, int, int],
    inside: list[tuple[NDArray[np.float64], float, bool]],
    oversampling: int,
) -> NDArray[np.float32]:
    """Fraction of each voxel inside each shape (centre, radius, is_cylinder_along_z), shape (n_shape, z, y, x)."""
    nz, ny, nx = shape
    sub = (np.arange(oversampling) + 0.5) / oversampling - 0.5
    sub_z = sub if nz > 1 else np.zeros(1)
    out = np.zeros((len(inside), nz, ny, nx), dtype=np.float64)
    fy = (np.arange(ny)[:, None] + sub[None, :]).ravel()
    fx = (np.arange(nx)[:, None] + sub[None, :]).ravel()
    for k in range(nz):
        for oz in sub_z:
            z = affine[0, 0] * (k + oz) + affine[0, 3]
            y = (affine[1, 1] * fy + affine[1, 3])[:, None]
            x = (affine[2, 2] * fx + affine[2, 3])[None, :]
            for s, (c, r, cylinder) in enumerate(inside):
                d2 = (y - c[1]) ** 2 + (x - c[2]) ** 2 + (0.0 if cylinder else (z - c[0]) ** 2)
                hit = (d2 <= r * r).reshape(ny, oversampling, nx, oversampling).sum(axis=(1, 3))
                out[s, k] += hit
    return (out / (len(sub_z) * oversampling**2)).astype(np.float32)


def nist_phantom(
    *,
    b0_t: float = 3.0,
    array: str = "t1",
    matrix: int = 256,
    fov_m: float = 0.16,
    n_slices: int = 1,
    slice_thickness_m: float = 0.005,
    oversampling: int = 4,
) -> Phantom:
    """One sphere array of the ISMRM/NIST system phantom (Stupic et al., MRM 2021;86:1194).

    Parameters
    ----------
    b0_t
        Main field [T]: 1.5 or 3 for the T1 (NiCl2) array, 3 for the T2 (MnCl2) array.
    array
        ``"t1"`` (NiCl2) or ``"t2"`` (MnCl2).
    matrix, fov_m, n_slices, slice_thickness_m
        Grid: square in-plane matrix over ``fov_m`` [m]; one slice of ``slice_thickness_m`` through the sphere
        centres, or an isotropic 3D grid for ``n_slices > 1``.
    oversampling
        Sub-samples per voxel edge for the partial-volume fractions.

    Raises
    ------
    ConfigError
        Unknown array, or a field at which that array has no calibration (values are never extrapolated).

    Examples
    --------
    >>> p = nist_phantom(matrix=64)
    >>> p.n_tissues, round(p.tissues[0].t1_s, 3)
    (14, 1.989)
    """
    b0 = check_field(b0_t)
    key = {"t1": "nicl2", "t2": "mncl2", "nicl2": "nicl2", "mncl2": "mncl2"}.get(array.lower())
    if key is None:
        raise ConfigError(f"unknown NIST array {array!r}; choose 't1' (NiCl2) or 't2' (MnCl2)")
    tissues = tuple(tissue_properties(f"nist_{key}_{i + 1:02d}", b0) for i in range(14))
    affine = _grid(matrix, fov_m, n_slices, slice_thickness_m)
    shape = (int(n_slices), int(matrix), int(matrix))
    check_memory(4.0 * 14 * float(np.prod(shape)) * 3, what="NIST phantom")
    spheres = [(c, NIST_SPHERE_RADIUS_M, False) for c in nist_sphere_centres_m()]
    fractions = _supersampled_fraction(affine, shape, spheres, oversampling)
    return Phantom(
        fractions=fractions,
        tissues=tissues,
        off_resonance_hz=np.zeros(shape, dtype=np.float32),
        affine=affine,
        b0_t=b0,
        name=f"ISMRM/NIST system phantom, {array.upper()} array ({key})",
    )


def water_fat_phantom(
    *,
    b0_t: float = 3.0,
    fat_fractions: tuple[float, ...] = WATER_FAT_FRACTIONS,
    matrix: int = 256,
    fov_m: float = 0.24,
    n_slices: int = 1,
    slice_thickness_m: float = 0.005,
    fat_peaks: str = "six",
    oversampling: int = 4,
) -> Phantom:
    """Vials of known fat fraction (cylinders along z, 30 mm diameter) on a ring, in an empty container.

    Each vial mixes ``water`` and ``fat`` (partial-volume fractions ``1 - ff`` and ``ff``), the standard test
    object for Dixon water-fat separation and chemical-shift displacement.

    Parameters
    ----------
    b0_t
        Main field [T].
    fat_fractions
        Fat fraction of each vial, in [0, 1].
    matrix, fov_m, n_slices, slice_thickness_m
        Grid (see :func:`nist_phantom`).
    fat_peaks
        ``"six"`` or ``"single"`` fat spectrum.
    oversampling
        Sub-samples per voxel edge.

    Examples
    --------
    >>> p = water_fat_phantom(matrix=64, fat_fractions=(0.0, 0.5))
    >>> p.tissue_names
    ('water', 'fat')
    """
    b0 = check_field(b0_t)
    ff = tuple(float(f) for f in fat_fractions)
    if not ff or any(not 0.0 <= f <= 1.0 for f in ff):
        raise ConfigError(f"fat fractions must be a non-empty list of values in [0, 1]; got {fat_fractions}")
    affine = _grid(matrix, fov_m, n_slices, slice_thickness_m)
    shape = (int(n_slices), int(matrix), int(matrix))
    check_memory(4.0 * (len(ff) + 3) * float(np.prod(shape)), what="water-fat phantom")
    n = len(ff)
    vials = [(c, WATER_FAT_VIAL_RADIUS_M, True) for c in _vial_centres_m(n)]
    inside = _supersampled_fraction(affine, shape, vials, oversampling)
    water = np.tensordot(1.0 - np.asarray(ff), inside, axes=(0, 0))
    fat = np.tensordot(np.asarray(ff), inside, axes=(0, 0))
    tissues = (tissue_properties("water", b0), tissue_properties("fat", b0, fat_peaks=fat_peaks))
    return Phantom(
        fractions=np.stack([water, fat]).astype(np.float32),
        tissues=tissues,
        off_resonance_hz=np.zeros(shape, dtype=np.float32),
        affine=affine,
        b0_t=b0,
        name=f"water-fat phantom ({n} vials)",
    )


def _disc_or_ball_ft(
    k_zyx: NDArray[np.float64], centre_zyx: NDArray[np.float64], radius_m: float, ndim: int
) -> NDArray[np.complex128]:
    """Fourier transform ``∫ 1_shape(r) exp(-i 2π k·r) dr`` of a disc (2D, in y-x) or a ball (3D)."""
    import scipy.special

    if ndim == 2:
        kk = np.hypot(k_zyx[..., 1], k_zyx[..., 2]) * radius_m
        small = kk < 1e-9
        safe = np.where(small, 1.0, kk)
        shape = np.where(small, math.pi, scipy.special.j1(2 * math.pi * safe) / safe) * radius_m**2
        arg = k_zyx[..., 1] * centre_zyx[1] + k_zyx[..., 2] * centre_zyx[2]
    else:
        kk = np.linalg.norm(k_zyx, axis=-1) * radius_m
        small = kk < 1e-6
        safe = np.where(small, 1.0, kk)
        x = 2 * math.pi * safe
        ball = (np.sin(x) - x * np.cos(x)) / (2 * math.pi**2 * safe**3)
        shape = np.where(small, 4.0 * math.pi / 3.0, ball) * radius_m**3
        arg = k_zyx @ centre_zyx
    return np.asarray(shape * np.exp(-2j * math.pi * arg), dtype=np.complex128)


def nist_kspace(
    kz_ky_kx_per_m: NDArray[np.float64],
    *,
    array: str = "t1",
    values: Mapping[str, complex] | None = None,
    ndim: int = 2,
) -> NDArray[np.complex128]:
    """Analytic k-space ``∫ m(r) exp(-i 2π k·r) dr`` of the NIST sphere array (discs in 2D, balls in 3D).

    Parameters
    ----------
    kz_ky_kx_per_m
        Spatial frequencies ``(..., 3)`` [1/m] in (kz, ky, kx) order; kz is ignored in 2D.
    array
        ``"t1"`` or ``"t2"``.
    values
        Signal per sphere tissue name (``"nist_nicl2_01"`` ...); default 1 for every sphere (PD).
    ndim
        2 (a slice through the sphere centres, as :func:`nist_phantom` with one slice) or 3.
    """
    key = {"t1": "nicl2", "t2": "mncl2"}.get(array.lower())
    if key is None:
        raise ConfigError(f"unknown NIST array {array!r}; choose 't1' or 't2'")
    if ndim not in (2, 3):
        raise ConfigError(f"ndim must be 2 or 3; got {ndim}")
    k = np.asarray(kz_ky_kx_per_m, dtype=np.float64)
    if k.shape[-1] != 3:
        raise ConfigError(f"k-space positions must have a last axis of 3 (kz, ky, kx); got shape {k.shape}")
    out = np.zeros(k.shape[:-1], dtype=np.complex128)
    for i, c in enumerate(nist_sphere_centres_m()):
        name = f"nist_{key}_{i + 1:02d}"
        v = 1.0 if values is None else complex(values.get(name, 0.0))
        if v != 0:
            out += v * _disc_or_ball_ft(k, c, NIST_SPHERE_RADIUS_M, ndim)
    return out


def water_fat_kspace(
    kz_ky_kx_per_m: NDArray[np.float64],
    *,
    fat_fractions: tuple[float, ...] = WATER_FAT_FRACTIONS,
    water: complex = 1.0,
    fat: complex = 1.0,
) -> NDArray[np.complex128]:
    """Analytic 2D k-space of the water-fat phantom's cross-section (its vials are infinite along z).

    Vial ``i`` contributes ``((1 - ff_i) water + ff_i fat)`` times the transform of its disc, so ``water`` and
    ``fat`` may carry the relaxation and chemical-shift phase of an echo time (``fat`` complex).
    """
    k = np.asarray(kz_ky_kx_per_m, dtype=np.float64)
    if k.shape[-1] != 3:
        raise ConfigError(f"k-space positions must have a last axis of 3 (kz, ky, kx); got shape {k.shape}")
    out = np.zeros(k.shape[:-1], dtype=np.complex128)
    for c, ff in zip(_vial_centres_m(len(fat_fractions)), fat_fractions, strict=True):
        out += ((1.0 - ff) * water + ff * fat) * _disc_or_ball_ft(k, c, WATER_FAT_VIAL_RADIUS_M, 2)
    return out
