"""Hardware and safety checks of a built sequence against a scanner, returning every violated limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from hifield.errors import HardwareLimitError, SafetyLimitError, SequenceError
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence

AXES: tuple[str, str, str] = ("x", "y", "z")

_TOLERANCE: float = 1e-6
"""Relative tolerance before a value counts as over its limit (float noise of the waveform arithmetic)."""


@dataclass(frozen=True)
class Violation:
    """One exceeded limit.

    Examples
    --------
    >>> v = Violation("gradient amplitude on y", 92.1, 80.0, "mT/m", "use a larger FOV or a lower bandwidth")
    >>> str(v)
    'gradient amplitude on y is 92.1 mT/m, above the limit of 80 mT/m: use a larger FOV or a lower bandwidth'
    """

    limit: str
    """Name of the limit (``gradient amplitude on y``)."""
    value: float
    """The sequence's value, in ``unit``."""
    maximum: float
    """The limit, in ``unit``."""
    unit: str
    """Display unit of ``value`` and ``maximum``."""
    hint: str
    """What to change."""
    kind: Literal["hardware", "safety"] = "hardware"
    """Whether a hardware limit or a patient-safety limit is exceeded."""

    def __str__(self) -> str:
        return (
            f"{self.limit} is {self.value:.4g} {self.unit}, above the limit of {self.maximum:.4g} {self.unit}: "
            f"{self.hint}"
        )


def block_start_times(seq: Any) -> NDArray[np.float64]:
    """Start time of every block [s], in block order."""
    durations = np.fromiter(seq.block_durations.values(), dtype=np.float64, count=len(seq.block_durations))
    return np.concatenate([[0.0], np.cumsum(durations)[:-1]])


