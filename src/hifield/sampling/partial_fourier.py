"""Partial-Fourier phase-encode patterns (asymmetric k1 coverage), alone or combined with undersampling."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.sampling.pattern import SamplingPattern
from hifield.sampling.validation import (
    check_acceleration,
    check_calibration,
    check_integer_acceleration,
    check_lines_left,
    check_n_lines,
)

PF_KINDS: tuple[str, ...] = ("full", "variable-density", "equispaced")
"""How the lines inside the partial-Fourier window are chosen."""


def partial_fourier_window(n_lines: int, fraction: float, *, side: str = "high") -> NDArray[np.int64]:
    """k1 indices kept by a partial-Fourier acquisition of ``fraction`` of ``n_lines`` (centre at ``n // 2``).

    ``side="high"`` omits the first (most negative k1) lines, ``"low"`` the last ones. The window always contains
    the centre and ``ceil(fraction * n_lines)`` lines.

    Examples
    --------
    >>> w = partial_fourier_window(16, 5 / 8)
    >>> int(w[0]), int(w[-1]), w.size
    (6, 15, 10)
    """
    check_n_lines(n_lines)
    if not np.isfinite(fraction) or not 0.5 <= fraction <= 1.0:
        raise ConfigError(f"partial-Fourier fraction must be in [0.5, 1] (e.g. 5/8 = 0.625); got {fraction!r}")
    if side not in ("high", "low"):
        raise ConfigError(f"partial-Fourier side must be 'high' or 'low'; got {side!r}")
    n_keep = min(n_lines, max(math.ceil(fraction * n_lines - 1e-9), n_lines - n_lines // 2))
    if side == "high":
        return np.arange(n_lines - n_keep, n_lines, dtype=np.int64)
    return np.arange(0, n_keep, dtype=np.int64)


def partial_fourier_lines(
    n_lines: int,
    *,
    fraction: float = 5 / 8,
    acceleration: float = 1.0,
    kind: str = "variable-density",
    n_calibration: int = 24,
    seed: int = 0,
    power: float = 2.0,
    side: str = "high",
    order: str = "linear",
) -> SamplingPattern:
    """Partial-Fourier pattern: only ``fraction`` of the k1 lines (asymmetric about the centre), undersampled by R.

    Inside the partial-Fourier window, ``round(n_window / acceleration)`` lines are taken: the ``n_calibration``
    central lines plus variable-density random lines (probability ``(1 - |k| / k_max) ** power``) or every R-th
    line (``kind="equispaced"``). The effective acceleration of the whole pattern is then close to
    ``acceleration / fraction`` (e.g. R = 2 with 5/8 partial Fourier gives 3.2).

    Parameters
    ----------
    n_lines
        Phase-encode lines of the full grid (centre at ``n_lines // 2``).
    fraction
        Fraction of k1 acquired, in [0.5, 1] (5/8, 6/8, 7/8 are usual).
    acceleration
        Undersampling R >= 1 inside the partial-Fourier window (1 = every line of the window).
    kind
        ``"variable-density"``, ``"equispaced"`` (integer R) or ``"full"`` (R must be 1).
    n_calibration
        Fully sampled central lines; they must lie inside the window.
    seed
        Random seed of the variable-density choice.
    power
        Density decay exponent of the variable-density choice.
    side
        ``"high"``: the window runs from just below the centre to +k_max; ``"low"``: mirror image.
    order
        ``"linear"`` (ascending k1) or ``"centre-out"``.

    Raises
    ------
    ConfigError
        For a fraction outside [0.5, 1], R < 1, a calibration region that does not fit the window, or R so high
        that fewer lines than the calibration region would remain.

    Examples
    --------
    >>> p = partial_fourier_lines(256, fraction=5 / 8, acceleration=2, n_calibration=16, seed=0)
    >>> p.n_acquired, round(p.acceleration, 2), bool(p.mask[0, 96:, 0].any())
    (80, 3.2, True)
    >>> int(p.mask[0, :96, 0].sum())
    0
    """
    window = partial_fourier_window(n_lines, fraction, side=side)
    check_acceleration(acceleration)
    if kind not in PF_KINDS:
        raise ConfigError(f"unknown partial-Fourier line choice {kind!r}; choose one of {', '.join(PF_KINDS)}")
    if order not in ("linear", "centre-out"):
        raise ConfigError(f"unknown acquisition order {order!r}; choose linear or centre-out")
    check_calibration(n_calibration)
    centre = n_lines // 2
    calib = np.arange(centre - n_calibration // 2, centre - n_calibration // 2 + n_calibration, dtype=np.int64)
    if n_calibration < 0 or (calib.size and (calib[0] < window[0] or calib[-1] > window[-1])):
        raise ConfigError(
            f"calibration region of {n_calibration} lines does not fit the {fraction:g} partial-Fourier window of "
            f"{window.size} lines (k1 {window[0]}..{window[-1]}); use fewer calibration lines or a larger fraction"
        )
    n_target = check_lines_left(window.size, acceleration, calib.size)
    if kind == "full":
        if acceleration != 1.0:
            raise ConfigError(
                f"partial Fourier with kind='full' takes every window line; got acceleration {acceleration:g}"
            )
        chosen = window
    elif kind == "equispaced":
        step = check_integer_acceleration(acceleration, pattern="equispaced")
        regular = window[(window - centre) % step == 0]
        chosen = np.union1d(calib, regular)
    else:
        rng = np.random.default_rng(seed)
        k = np.abs(window - centre) / (n_lines / 2)
        weights = np.clip(1.0 - k, 1e-3, None) ** power
        weights[np.isin(window, calib)] = 0.0
        n_extra = n_target - calib.size
        extra = np.empty(0, dtype=np.int64)
        if n_extra > 0:
            extra = rng.choice(window, size=n_extra, replace=False, p=weights / weights.sum()).astype(np.int64)
        chosen = np.union1d(calib, extra)
    mask = np.zeros((1, n_lines, 1), dtype=bool)
    mask[0, chosen, 0] = True
    calibration = np.zeros_like(mask)
    calibration[0, calib, 0] = True
    lines = np.flatnonzero(mask[0, :, 0]).astype(np.int64)
    if side == "low":
        lines = lines[::-1]
    if order == "centre-out":
        lines = lines[np.argsort(np.abs(lines - centre), kind="stable")]
    return SamplingPattern(
        mask=mask,
        calibration=calibration,
        order=lines,
        name="partial-fourier" if kind == "full" else f"partial-fourier+{kind}",
        seed=seed if kind == "variable-density" else None,
    )
