"""The sampling pattern container, the 1D phase-encode line generators and retrospective undersampling."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData
from hifield.errors import ConfigError
from hifield.sampling.validation import (
    check_acceleration,
    check_calibration,
    check_integer_acceleration,
    check_lines_left,
    check_n_lines,
)


@dataclass(frozen=True)
class SamplingPattern:
    """Which k-space positions a scan acquires, and in which order.

    Attributes are arrays over the Cartesian grid ``(k2, k1, k0)``; the readout ``k0`` is always fully sampled for
    the phase-encode patterns made here (its axis has size 1 and broadcasts).

    Examples
    --------
    >>> p = variable_density_lines(256, acceleration=4, n_calibration=24, seed=0)
    >>> p.n_acquired, round(p.acceleration, 2), int(p.calibration.sum())
    (64, 4.0, 24)
    """

    mask: NDArray[np.bool_]
    """Acquired positions, shape ``(k2, k1, 1)`` (readout broadcast)."""
    calibration: NDArray[np.bool_]
    """Fully sampled calibration (ACS) positions, same shape as ``mask`` and a subset of it."""
    order: NDArray[np.int64]
    """k1 indices in acquisition order (centre of k-space at ``n // 2``)."""
    name: str
    """Pattern kind, e.g. ``"variable-density"``."""
    seed: int | None = None
    """Seed that generated it (None for deterministic patterns)."""

    @property
    def n_lines(self) -> int:
        """Phase-encode lines of the fully sampled grid."""
        return int(self.mask.shape[1])

    @property
    def n_acquired(self) -> int:
        """Phase-encode lines acquired."""
        return int(self.mask.sum())

    @property
    def acceleration(self) -> float:
        """Effective acceleration: grid lines / acquired lines."""
        return self.mask.size / max(self.n_acquired, 1)

    @property
    def calibration_lines(self) -> int:
        """Number of fully sampled calibration lines."""
        return int(self.calibration.sum())

    def psf_peak_sidelobe(self) -> float:
        """Largest side lobe of the 1D point-spread function, relative to its main lobe (incoherence measure).

        Lower is more incoherent (noise-like aliasing); equispaced sampling gives coherent aliases near 1/R·R = 1.
        """
        line_mask = self.mask[0, :, 0].astype(np.float64)
        psf = np.abs(np.fft.ifft(np.fft.ifftshift(line_mask)))
        main = psf[0]
        return float(np.max(psf[1:]) / main) if psf.size > 1 else 0.0


def _check_request(n_lines: int, acceleration: float, n_calibration: int) -> int:
    check_n_lines(n_lines)
    value = check_acceleration(acceleration)
    check_calibration(n_calibration, n_lines)
    return check_lines_left(n_lines, value, n_calibration)


def _centre_block(n_lines: int, n_calibration: int) -> NDArray[np.int64]:
    start = n_lines // 2 - n_calibration // 2
    return np.arange(start, start + n_calibration, dtype=np.int64)


def _pattern(
    n_lines: int, chosen: NDArray[np.int64], calib: NDArray[np.int64], name: str, seed: int | None, *, order: str
) -> SamplingPattern:
    mask = np.zeros((1, n_lines, 1), dtype=bool)
    mask[0, chosen, 0] = True
    calibration = np.zeros_like(mask)
    calibration[0, calib, 0] = True
    lines = np.flatnonzero(mask[0, :, 0]).astype(np.int64)
    if order == "centre-out":
        lines = lines[np.argsort(np.abs(lines - n_lines // 2), kind="stable")]
    return SamplingPattern(mask=mask, calibration=calibration, order=lines, name=name, seed=seed)


def variable_density_lines(
    n_lines: int,
    *,
    acceleration: float,
    n_calibration: int = 24,
    seed: int = 0,
    power: float = 2.0,
    order: str = "linear",
) -> SamplingPattern:
    """Variable-density random phase-encode lines with a fully sampled centre.

    Exactly ``round(n_lines / acceleration)`` distinct lines are drawn: the ``n_calibration`` central lines, then the
    rest without replacement with probability proportional to ``(1 - |k| / k_max) ** power``.

    Parameters
    ----------
    n_lines
        Phase-encode lines of the full grid (k-space centre at ``n_lines // 2``).
    acceleration
        Requested acceleration R >= 1.
    n_calibration
        Fully sampled central (ACS) lines.
    seed
        Random seed; the same seed gives the same pattern.
    power
        Density decay exponent (0 = uniform random).
    order
        ``"linear"`` (ascending k1) or ``"centre-out"`` acquisition order.

    Raises
    ------
    ConfigError
        For R < 1, a calibration region that does not fit, or R too high for the calibration region.
    """
    n_target = _check_request(n_lines, acceleration, n_calibration)
    calib = _centre_block(n_lines, n_calibration)
    rng = np.random.default_rng(seed)
    k = np.abs(np.arange(n_lines) - n_lines // 2) / (n_lines / 2)
    weights = np.clip(1.0 - k, 1e-3, None) ** power
    weights[calib] = 0.0
    n_extra = n_target - calib.size
    extra = np.empty(0, dtype=np.int64)
    if n_extra > 0:
        extra = rng.choice(n_lines, size=n_extra, replace=False, p=weights / weights.sum()).astype(np.int64)
    chosen = np.union1d(calib, extra)
    return _pattern(n_lines, chosen, calib, "variable-density", seed, order=order)


def equispaced_lines(n_lines: int, *, acceleration: int, n_calibration: int = 24) -> SamplingPattern:
    """Every R-th line plus a fully sampled centre (fastMRI-style equispaced mask, deterministic).

    The effective acceleration is a little below R because of the calibration lines.

    Examples
    --------
    >>> equispaced_lines(128, acceleration=4, n_calibration=0).n_acquired
    32
    """
    _check_request(n_lines, acceleration, n_calibration)
    check_integer_acceleration(acceleration, pattern="equispaced")
    calib = _centre_block(n_lines, n_calibration)
    offset = (n_lines // 2) % int(acceleration)
    regular = np.arange(offset, n_lines, int(acceleration), dtype=np.int64)
    return _pattern(n_lines, np.union1d(calib, regular), calib, "equispaced", None, order="linear")


def full_lines(n_lines: int) -> SamplingPattern:
    """Fully sampled pattern (R = 1) in linear order."""
    every = np.arange(n_lines, dtype=np.int64)
    return _pattern(n_lines, every, every, "full", None, order="linear")


def played_lines(n_lines: int, lines: NDArray[np.int64]) -> SamplingPattern:
    """The pattern of a sequence built without one: the ``lines`` it plays (in that order), no calibration region.

    Examples
    --------
    >>> p = played_lines(8, np.array([4, 5, 6, 7, 3, 2]))
    >>> p.name, p.order.tolist(), p.calibration_lines
    ('as built', [4, 5, 6, 7, 3, 2], 0)
    >>> played_lines(4, np.arange(4)).name
    'full'
    """
    check_n_lines(n_lines)
    _, first = np.unique(np.asarray(lines, dtype=np.int64), return_index=True)
    order = np.asarray(lines, dtype=np.int64)[np.sort(first)]
    mask = np.zeros((1, n_lines, 1), dtype=bool)
    mask[0, order, 0] = True
    name = "full" if mask.all() else "as built"
    return SamplingPattern(mask=mask, calibration=np.zeros_like(mask), order=order, name=name)


def centre_lines(n_lines: int, n_calibration: int) -> SamplingPattern:
    """Only the ``n_calibration`` central lines, all of them calibration (a coil-calibration prescan).

    Examples
    --------
    >>> centre_lines(64, 24).order[[0, -1]].tolist(), centre_lines(64, 24).calibration_lines
    ([20, 43], 24)
    """
    check_n_lines(n_lines)
    check_calibration(n_calibration, n_lines)
    block = _centre_block(n_lines, n_calibration)
    return _pattern(n_lines, block, block, "calibration", None, order="linear")


def on_grid(
    pattern: SamplingPattern, *, axis: str, grid: tuple[int, int]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The pattern's mask and calibration region on the ``(k2, k1, 1)`` grid of a Cartesian acquisition.

    ``axis="k1"``: the pattern is over k1 lines (or a (k2, k1) plane) and broadcasts over k2; ``axis="k2"``: it is
    over the partitions of a slab, and every k1 line of an acquired (calibration) partition is acquired
    (calibration); ``axis="plane"``: it is over the whole (k2, k1) plane of a slab (a Poisson disc or CAIPIRINHA
    pattern of a 3D scan) and its grid must be ``grid``.

    Examples
    --------
    >>> mask, calibration = on_grid(equispaced_lines(16, acceleration=2, n_calibration=4), axis="k2", grid=(16, 8))
    >>> mask.shape, int(mask.sum()), int(calibration.sum())
    ((16, 8, 1), 80, 32)
    """
    n_k2, n_k1 = grid
    if axis == "k1":
        mask = np.broadcast_to(pattern.mask, (n_k2, n_k1, 1)).copy()
        calibration = np.broadcast_to(pattern.calibration, (n_k2, n_k1, 1)).copy()
    elif axis == "k2":
        lines, calib = pattern.mask.reshape(-1), pattern.calibration.reshape(-1)
        if lines.size != n_k2:
            raise ConfigError(f"a pattern over {lines.size} lines cannot sample the {n_k2} partitions of this grid")
        mask = np.zeros((n_k2, n_k1, 1), dtype=bool)
        calibration = np.zeros_like(mask)
        mask[lines] = True
        calibration[calib] = True
    elif axis == "plane":
        if pattern.mask.shape[:2] != (n_k2, n_k1):
            raise ConfigError(
                f"a pattern over a {pattern.mask.shape[0]}x{pattern.mask.shape[1]} (k2, k1) plane cannot sample this "
                f"{n_k2}x{n_k1} grid"
            )
        mask = pattern.mask.reshape(n_k2, n_k1, 1).copy()
        calibration = pattern.calibration.reshape(n_k2, n_k1, 1).copy()
    else:
        raise ConfigError(f"pattern axis {axis!r} is not k1, k2 or plane")
    return mask, calibration


def undersample(raw: RawData, pattern: SamplingPattern) -> RawData:
    """Apply a phase-encode pattern to fully sampled raw data (retrospective undersampling).

    Unacquired positions are set to zero; the mask, calibration region and acceleration go into the result.
    The scan time in the header is scaled by the fraction of lines kept.

    Raises
    ------
    ConfigError
        If the pattern's grid does not match the k-space, or the data are already undersampled.
    """
    n_k1 = raw.kspace.shape[-2]
    if pattern.mask.shape[1] != n_k1:
        raise ConfigError(f"pattern has {pattern.mask.shape[1]} phase-encode lines but the k-space has {n_k1}")
    if raw.mask is not None and not np.all(raw.mask):
        raise ConfigError("raw data are already undersampled; undersample fully sampled data only")
    mask = np.broadcast_to(pattern.mask, (raw.kspace.shape[-3], n_k1, 1)).copy()
    calib = np.broadcast_to(pattern.calibration, mask.shape).copy()
    kspace = np.where(mask, raw.kspace, 0).astype(np.complex64)
    fraction = float(mask.sum()) / mask.size
    full_time = raw.header.scan_time_full_s or raw.header.scan_time_s
    header = dataclasses.replace(
        raw.header,
        acceleration=1.0 / fraction,
        scan_time_s=full_time * fraction,
        scan_time_full_s=full_time,
    )
    return raw.replace(kspace=kspace, mask=mask, calibration=calib if calib.any() else None, header=header)