def _event_shape(event: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Corner times [s] (from the block start) and amplitudes [Hz/m] of one gradient event."""
    if event.type == "trap":
        t = event.delay + np.array([0.0, event.rise_time, event.rise_time + event.flat_time])
        t = np.append(t, t[-1] + event.fall_time)
        return t, np.array([0.0, event.amplitude, event.amplitude, 0.0])
    tt = np.asarray(event.tt, dtype=np.float64)
    wave = np.asarray(event.waveform, dtype=np.float64)
    shape_dur = float(getattr(event, "shape_dur", tt[-1] if tt.size else 0.0))
    times, amps = [tt], [wave]
    if tt.size == 0 or tt[0] > 1e-12:
        times.insert(0, np.array([0.0]))
        amps.insert(0, np.array([float(event.first)]))
    if tt.size == 0 or tt[-1] < shape_dur - 1e-12:
        times.append(np.array([shape_dur]))
        amps.append(np.array([float(event.last)]))
    return event.delay + np.concatenate(times), np.concatenate(amps)


def gradient_waveforms(seq: Any) -> list[NDArray[np.float64]]:
    """Per-axis gradient waveforms ``(2, n)``: times [s] and amplitudes [T/m] (piecewise linear between points).

    Built from the event library, each distinct gradient event expanded once and placed at every block using it,
    so it is fast for long sequences. Equivalent to pypulseq's ``seq.waveforms()`` corner points.
    """
    starts = block_start_times(seq)
    events = np.array(list(seq.block_events.values()), dtype=np.int64).reshape(len(starts), -1)
    block_ids = list(seq.block_events.keys())
    out = []
    for axis in range(3):
        column = events[:, 2 + axis]
        times: list[NDArray[np.float64]] = []
        amps: list[NDArray[np.float64]] = []
        for event_id in np.unique(column[column > 0]):
            rows = np.flatnonzero(column == event_id)
            event = getattr(seq.get_block(block_ids[rows[0]]), ("gx", "gy", "gz")[axis])
            t, g = _event_shape(event)
            times.append((starts[rows, None] + t[None, :]).ravel())
            amps.append(np.broadcast_to(g, (rows.size, g.size)).ravel())
        if not times:
            out.append(np.zeros((2, 0)))
            continue
        t_all = np.concatenate(times)
        g_all = np.concatenate(amps) / GAMMA_BAR_HZ_PER_T
        order = np.argsort(t_all, kind="stable")
        out.append(np.stack([t_all[order], g_all[order]]))
    return out


def peak_gradient_and_slew(
    seq: Any, *, waves: list[NDArray[np.float64]] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Peak |G| [T/m] and peak |dG/dt| [T/m/s] per axis (x, y, z) from the sequence's waveforms.

    Slew is the exact slope of the piecewise-linear waveform; coincident time points (a jump) count as a jump over one
    gradient raster time, as the hardware would play it.
    """
    raster = float(seq.system.grad_raster_time)
    peaks = np.zeros(3)
    slews = np.zeros(3)
    for axis, wave in enumerate(gradient_waveforms(seq) if waves is None else waves):
        if wave.shape[1] == 0:
            continue
        t, g = wave
        peaks[axis] = float(np.max(np.abs(g)))
        if t.size > 1:
            dt = np.maximum(np.diff(t), raster)
            slews[axis] = float(np.max(np.abs(np.diff(g)) / dt))
    return peaks, slews


def check_hardware(
    built: BuiltSequence, scanner: Scanner, *, waves: list[NDArray[np.float64]] | None = None
) -> list[Violation]:
    """Gradient amplitude and slew rate per axis against the scanner's limits.

    Parameters
    ----------
    built
        The sequence.
    scanner
        The scanner whose real (not design-margin) limits apply.

    Returns
    -------
    list of Violation
        Empty when every axis is within its limits.
    """
    peaks, slews = peak_gradient_and_slew(built.seq, waves=waves)
    gmax = scanner.gradients.max_grad_t_per_m
    smax = scanner.gradients.max_slew_t_per_m_per_s
    out: list[Violation] = []
    for axis, name in enumerate(AXES):
        if peaks[axis] > gmax * (1 + _TOLERANCE):
            out.append(
                Violation(
                    f"gradient amplitude on {name}",
                    peaks[axis] * 1e3,
                    gmax * 1e3,
                    "mT/m",
                    _AMPLITUDE_HINTS[name],
                )
            )
        if slews[axis] > smax * (1 + _TOLERANCE):
            out.append(Violation(f"slew rate on {name}", slews[axis], smax, "T/m/s", _SLEW_HINTS[name]))
    return out


_AMPLITUDE_HINTS = {
    "x": "use a larger FOV or a lower readout bandwidth",
    "y": "use a larger FOV or a lower phase-encode resolution",
    "z": "use a thicker slice or a longer RF pulse",
}
_SLEW_HINTS = {
    "x": "lower the readout bandwidth or use a larger FOV",
    "y": "use a larger FOV or a lower phase-encode resolution",
    "z": "use a thicker slice or a longer RF pulse",
}


def check(built: BuiltSequence, scanner: Scanner, *, mode: str = "normal") -> list[Violation]:
    """Every hardware and safety check of ``built`` on ``scanner``.

    Gradient amplitude and slew per axis (hardware), RF peak B1 and gradient RMS duty cycle over 10 s (hardware),
    whole-body and head SAR over 10 s and 6 min and PNS (safety, IEC 60601-2-33 limits of ``mode``); see
    :mod:`hifield.sequence.safety`.

    Parameters
    ----------
    built
        The sequence.
    scanner
        The scanner.
    mode
        IEC operating mode: ``"normal"`` or ``"first_level"``.

    Returns
    -------
    list of Violation
        Every violated limit; empty when the sequence may be played.
    """
    from hifield.sequence.safety import assess, violations_from_report

    waves = gradient_waveforms(built.seq)
    report = assess(built, scanner, mode=mode, waves=waves)
    return check_hardware(built, scanner, waves=waves) + violations_from_report(report)


def raise_for_violations(violations: Iterable[Violation]) -> None:
    """Raise one error naming every violation on one line; do nothing for none.

    Raises
    ------
    SafetyLimitError
        When every violation is a safety limit.
    HardwareLimitError
        Otherwise.

    Examples
    --------
    >>> raise_for_violations([])
    >>> raise_for_violations([Violation("SAR", 5.0, 4.0, "W/kg", "lower the flip angle", "safety")])
    Traceback (most recent call last):
    ...
    hifield.errors.SafetyLimitError: refused: SAR is 5 W/kg, above the limit of 4 W/kg: lower the flip angle
    """
    items = list(violations)
    if not items:
        return
    message = "refused: " + "; ".join(str(v) for v in items)
    if all(v.kind == "safety" for v in items):
        raise SafetyLimitError(message)
    raise HardwareLimitError(message)


def check_timing(built: BuiltSequence | Any) -> None:
    """Run pypulseq's timing check (raster alignment, dead and ringdown times); raise on any error.

    Parameters
    ----------
    built
        A :class:`BuiltSequence` or a ``pypulseq.Sequence``.

    Raises
    ------
    SequenceError
        Naming the first failing blocks and the number of errors.
    """
    seq: Any = getattr(built, "seq", built)
    ok, report = seq.check_timing()
    if ok:
        return
    details = []
    for entry in report[:3]:
        if hasattr(entry, "event"):
            text = (
                f"{entry.event} {getattr(entry, 'field', '')} = {getattr(entry, 'value', '?')} "
                f"({getattr(entry, 'error_type', 'error')} on {getattr(entry, 'raster', '?')})"
            )
        else:
            text = " ".join(str(entry).split())
        details.append(f"block {getattr(entry, 'block', '?')}: {text}")
    raise SequenceError(
        f"pypulseq timing check found {len(report)} error(s) ({'; '.join(details)}); "
        "fix the event timing (raster, dead and ringdown times)"
    )
