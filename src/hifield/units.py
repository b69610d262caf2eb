"""Physical constants and unit conversions at hifield's boundaries (SI inside, always)."""

from __future__ import annotations

import math

GAMMA_BAR_HZ_PER_T: float = 42.577478518e6
"""Reduced gyromagnetic ratio of 1H, gamma / (2 pi) [Hz/T] (CODATA 2018)."""

GAMMA_RAD_PER_S_PER_T: float = 2.0 * math.pi * GAMMA_BAR_HZ_PER_T
"""Gyromagnetic ratio of 1H [rad/s/T]."""


def larmor_frequency_hz(b0_t: float) -> float:
    """Proton Larmor frequency [Hz] at main field ``b0_t`` [T].

    Examples
    --------
    >>> round(larmor_frequency_hz(3.0) / 1e6, 3)
    127.732
    """
    return GAMMA_BAR_HZ_PER_T * b0_t


def ms_to_s(value_ms: float) -> float:
    """Convert milliseconds to seconds."""
    return value_ms * 1e-3


def s_to_ms(value_s: float) -> float:
    """Convert seconds to milliseconds."""
    return value_s * 1e3


def mm_to_m(value_mm: float) -> float:
    """Convert millimetres to metres."""
    return value_mm * 1e-3


def m_to_mm(value_m: float) -> float:
    """Convert metres to millimetres."""
    return value_m * 1e3


def deg_to_rad(value_deg: float) -> float:
    """Convert degrees to radians."""
    return math.radians(value_deg)


def rad_to_deg(value_rad: float) -> float:
    """Convert radians to degrees."""
    return math.degrees(value_rad)


def t_per_m_to_hz_per_m(value_t_per_m: float) -> float:
    """Convert a gradient amplitude [T/m] to pypulseq's unit [Hz/m]."""
    return value_t_per_m * GAMMA_BAR_HZ_PER_T


def hz_per_m_to_t_per_m(value_hz_per_m: float) -> float:
    """Convert a gradient amplitude from pypulseq's unit [Hz/m] to [T/m]."""
    return value_hz_per_m / GAMMA_BAR_HZ_PER_T


def parse_field_strength(text: str | float) -> float:
    """Parse a field strength such as ``"3T"``, ``"1.5 T"`` or ``5`` into tesla.

    Raises
    ------
    ValueError
        If the text is not a positive number of tesla.

    Examples
    --------
    >>> parse_field_strength("1.5T")
    1.5
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        cleaned = text.strip().upper().removesuffix("T").strip()
        try:
            value = float(cleaned)
        except ValueError:
            raise ValueError(f"field strength {text!r} is not a number of tesla such as '3T'") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"field strength {text!r} must be a positive number of tesla")
    return value
