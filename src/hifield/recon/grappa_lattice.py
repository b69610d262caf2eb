"""The k-space sampling lattice behind 3D GRAPPA: its period and acquired offsets, detected outside the ACS block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ReconstructionError


@dataclass(frozen=True)
class Lattice:
    """A periodic (k2, k1) sampling pattern: the cell that repeats and which of its offsets are acquired.

    Position ``(k2, k1)`` is on the lattice when ``(k2 % period[0], k1 % period[1])`` is in ``acquired``.
    A CAIPIRINHA pattern ``ry x rz`` with shift ``s`` has the cell ``(rz * ry / gcd(s, ry), ry)``.
    """

    period: tuple[int, int]
    """Repeat of the pattern along ``(k2, k1)`` [samples]."""
    acquired: tuple[tuple[int, int], ...]
    """Acquired offsets ``(k2 % period[0], k1 % period[1])`` within the cell."""
    rz: int
    """Spacing of the acquired k2 rows [samples]."""
    ry: int
    """Spacing of the acquired k1 lines within an acquired k2 row [samples]."""
    corner_cut: bool = False
    """Nothing acquired outside the ellipse inscribed in the (k2, k1) grid (elliptical corner cut)."""

    @property
    def acceleration(self) -> float:
        """Acceleration of the lattice alone (without the calibration block): cell size / acquired offsets."""
        return self.period[0] * self.period[1] / len(self.acquired)

    def on(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """The lattice drawn on a ``(k2, k1)`` grid of ``shape``."""
        cell = np.zeros(self.period, dtype=bool)
        for a in self.acquired:
            cell[a] = True
        reps = (-(-shape[0] // self.period[0]), -(-shape[1] // self.period[1]))
        return np.tile(cell, reps)[: shape[0], : shape[1]]


def _min_cyclic_gap(values: list[int], period: int) -> int:
    """Smallest spacing between distinct residues on a circle of ``period`` (``period`` for a single value)."""
    v = sorted(set(values))
    if len(v) < 2:
        return period
    gaps = np.diff([*v, v[0] + period])
    return int(gaps.min())


def _detection_region(lines: NDArray[np.bool_], acs: tuple[slice, slice]) -> NDArray[np.bool_]:
    """Where the lattice is looked for: away from fully sampled areas, inside the corner cut if there is one.

    Excluded are the ACS box and every fully sampled 3 x 3 neighbourhood, grown by two samples (the calibration
    region whatever its shape: no point of an accelerated lattice has all eight neighbours); an elliptical corner
    cut is recognised by no acquisition outside the ellipse inscribed in the grid.
    """
    from scipy import ndimage

    square = np.ones((3, 3), dtype=bool)
    dense = ndimage.binary_erosion(lines, structure=square, border_value=0)
    region = ~ndimage.binary_dilation(dense, structure=square, iterations=3)
    region[acs[0], acs[1]] = False
    if has_corner_cut(lines):
        region &= inscribed(lines.shape)
    return region


def inscribed(shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """The ellipse inscribed in a (k2, k1) grid (centre ``n // 2``), as an elliptical corner cut keeps it."""
    n2, n1 = shape
    z = np.arange(n2)[:, None].astype(np.float64)
    y = np.arange(n1)[None, :].astype(np.float64)
    return np.asarray(((z - n2 // 2) / (n2 / 2)) ** 2 + ((y - n1 // 2) / (n1 / 2)) ** 2 <= 1 + 1e-12)


def has_corner_cut(lines: NDArray[np.bool_]) -> bool:
    """True when nothing was acquired outside the inscribed ellipse (and the grid has corners to cut)."""
    ellipse = inscribed(lines.shape)
    return bool(lines.shape[0] > 1 and np.any(~ellipse) and not np.any(lines & ~ellipse))


def detect_lattice(lines: NDArray[np.bool_], acs: tuple[slice, slice], *, max_period: int = 16) -> Lattice:
    """Find the periodic (k2, k1) sampling lattice outside the calibration block.

    Parameters
    ----------
    lines
        Acquired (k2, k1) positions (whole readouts), shape ``(k2, k1)``.
    acs
        The calibration block ``(k2, k1)``: excluded from the detection (it is fully sampled).
    max_period
        Longest repeat tried along each axis [samples].

    Returns
    -------
    Lattice
        Period, acquired offsets and row / line spacings; a fully sampled pattern gives period ``(1, 1)``.

    Raises
    ------
    ReconstructionError
        If the pattern outside the calibration block is not periodic (random or Poisson-disc sampling).

    Examples
    --------
    >>> from hifield.sampling.caipi import caipi_lattice
    >>> lat = detect_lattice(caipi_lattice((32, 32), ry=2, rz=2, shift=1), (slice(12, 20), slice(12, 20)))
    >>> lat.period, lat.rz, lat.ry, lat.acceleration
    ((4, 2), 2, 2, 4.0)
    """
    lines = np.asarray(lines, dtype=bool)
    z, y = np.nonzero(_detection_region(lines, acs))
    values = lines[z, y].astype(np.float64)
    candidates = sorted(
        (pz * py, pz, py)
        for pz in range(1, min(max_period, lines.shape[0]) + 1)
        for py in range(1, min(max_period, lines.shape[1]) + 1)
    )
    for _, pz, py in candidates if values.size else []:
        # agreement of every position with the majority of its cell offset: 1 for an exact lattice
        idx = (z % pz) * py + (y % py)
        counts = np.bincount(idx, minlength=pz * py)
        hits = np.bincount(idx, weights=values, minlength=pz * py)
        if np.maximum(hits, counts - hits).sum() >= 0.95 * values.size and np.any(hits > counts / 2):
            break
    else:
        raise ReconstructionError(
            f"GRAPPA needs a regular (lattice) sampling pattern outside the calibration block; this one has no "
            f"period up to {max_period} samples: use --recon cs or sense"
        )
    acquired = tuple((int(a), int(b)) for a, b in zip(*np.nonzero((hits > counts / 2).reshape(pz, py)), strict=True))
    rz = _min_cyclic_gap([a for a, _ in acquired], pz)
    ry = min(_min_cyclic_gap([b for a, b in acquired if a == row], py) for row in {a for a, _ in acquired})
    return Lattice(period=(pz, py), acquired=acquired, rz=rz, ry=ry, corner_cut=has_corner_cut(lines))
