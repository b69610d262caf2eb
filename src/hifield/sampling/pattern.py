"""Cartesian phase-encode sampling patterns (seeded, reproducible) and retrospective undersampling."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData
from hifield.errors import ConfigError


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
    if not isinstance(n_lines, (int, np.integer)) or n_lines < 2:
        raise ConfigError(f"number of phase-encode lines must be an integer >= 2; got {n_lines!r}")
    if not np.isfinite(acceleration) or acceleration < 1.0:
        raise ConfigError(f"acceleration must be a number >= 1; got {acceleration!r}")
    if n_calibration < 0 or n_calibration > n_lines:
        raise ConfigError(
            f"calibration region of {n_calibration} lines does not fit a matrix of {n_lines} lines; "
            f"use 0..{n_lines} calibration lines"
        )
    n_target = round(n_lines / acceleration)
    if n_target < max(n_calibration, 1):
        max_r = n_lines / max(n_calibration, 1)
        raise ConfigError(
            f"acceleration {acceleration:g} leaves {n_target} lines, fewer than the {n_calibration} calibration lines; "
            f"use an acceleration <= {max_r:.3g} or fewer calibration lines"
        )
    return n_target


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
    if int(acceleration) != acceleration or acceleration < 1:
        raise ConfigError(f"equispaced acceleration must be an integer >= 1; got {acceleration!r}")
    _check_request(n_lines, float(acceleration), n_calibration)
    calib = _centre_block(n_lines, n_calibration)
    offset = (n_lines // 2) % int(acceleration)
    regular = np.arange(offset, n_lines, int(acceleration), dtype=np.int64)
    return _pattern(n_lines, np.union1d(calib, regular), calib, "equispaced", None, order="linear")


def full_lines(n_lines: int) -> SamplingPattern:
    """Fully sampled pattern (R = 1) in linear order."""
    every = np.arange(n_lines, dtype=np.int64)
    return _pattern(n_lines, every, every, "full", None, order="linear")


PATTERNS: tuple[str, ...] = (
    "variable-density",
    "equispaced",
    "partial-fourier",
    "poisson",
    "caipirinha",
    "radial",
    "stack-of-stars",
    "spiral",
)
"""Names of the Cartesian phase-encode patterns ``make_pattern`` accepts."""


def make_pattern(
    name: str, n_lines: int, *, acceleration: float, n_calibration: int = 24, seed: int = 0
) -> SamplingPattern:
    """Build a phase-encode pattern by name for ``n_lines`` lines (see :data:`PATTERNS`); R = 1 gives the full pattern.

    ``"variable-density"`` and ``"equispaced"`` are made here; the other Cartesian names go through
    :func:`hifield.sampling.registry.make_any_pattern`; non-Cartesian names raise a one-line ConfigError.
    """
    if acceleration == 1:
        return full_lines(n_lines)
    if name in ("partial-fourier", "poisson", "caipirinha", "caipi", "radial", "stack-of-stars", "spiral"):
        from hifield.sampling.registry import make_any_pattern

        return make_any_pattern(name, n_lines, acceleration=acceleration, n_calibration=n_calibration, seed=seed)
    if name in ("variable-density", "vd", "random"):
        return variable_density_lines(n_lines, acceleration=acceleration, n_calibration=n_calibration, seed=seed)
    if name == "equispaced":
        if int(acceleration) != acceleration:
            raise ConfigError(f"equispaced acceleration must be an integer; got {acceleration:g}")
        return equispaced_lines(n_lines, acceleration=int(acceleration), n_calibration=n_calibration)
    raise ConfigError(f"unknown sampling pattern {name!r}; choose one of {', '.join(PATTERNS)}")


def with_calibration(raw: RawData, pattern: SamplingPattern, *, axis: str = "k1") -> RawData:
    """Raw data acquired prospectively with ``pattern``, marked with the pattern's calibration (ACS) region.

    The simulator knows which lines were played, not which of them the pattern meant as calibration; this adds it
    (None when the pattern has no calibration lines). ``axis="k2"``: the pattern ran over the partitions of a 3D
    acquisition (every k1 line of a calibration partition is calibration).

    Examples
    --------
    >>> import numpy as np
    >>> from hifield.data import RawData, RawHeader
    >>> header = RawHeader(b0_t=3.0, fov_m=(0.1, 0.2, 0.2), matrix=(16, 8, 8), te_s=0.005, tr_s=0.01,
    ...                    flip_angle_rad=0.2)
    >>> raw = RawData(kspace=np.zeros((1, 16, 8, 8), np.complex64), header=header)
    >>> pattern = equispaced_lines(16, acceleration=2, n_calibration=4)
    >>> marked = with_calibration(raw, pattern, axis="k2")
    >>> marked.calibration.shape, int(marked.calibration.sum())
    ((16, 8, 1), 32)
    """
    n_k2, n_k1 = raw.kspace.shape[-3], raw.kspace.shape[-2]
    lines = np.asarray(pattern.calibration).reshape(-1)
    if axis == "k1":
        calibration = np.broadcast_to(pattern.calibration, (n_k2, n_k1, 1)).copy()
    elif axis == "k2":
        if lines.size != n_k2:
            raise ConfigError(f"a pattern over {lines.size} lines cannot mark the {n_k2} partitions of this raw data")
        calibration = np.zeros((n_k2, n_k1, 1), dtype=bool)
        calibration[lines] = True
    else:
        raise ConfigError(f"axis {axis!r} is not k1 or k2")
    return raw.replace(calibration=calibration if calibration.any() else None)


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
