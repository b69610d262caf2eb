"""The grids every engine shares: the phantom's fine grid, the protocol's coarse grid, and the field they agree on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom


def check_same_field(phantom: Phantom, scanner: Scanner) -> None:
    """Raise :class:`~hifield.errors.ConfigError` unless the phantom was made at the scanner's field (to 1 uT)."""
    if abs(phantom.b0_t - scanner.b0_t) > 1e-6:
        raise ConfigError(
            f"phantom is at {phantom.b0_t:g} T but the scanner at {scanner.b0_t:g} T; "
            f"use phantom.at_field({scanner.b0_t:g})"
        )


def coarse_affine(
    fine_affine: NDArray[np.float64],
    fine_shape: tuple[int, int, int],
    coarse_shape: tuple[int, int, int],
    *,
    slice_thickness_m: float | None = None,
) -> NDArray[np.float64]:
    """Affine of the coarse grid whose centre voxel (n // 2) sits where the fine grid's centre voxel sits.

    With ``slice_thickness_m`` (a 2D slice) the through-slice column is rescaled to that thickness [m].

    Examples
    --------
    >>> a = coarse_affine(np.diag([1e-3, 1e-3, 1e-3, 1.0]), (1, 8, 8), (1, 4, 4), slice_thickness_m=5e-3)
    >>> np.diag(a)[:3].tolist()
    [0.005, 0.002, 0.002]
    """
    scale = np.array([f / c for f, c in zip(fine_shape, coarse_shape, strict=True)], dtype=np.float64)
    coarse = np.array(fine_affine, dtype=np.float64, copy=True)
    coarse[:3, :3] = fine_affine[:3, :3] * scale[np.newaxis, :]
    centre_fine = fine_affine @ np.array([fine_shape[0] // 2, fine_shape[1] // 2, fine_shape[2] // 2, 1.0])
    coarse[:3, 3] = centre_fine[:3] - coarse[:3, :3] @ np.array([c // 2 for c in coarse_shape], dtype=np.float64)
    if slice_thickness_m is not None:
        coarse[:3, 0] = coarse[:3, 0] / max(float(np.linalg.norm(coarse[:3, 0])), 1e-12) * slice_thickness_m
    return coarse
