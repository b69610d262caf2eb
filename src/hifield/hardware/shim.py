"""B0 shimming with spherical harmonics up to 2nd order, fitted by least squares over a mask (the prescan's shim).

A scanner's prescan measures a field map and sets the centre frequency (order 0), the gradient offsets (order 1,
x/y/z) and the five 2nd-order shim coils (z², zx, zy, x² - y², xy) to minimise the field's variance over the
shim volume. The residual is what the images see.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError

B0_SHIM_ORDERS: dict[str, int] = {"none": 0, "linear": 1, "2nd-order": 2}
"""``--b0-shim`` choices and their highest spherical-harmonic order (``none`` still sets the centre frequency)."""


def shim_order(name: str) -> int:
    """Highest spherical-harmonic order of a B0 shim named ``none``, ``linear`` or ``2nd-order``."""
    key = name.strip().lower().replace("_", "-")
    key = {"2nd": "2nd-order", "second-order": "2nd-order", "2": "2nd-order", "1": "linear", "0": "none"}.get(key, key)
    if key not in B0_SHIM_ORDERS:
        raise ConfigError(f"unknown B0 shim {name!r}; choose one of {', '.join(B0_SHIM_ORDERS)}")
    return B0_SHIM_ORDERS[key]


def spherical_harmonic_basis(positions_m: NDArray[np.floating], order: int) -> NDArray[np.float64]:
    """Real solid spherical harmonics (unnormalised) up to ``order`` (0-2) at ``positions_m`` ``(..., 3)`` (z, y, x).

    Returns ``(..., n_terms)`` with 1, 4 or 9 terms: 1; z, y, x; z² - (x² + y²)/2, zx, zy, x² - y², xy.
    """
    if order not in (0, 1, 2):
        raise ConfigError(f"spherical-harmonic shim order must be 0, 1 or 2; got {order}")
    p = np.asarray(positions_m, dtype=np.float64)
    z, y, x = p[..., 0], p[..., 1], p[..., 2]
    terms = [np.ones_like(z)]
    if order >= 1:
        terms += [z, y, x]
    if order >= 2:
        terms += [z * z - 0.5 * (x * x + y * y), z * x, z * y, x * x - y * y, x * y]
    return np.stack(terms, axis=-1)


def fit_shim(
    field: NDArray[np.floating], mask: NDArray[np.bool_], positions_m: NDArray[np.floating], *, order: int
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Least-squares spherical-harmonic shim of ``field`` over ``mask``; returns (residual field, coefficients).

    Parameters
    ----------
    field
        Field map (any unit: ppm, Hz), shape ``(...)``.
    mask
        Shim volume (e.g. the brain), shape ``(...)``.
    positions_m
        Positions ``(..., 3)`` (z, y, x) [m]; centred on the isocentre.
    order
        0 (centre frequency only), 1 (linear) or 2 (2nd order).

    Returns
    -------
    tuple
        Residual ``field - shim`` everywhere (float32, same unit) and the coefficients (unit per m^order).

    Examples
    --------
    >>> pos = np.stack(np.meshgrid(*(np.linspace(-0.1, 0.1, 8),) * 3, indexing="ij"), axis=-1)
    >>> f = 3.0 + 20.0 * pos[..., 0] + 50.0 * pos[..., 1] * pos[..., 2]
    >>> res, _ = fit_shim(f, np.ones(f.shape, bool), pos, order=2)
    >>> bool(np.abs(res).max() < 1e-9)
    True
    """
    f = np.asarray(field, dtype=np.float64)
    msk = np.asarray(mask, dtype=bool)
    if msk.shape != f.shape or np.asarray(positions_m).shape != (*f.shape, 3):
        raise ConfigError(f"field {f.shape}, mask {msk.shape} and positions must share one grid")
    if not np.any(msk):
        raise ConfigError("the shim mask selects no voxels; give a mask over the object")
    basis = spherical_harmonic_basis(np.asarray(positions_m)[msk], order)
    scale = np.maximum(np.abs(basis).max(axis=0), 1e-30)
    coef, *_ = np.linalg.lstsq(basis / scale, f[msk], rcond=None)
    coef = coef / scale
    shim = spherical_harmonic_basis(positions_m, order) @ coef
    return (f - shim).astype(np.float32), coef
