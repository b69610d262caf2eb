"""Two-dimensional (k2, k1) phase-encode patterns for 3D Cartesian scans: container, regions, order and PSF."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.sampling.pattern import SamplingPattern

ORDERS_2D: tuple[str, ...] = ("linear", "centre-out")
"""Acquisition orders of (k2, k1) patterns: raster (k2 outer, k1 inner) or by elliptical radius from the centre."""


def _empty_order() -> NDArray[np.int64]:
    return np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class SamplingPattern2D(SamplingPattern):
    """A phase-encode pattern over the (k2, k1) plane of a 3D Cartesian scan (one readout per acquired point).

    ``mask`` and ``calibration`` have shape ``(k2, k1, 1)``; ``order`` holds the flat indices ``k2 * n_k1 + k1``
    in acquisition order and ``order_2d`` the same positions as ``(k2, k1)`` index pairs. The k-space centre is at
    ``(n_k2 // 2, n_k1 // 2)``.
    """

    order_2d: NDArray[np.int64] = field(default_factory=_empty_order)
    """(k2, k1) index pairs in acquisition order, shape ``(n_acquired, 2)``."""
    requested_acceleration: float = 1.0
    """The acceleration that was asked for (``acceleration`` is the one achieved)."""

    @property
    def n_lines(self) -> int:
        """Readout lines of the fully sampled (k2, k1) grid."""
        return int(self.mask.shape[0] * self.mask.shape[1])

    def psf(self) -> NDArray[np.float64]:
        """Magnitude of the 2D point-spread function (inverse FFT of the mask), peak 1 at index ``(0, 0)``.

        Returns
        -------
        ndarray
            ``|PSF|``, shape ``(k2, k1)``, normalised by the number of acquired points (unshifted: the main lobe
            sits at ``[0, 0]``).
        """
        plane = self.mask[:, :, 0].astype(np.float64)
        psf = np.abs(np.fft.ifft2(np.fft.ifftshift(plane))) * plane.size / max(plane.sum(), 1.0)
        return psf

    def psf_peak_sidelobe(self) -> float:
        """Largest side lobe of the 2D point-spread function relative to its main lobe (incoherence measure).

        A regular lattice of acceleration R (no calibration) gives R coherent aliases of height 1; a variable
        density Poisson disc gives low, noise-like side lobes.
        """
        psf = self.psf().ravel()
        return float(np.max(psf[1:]) / psf[0]) if psf.size > 1 else 0.0


def check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Validate a (k2, k1) matrix and return it as two ints."""
    if len(shape) != 2 or any(not isinstance(n, (int, np.integer)) for n in shape) or shape[0] < 1 or shape[1] < 2:
        raise ConfigError(f"(k2, k1) matrix must be two integers, k2 >= 1 and k1 >= 2; got {shape!r}")
    return int(shape[0]), int(shape[1])


def normalised_radius(shape: tuple[int, int]) -> NDArray[np.float64]:
    """Elliptical radius of each (k2, k1) grid point: 0 at the centre, 1 on the inscribed ellipse.

    Examples
    --------
    >>> r = normalised_radius((4, 8))
    >>> float(r[2, 4]), float(r[0, 4]), float(r[2, 0])
    (0.0, 1.0, 1.0)
    """
    n2, n1 = shape
    k2 = (np.arange(n2) - n2 // 2) / (n2 / 2)
    k1 = (np.arange(n1) - n1 // 2) / (n1 / 2)
    return np.sqrt(k2[:, None] ** 2 + k1[None, :] ** 2)


def corner_cut_region(shape: tuple[int, int], *, corner_cut: bool) -> NDArray[np.bool_]:
    """Points that may be acquired: the inscribed ellipse (elliptical corner cut) or the whole grid."""
    if not corner_cut:
        return np.ones(shape, dtype=bool)
    return normalised_radius(shape) <= 1.0 + 1e-12


def calibration_region(
    shape: tuple[int, int], calibration: tuple[int, int], *, elliptical: bool = False
) -> NDArray[np.bool_]:
    """Fully sampled central calibration (ACS) region of ``calibration = (c2, c1)`` points.

    Rectangular: the central ``c2 x c1`` block; elliptical: the points of that block inside its inscribed ellipse.

    Raises
    ------
    ConfigError
        If the region does not fit the matrix.

    Examples
    --------
    >>> int(calibration_region((32, 32), (4, 6)).sum())
    24
    """
    n2, n1 = shape
    if len(calibration) != 2 or any(c < 0 for c in calibration):
        raise ConfigError(f"calibration region must be two sizes (c2, c1) >= 0; got {calibration!r}")
    c2, c1 = int(calibration[0]), int(calibration[1])
    if c2 > n2 or c1 > n1:
        raise ConfigError(
            f"calibration region {c2}x{c1} does not fit the {n2}x{n1} (k2, k1) matrix; use at most {n2}x{n1}"
        )
    region = np.zeros(shape, dtype=bool)
    if c2 == 0 or c1 == 0:
        return region
    s2, s1 = n2 // 2 - c2 // 2, n1 // 2 - c1 // 2
    block = np.ones((c2, c1), dtype=bool)
    if elliptical:
        # distance in units of the half-size, measured from the block's own centre
        y = (np.arange(c2) - (c2 - 1) / 2) / (c2 / 2)
        x = (np.arange(c1) - (c1 - 1) / 2) / (c1 / 2)
        block = y[:, None] ** 2 + x[None, :] ** 2 <= 1.0 + 1e-12
    region[s2 : s2 + c2, s1 : s1 + c1] = block
    return region


def acquisition_order(mask: NDArray[np.bool_], *, order: str) -> NDArray[np.int64]:
    """(k2, k1) index pairs of the points of a 2D ``mask`` in acquisition order.

    ``"linear"``: k2 outer loop, k1 inner (raster); ``"centre-out"``: by elliptical radius from the centre, ties by
    angle (elliptical centric, the centre first).
    """
    if order not in ORDERS_2D:
        raise ConfigError(f"unknown acquisition order {order!r}; choose one of {', '.join(ORDERS_2D)}")
    pts = np.argwhere(mask).astype(np.int64)
    if order == "centre-out":
        n2, n1 = mask.shape
        rad = normalised_radius((n2, n1))[pts[:, 0], pts[:, 1]]
        ang = np.arctan2(pts[:, 0] - n2 // 2, pts[:, 1] - n1 // 2)
        pts = pts[np.lexsort((ang, np.round(rad, 12)))]
    return pts


def make_pattern_2d(
    mask2d: NDArray[np.bool_],
    calib2d: NDArray[np.bool_],
    *,
    name: str,
    seed: int | None,
    order: str,
    requested_acceleration: float,
) -> SamplingPattern2D:
    """Wrap a (k2, k1) mask and calibration region as a :class:`SamplingPattern2D`."""
    pairs = acquisition_order(mask2d, order=order)
    flat = (pairs[:, 0] * mask2d.shape[1] + pairs[:, 1]).astype(np.int64)
    return SamplingPattern2D(
        mask=mask2d[:, :, None].copy(),
        calibration=(calib2d & mask2d)[:, :, None].copy(),
        order=flat,
        name=name,
        seed=seed,
        order_2d=pairs,
        requested_acceleration=float(requested_acceleration),
    )
