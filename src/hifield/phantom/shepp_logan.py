"""MR Shepp-Logan phantom (2D ellipses / 3D ellipsoids with tissue assignments) and its analytic k-space.

Geometry: the modified Shepp-Logan ellipses (Toft 1996; 3D ellipsoids after Kak & Slaney / Yu, Ye & Wang), in
normalised units scaled by :data:`SCALE_M` (so the head is about 22 x 17 cm), with two changes so that every
ellipse lies entirely inside its parent (required for the exact piecewise-constant k-space below):
an outer fat shell (0.72 x 0.95, "scalp") is added around the skull ring, the upper white-matter ellipse is
shortened (b = 0.20 centred at 0.35) so that it no longer overlaps the small ellipse at y = 0.1, and the larger
ventricle is made slightly smaller and moved out (centre -0.25, axes 0.14 x 0.38) so it overlaps nothing.

Tissues: scalp fat, skull (bone), brain (GM), two ventricles (CSF), a white-matter region, and small inclusions
(blood, blood, muscle, cartilage, fat) in place of the original "tumours".

The object is piecewise constant: each ellipse ``e`` replaces its parent's tissue inside it, so any per-tissue
quantity ``v`` is ``sum_e (v[tissue_e] - v[tissue_parent(e)]) * 1_e(r)``. Its continuous Fourier transform
``∫ m(r) exp(-i 2π k·r) dr`` is therefore a sum of ellipse transforms (:func:`shepp_logan_kspace`), which lets
reconstructions be tested without the inverse crime.

Orientation: normalised +y points anterior (top of the classic picture), +x to the patient's left (image right in
radiological display): LPS ``y = -SCALE_M * y_n``, ``x = SCALE_M * x_n``, ``z = SCALE_M * z_n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.phantom.phantom import Phantom, check_memory
from hifield.phantom.tissues import check_field, tissue_properties

SCALE_M: float = 0.115
"""Physical size of one normalised Shepp-Logan unit [m]."""


@dataclass(frozen=True)
class _Ellipse:
    tissue: str
    parent: int  # index into the table, -1 = background (empty)
    centre: tuple[float, float, float]  # normalised (x, y, z)
    axes: tuple[float, float, float]  # semi-axes (a_x, b_y, c_z)
    phi_deg: float  # rotation about z, anticlockwise from +x


_TABLE: tuple[_Ellipse, ...] = (
    _Ellipse("fat", -1, (0.0, 0.0, 0.0), (0.72, 0.95, 0.84), 0.0),
    _Ellipse("bone", 0, (0.0, 0.0, 0.0), (0.69, 0.92, 0.81), 0.0),
    _Ellipse("gm", 1, (0.0, -0.0184, 0.0), (0.6624, 0.874, 0.78), 0.0),
    _Ellipse("csf", 2, (0.22, 0.0, 0.0), (0.11, 0.31, 0.22), -18.0),
    _Ellipse("csf", 2, (-0.25, 0.0, 0.0), (0.14, 0.38, 0.28), 18.0),
    _Ellipse("wm", 2, (0.0, 0.35, -0.15), (0.21, 0.20, 0.41), 0.0),
    _Ellipse("blood", 2, (0.0, 0.1, 0.25), (0.046, 0.046, 0.05), 0.0),
    _Ellipse("blood", 2, (0.0, -0.1, 0.25), (0.046, 0.046, 0.05), 0.0),
    _Ellipse("muscle", 2, (-0.08, -0.605, 0.0), (0.046, 0.023, 0.05), 0.0),
    _Ellipse("cartilage", 2, (0.0, -0.605, 0.0), (0.023, 0.023, 0.02), 0.0),
    _Ellipse("fat", 2, (0.06, -0.605, 0.0), (0.023, 0.046, 0.02), 0.0),
)
TISSUES: tuple[str, ...] = ("fat", "bone", "gm", "csf", "wm", "blood", "muscle", "cartilage")
"""Tissues of the phantom, in fraction order."""


def _ellipse_frame(e: _Ellipse, pts_xyz: NDArray[np.float64], ndim: int) -> NDArray[np.float64]:
    """Normalised points (..., 3) (x, y, z) -> squared ellipse radius (<= 1 inside)."""
    c, s = math.cos(math.radians(e.phi_deg)), math.sin(math.radians(e.phi_deg))
    dx = pts_xyz[..., 0] - e.centre[0]
    dy = pts_xyz[..., 1] - e.centre[1]
    u = (c * dx + s * dy) / e.axes[0]
    v = (-s * dx + c * dy) / e.axes[1]
    r2 = u * u + v * v
    if ndim == 3:
        w = (pts_xyz[..., 2] - e.centre[2]) / e.axes[2]
        r2 = r2 + w * w
    return r2


def shepp_logan_phantom(
    *,
    b0_t: float = 3.0,
    matrix: int = 256,
    fov_m: float = 0.24,
    n_slices: int = 1,
    oversampling: int | None = None,
) -> Phantom:
    """The MR Shepp-Logan phantom with tissue assignments, 2D (``n_slices=1``) or 3D.

    Partial-volume fractions come from ``oversampling``-times supersampling per in-plane axis (and through-plane
    in 3D). In 2D the ellipses are the classic 2D ones (no z extent), with a 5 mm slice affine.

    Parameters
    ----------
    b0_t
        Main field [T].
    matrix
        In-plane matrix (square).
    fov_m
        In-plane field of view [m]; the 3D grid is isotropic.
    n_slices
        1 for the 2D phantom, otherwise the number of slices of the 3D phantom.
    oversampling
        Sub-samples per voxel edge used for the partial-volume fractions (default 4 in 2D, 2 in 3D).

    Examples
    --------
    >>> p = shepp_logan_phantom(matrix=64)
    >>> p.shape, p.tissue_names[:3]
    ((1, 64, 64), ('fat', 'bone', 'gm'))
    """
    b0 = check_field(b0_t)
    if oversampling is None:
        oversampling = 4 if n_slices == 1 else 2
    if int(matrix) != matrix or matrix < 4 or int(n_slices) != n_slices or n_slices < 1 or oversampling < 1:
        raise ConfigError(f"matrix {matrix}, slices {n_slices}, oversampling {oversampling} must be positive integers")
    n, nz, os_ = int(matrix), int(n_slices), int(oversampling)
    ndim = 2 if nz == 1 else 3
    check_memory(4.0 * len(TISSUES) * nz * n * n + 8.0 * 4 * n * n * os_**2, what="Shepp-Logan phantom")
    d = fov_m / n
    dz = 0.005 if ndim == 2 else d
    affine = centred_affine((nz, n, n), (dz, d, d))
    sub = (np.arange(os_) + 0.5) / os_ - 0.5
    fractions = np.zeros((len(TISSUES), nz, n, n), dtype=np.float32)
    col = {t: i for i, t in enumerate(TISSUES)}
    iy, ix = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    sub_z = sub if ndim == 3 else np.zeros(1)
    for k in range(nz):
        acc = np.zeros((len(TISSUES), n, n))
        for oz in sub_z:
            for oy in sub:
                for ox in sub:
                    z = affine[0, 0] * (k + oz) + affine[0, 3]
                    y = affine[1, 1] * (iy + oy) + affine[1, 3]
                    x = affine[2, 2] * (ix + ox) + affine[2, 3]
                    pts = np.stack([x / SCALE_M, -y / SCALE_M, np.full_like(x, z / SCALE_M)], axis=-1)
                    label = np.full((n, n), -1, dtype=np.int64)
                    for i, e in enumerate(_TABLE):  # children come after their parents: last inside wins
                        label[_ellipse_frame(e, pts, ndim) <= 1.0] = i
                    for i, e in enumerate(_TABLE):
                        acc[col[e.tissue]] += label == i
        fractions[:, k] = acc / (len(sub_z) * os_ * os_)
    tissues = tuple(tissue_properties(t, b0) for t in TISSUES)
    return Phantom(
        fractions=fractions,
        tissues=tissues,
        off_resonance_hz=np.zeros((nz, n, n), dtype=np.float32),
        affine=affine,
        b0_t=b0,
        name=f"Shepp-Logan MR ({ndim}D)",
    )


def shepp_logan_kspace(
    kz_ky_kx_per_m: NDArray[np.float64],
    *,
    values: Mapping[str, complex] | None = None,
    b0_t: float = 3.0,
    ndim: int = 2,
) -> NDArray[np.complex128]:
    """Analytic k-space of the MR Shepp-Logan phantom: ``F(k) = ∫ m(r) exp(-i 2π k·r) dr``.

    Parameters
    ----------
    kz_ky_kx_per_m
        Spatial frequencies, shape ``(..., 3)`` in (kz, ky, kx) order [1/m]. In 2D, kz is ignored.
    values
        Signal of each tissue (``{"gm": 0.8, ...}``, missing tissues count 0); default the proton density at
        ``b0_t``.
    b0_t
        Main field for the default proton densities [T].
    ndim
        2 (ellipses: result in signal x m²) or 3 (ellipsoids: signal x m³).

    Returns
    -------
    NDArray[np.complex128]
        Shape ``(...)``. A Cartesian grid ``k = n / FOV`` then ``ifft`` over it (scaled by 1/voxel area)
        reproduces the voxel-centre samples of the object up to Gibbs ringing.

    Examples
    --------
    >>> k0 = shepp_logan_kspace(np.zeros((1, 3)))  # integral of PD over the plane
    >>> bool(k0.real[0] > 0.02)
    True
    """
    import scipy.special

    if ndim not in (2, 3):
        raise ConfigError(f"ndim must be 2 or 3; got {ndim}")
    k = np.asarray(kz_ky_kx_per_m, dtype=np.float64)
    if k.shape[-1] != 3:
        raise ConfigError(f"k-space positions must have a last axis of 3 (kz, ky, kx); got shape {k.shape}")
    if values is None:
        vals: dict[str, complex] = {t: tissue_properties(t, b0_t).pd for t in TISSUES}
    else:
        unknown = set(values) - set(TISSUES)
        if unknown:
            raise ConfigError(f"unknown Shepp-Logan tissue(s) {sorted(unknown)}; choose from {', '.join(TISSUES)}")
        vals = dict(values)
    # normalised frequencies: x_n = x / S, y_n = -y / S, z_n = z / S  =>  k_n = (kx S, -ky S, kz S)
    kxn = k[..., 2] * SCALE_M
    kyn = -k[..., 1] * SCALE_M
    kzn = k[..., 0] * SCALE_M
    out = np.zeros(k.shape[:-1], dtype=np.complex128)
    for e in _TABLE:
        parent_value = vals.get(_TABLE[e.parent].tissue, 0.0) if e.parent >= 0 else 0.0
        amp = complex(vals.get(e.tissue, 0.0)) - complex(parent_value)
        if amp == 0:
            continue
        c, s = math.cos(math.radians(e.phi_deg)), math.sin(math.radians(e.phi_deg))
        ku = (c * kxn + s * kyn) * e.axes[0]
        kv = (-s * kxn + c * kyn) * e.axes[1]
        phase_arg = kxn * e.centre[0] + kyn * e.centre[1]
        if ndim == 2:
            kap = np.sqrt(ku * ku + kv * kv)
            small = kap < 1e-9
            safe = np.where(small, 1.0, kap)
            shape_ft = np.where(small, math.pi, scipy.special.j1(2 * math.pi * safe) / safe) * e.axes[0] * e.axes[1]
            jac = SCALE_M**2
        else:
            kw = kzn * e.axes[2]
            phase_arg = phase_arg + kzn * e.centre[2]
            kap = np.sqrt(ku * ku + kv * kv + kw * kw)
            small = kap < 1e-6
            x = 2 * math.pi * np.where(small, 1.0, kap)
            ball = (np.sin(x) - x * np.cos(x)) / (2 * math.pi**2 * np.where(small, 1.0, kap) ** 3)
            shape_ft = np.where(small, 4.0 * math.pi / 3.0, ball) * e.axes[0] * e.axes[1] * e.axes[2]
            jac = SCALE_M**3
        out += amp * jac * shape_ft * np.exp(-2j * math.pi * phase_arg)
    return out
