"""The one validation of a sampling request: each rule is checked here, with one message, for every caller."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hifield.errors import ConfigError

PARTITION_CALIBRATION_FRACTION = 4
"""A slab's calibration region covers at most ``n_partitions // PARTITION_CALIBRATION_FRACTION`` partitions."""


def check_acceleration(value: object) -> float:
    """An acceleration R: a finite number >= 1 (a string such as ``"4"`` from the command line is accepted).

    Examples
    --------
    >>> check_acceleration("2.5")
    2.5
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 1.0:
        raise ConfigError(f"acceleration must be a number >= 1; got {value!r}")
    return number


def check_integer_acceleration(acceleration: float, *, pattern: str) -> int:
    """An acceleration that ``pattern`` (a regular lattice) needs as a whole number."""
    if int(acceleration) != acceleration:
        raise ConfigError(f"{pattern} acceleration must be a whole number; got {acceleration:g}")
    return int(acceleration)


def check_n_lines(n_lines: object) -> int:
    """A number of phase-encode lines (or readouts): an integer >= 2."""
    if isinstance(n_lines, bool) or not isinstance(n_lines, (int, np.integer)) or n_lines < 2:
        raise ConfigError(f"number of phase-encode lines must be an integer >= 2; got {n_lines!r}")
    return int(n_lines)


def check_calibration(n_calibration: object, n_lines: int | None = None) -> int:
    """A number of calibration (ACS) lines: an integer >= 0 that fits ``n_lines`` when given."""
    if isinstance(n_calibration, bool) or not isinstance(n_calibration, (int, np.integer)) or n_calibration < 0:
        raise ConfigError(f"calibration lines must be an integer >= 0; got {n_calibration!r}")
    if n_lines is not None and n_calibration > n_lines:
        raise ConfigError(
            f"calibration region of {n_calibration} lines does not fit a matrix of {n_lines} lines; "
            f"use 0..{n_lines} calibration lines"
        )
    return int(n_calibration)


def check_lines_left(n_available: int, acceleration: float, n_calibration: int, *, unit: str = "lines") -> int:
    """The ``round(n_available / acceleration)`` lines (or points) R leaves; refuses fewer than the calibration."""
    n_target = round(n_available / acceleration)
    if n_target < max(n_calibration, 1):
        max_r = n_available / max(n_calibration, 1)
        raise ConfigError(
            f"acceleration {acceleration:g} leaves {n_target} {unit}, fewer than the {n_calibration} calibration "
            f"{unit}; use an acceleration <= {max_r:.3g} or fewer calibration {unit}"
        )
    return int(n_target)


def partition_calibration(n_calibration: int, n_partitions: int) -> int:
    """Calibration partitions of a slab asked for ``n_calibration`` lines: at most a quarter of the partitions.

    A 3D scan accelerated along its few partitions cannot spend 24 of them on calibration; the request is capped
    at ``n_partitions // 4`` (the summary reports both the requested and the acquired calibration).

    Examples
    --------
    >>> partition_calibration(24, 32), partition_calibration(4, 32)
    (8, 4)
    """
    return min(n_calibration, n_partitions // PARTITION_CALIBRATION_FRACTION)


@dataclass(frozen=True)
class SamplingRequest:
    """A validated request for a sampling pattern."""

    pattern: str
    """Canonical pattern name (aliases resolved)."""
    acceleration: float
    """Acceleration R >= 1."""
    n_calibration: int
    """Calibration (ACS) lines requested."""


def check_request(
    pattern: str | None = None,
    *,
    acceleration: object,
    n_calibration: object = 0,
    n_lines: int | None = None,
) -> SamplingRequest:
    """Validate a sampling request: the one check the CLI, ``ScanConfig`` and the pattern table all go through.

    Parameters
    ----------
    pattern
        Pattern name (see :data:`hifield.sampling.PATTERNS`, aliases accepted); None skips the name check.
    acceleration
        Acceleration R (a number >= 1, or its text).
    n_calibration
        Calibration lines (>= 0; must fit ``n_lines`` when that is given).
    n_lines
        Lines of the grid the pattern will cover, when known.

    Raises
    ------
    ConfigError
        One line per broken rule: unknown pattern, R not a number >= 1, R not whole for a lattice pattern,
        calibration lines negative or not fitting.

    Examples
    --------
    >>> check_request("vd", acceleration="4", n_calibration=24)
    SamplingRequest(pattern='variable-density', acceleration=4.0, n_calibration=24)
    """
    from hifield.sampling.registry import INTEGER_PATTERNS, canonical_name

    name = canonical_name(pattern) if pattern is not None else ""
    value = check_acceleration(acceleration)
    if name in INTEGER_PATTERNS and value != 1.0:
        check_integer_acceleration(value, pattern=name)
    calibration = check_calibration(n_calibration, n_lines)
    return SamplingRequest(pattern=name, acceleration=value, n_calibration=calibration)
