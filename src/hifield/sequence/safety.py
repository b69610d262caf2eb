"""Safety and duty-cycle assessment of a sequence: RF peak B1, B1+rms, SAR (10 s, 6 min), gradient RMS, PNS."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.sequence.checks import AXES, Violation, gradient_waveforms, peak_gradient_and_slew
from hifield.sequence.safety_models import (
    BODY_EXPOSED_FRACTION,
    BODY_RADIUS_M,
    HEAD_RADIUS_M,
    PNS_LIMIT_PERCENT,
    SAR_LIMITS,
    PnsCoil,
    check_mode,
    pns_coil_for,
    sar_constant_w_per_kg_per_t2,
)
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence

SHORT_WINDOW_S: float = 10.0
"""Short SAR / gradient-duty averaging window [s]."""
LONG_WINDOW_S: float = 360.0
"""Long SAR averaging window (6 minutes) [s]."""
PNS_LOOKBACK_S: float = 0.02
"""How far back the PNS convolution kernel c / (c + t)^2 is summed [s] (the tail beyond, c / (c + 20 ms), holds
under 2 % of a ramp's weight, and alternating ramps cancel there)."""

HEAD_MASS_FRACTION: float = 5.0 / 75.0
"""Head mass over patient mass, for whole-body SAR from a head-only transmit coil."""

TRANSMIT_COIL: dict[float, str] = {1.5: "body", 3.0: "body", 5.0: "body", 7.0: "head"}
"""Transmit coil per preset field: body coil at 1.5/3/5 T, a head transmit array at 7 T."""


@dataclass(frozen=True)
class RfPulses:
    """The RF pulses of a sequence: start times [s], energy integral of B1^2 [T^2 s] and peak B1 [T] of each."""

    times_s: NDArray[np.float64]
    energy_t2_s: NDArray[np.float64]
    peak_t: NDArray[np.float64]


def rf_energy_and_peak(rf: Any) -> tuple[float, float]:
    """Integral of |B1(t)|^2 [T^2 s] and peak |B1| [T] of one pypulseq RF event (the one definition SAR uses).

    A waveform on a uniform raster is summed sample by sample (each sample holds for one raster step); any other is
    integrated by the trapezoid rule.
    """
    b1 = np.abs(np.asarray(rf.signal)) / GAMMA_BAR_HZ_PER_T
    t = np.asarray(rf.t, dtype=np.float64)
    steps = np.diff(t)
    if b1.size > 2 and np.allclose(steps, steps[0]):
        energy = float(np.sum(b1**2) * steps[0])
    elif t.size > 1:
        energy = float(np.trapezoid(b1**2, t))
    else:
        energy = 0.0
    return energy, float(b1.max(initial=0.0))


def rf_pulses(seq: Any) -> RfPulses:
    """Every RF pulse's start time, integral of |B1(t)|^2 and peak |B1| from the pypulseq blocks."""
    durations = np.fromiter(seq.block_durations.values(), dtype=np.float64)
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    cache: dict[int, tuple[float, float]] = {}
    times, energies, peaks = [], [], []
    for index, (block_id, events) in enumerate(seq.block_events.items()):
        rf_id = int(events[1])
        if rf_id == 0:
            continue
        if rf_id not in cache:
            cache[rf_id] = rf_energy_and_peak(seq.get_block(block_id).rf)
        energy, peak = cache[rf_id]
        times.append(starts[index])
        energies.append(energy)
        peaks.append(peak)
    return RfPulses(np.asarray(times), np.asarray(energies), np.asarray(peaks))


def windowed_max_mean(
    times_s: NDArray[np.float64], amounts: NDArray[np.float64], duration_s: float, window_s: float
) -> float:
    """Largest mean rate of impulses ``amounts`` at ``times_s`` over any ``window_s``, the sequence repeating.

    A sequence shorter than the window is assumed to repeat back to back (as a scanner predicts SAR for a protocol),
    so its windowed mean is its overall mean.

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 2.0, 3.0]); e = np.array([1.0, 1.0, 5.0, 1.0])
    >>> windowed_max_mean(t, e, 4.0, 10.0)  # shorter than the window: overall mean
    2.0
    >>> windowed_max_mean(np.array([0.0, 5.0, 20.0]), np.array([1.0, 1.0, 1.0]), 30.0, 10.0)
    0.2
    """
    if amounts.size == 0 or duration_s <= 0:
        return 0.0
    if duration_s <= window_s:
        return float(amounts.sum() / duration_s)
    t2 = np.concatenate([times_s, times_s + duration_s])
    a2 = np.concatenate([amounts, amounts])
    cumulative = np.concatenate([[0.0], np.cumsum(a2)])
    ends = np.searchsorted(t2, times_s + window_s, side="left")
    starts = np.arange(times_s.size)
    return float(np.max(cumulative[ends] - cumulative[starts]) / window_s)


def gradient_rms_window(
    seq: Any,
    duration_s: float,
    window_s: float = SHORT_WINDOW_S,
    *,
    waves: list[NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Largest RMS gradient per axis [T/m] over any ``window_s`` (sequence repeating), exact for the linear segments."""
    out = np.zeros(3)
    for axis, (t, g) in enumerate(gradient_waveforms(seq) if waves is None else waves):
        if t.size < 2:
            continue
        dt = np.diff(t)
        energy = dt * (g[:-1] ** 2 + g[:-1] * g[1:] + g[1:] ** 2) / 3.0  # integral of G^2 over each linear segment
        out[axis] = np.sqrt(windowed_max_mean(t[:-1], energy, duration_s, window_s))
    return out


def _slew_segments(t: NDArray[np.float64], g: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    dt = np.diff(t)
    keep = dt > 1e-12
    t0, t1 = t[:-1][keep], t[1:][keep]
    slew = np.diff(g)[keep] / dt[keep]
    active = np.abs(slew) > 1e-9
    return t0[active], t1[active], slew[active]


def pns_percent(
    seq: Any, coil: PnsCoil, *, waves: list[NDArray[np.float64]] | None = None
) -> tuple[float, NDArray[np.float64]]:
    """Peak PNS [% of threshold] of the GE-style convolution model, combined over axes, and per-axis peaks.

    PNS(t) = 100 / SR_min * integral SR(tau) c / (c + t - tau)^2 dtau per axis (continuous form of TOPPE ``pns.m``),
    combined as sqrt(sum of squares). For one linear ramp of duration T it reaches 100 % exactly at
    SR = SR_min (1 + c / T), the IEC hyperbolic strength-duration law. Evaluated at every slew change of every axis.
    """
    c = coil.chronaxie_s
    sr_min = coil.min_slew_t_per_m_per_s
    waves = gradient_waveforms(seq) if waves is None else waves
    raster = float(seq.system.grad_raster_time)
    t_end = max((float(w[0, -1]) for w in waves if w.shape[1]), default=0.0)
    if t_end <= 0:
        return 0.0, np.zeros(3)
    if t_end / raster <= _PNS_GRID_MAX_POINTS:
        per_axis = _pns_on_raster_grid(waves, c, raster, t_end)
    else:
        per_axis = _pns_at_slew_changes(waves, c)
    per_axis *= 100.0 / sr_min
    combined = np.sqrt(np.sum(per_axis**2, axis=0))
    return float(combined.max()), np.max(np.abs(per_axis), axis=1)


_PNS_GRID_MAX_POINTS: int = 4_000_000
"""Sequences up to this many gradient raster steps are evaluated on the raster grid (FFT convolution); longer ones
at their slew changes only (fast for trapezoids, slow for long arbitrary waveforms)."""


def _pns_on_raster_grid(waves: list[NDArray[np.float64]], c: float, raster: float, t_end: float) -> NDArray[np.float64]:
    """Sum of SR(tau) c / (c + t - tau)^2 over the past, at the end of every raster step (SR constant per step)."""
    n = math.ceil(t_end / raster - 1e-9)
    edges = np.arange(n + 1) * raster
    m = np.arange(round(PNS_LOOKBACK_S / raster) + 1)
    # exact weight of a constant slew over step i - m seen at the end of step i
    kernel = c / (c + m * raster) - c / (c + (m + 1) * raster)
    out = np.zeros((3, n))
    for axis, (t, g) in enumerate(waves):
        if t.size < 2:
            continue
        g_edges = np.interp(edges, t, g)
        slew = np.diff(g_edges) / raster
        out[axis] = _overlap_add(slew, kernel)[:n]
    return out


def _overlap_add(signal: NDArray[np.float64], kernel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Full linear convolution of a long ``signal`` with a short ``kernel`` by FFT overlap-add (numpy only).

    Equal to ``np.convolve(signal, kernel)`` to float round-off; used instead of ``scipy.signal.oaconvolve``,
    whose import costs about 0.5 s of every ``hifield`` command that checks a sequence.
    """
    m = kernel.size
    out = np.zeros(signal.size + m - 1)
    if signal.size == 0 or m == 0:
        return out
    n_fft = 1 << max(math.ceil(math.log2(8 * m)), 12)
    block = n_fft - m + 1
    kernel_f = np.fft.rfft(kernel, n_fft)
    for start in range(0, signal.size, block):
        piece = signal[start : start + block]
        y = np.fft.irfft(np.fft.rfft(piece, n_fft) * kernel_f, n_fft)[: piece.size + m - 1]
        out[start : start + y.size] += y
    return out


def _pns_at_slew_changes(waves: list[NDArray[np.float64]], c: float) -> NDArray[np.float64]:
    """The same sum evaluated at every slew change of every axis (exact for piecewise-linear waveforms)."""
    segments = [_slew_segments(t, g) for t, g in waves]
    ends = [s[1] for s in segments if s[1].size]
    if not ends:
        return np.zeros((3, 1))
    # a ramp's contribution peaks where it ends, so evaluate at every slew change of every axis
    eval_t = np.unique(np.concatenate(ends))
    per_axis = np.zeros((3, eval_t.size))
    for axis, (t0, t1, slew) in enumerate(segments):
        if t0.size == 0:
            continue
        hi = np.searchsorted(t0, eval_t, side="left")  # segments starting before t
        lo = np.searchsorted(t1, eval_t - PNS_LOOKBACK_S, side="right")
        width = int(np.max(hi - lo, initial=0))
        if width == 0:
            continue
        chunk = max(1, 2_000_000 // width)
        for start in range(0, eval_t.size, chunk):
            sl = slice(start, start + chunk)
            idx = lo[sl, None] + np.arange(width)[None, :]
            valid = idx < hi[sl, None]
            idx = np.where(valid, idx, 0)
            te = eval_t[sl, None]
            end = np.minimum(t1[idx], te)
            contrib = slew[idx] * (c / (c + te - end) - c / (c + te - t0[idx]))
            per_axis[axis, sl] = np.sum(np.where(valid, contrib, 0.0), axis=1)
    return per_axis


@dataclass(frozen=True)
class SafetyReport:
    """Every checked quantity of a sequence on a scanner, with its limit."""

    scanner_name: str
    mode: str
    duration_s: float
    peak_gradient_t_per_m: NDArray[np.float64]
    """Peak |G| per axis (x, y, z) [T/m]."""
    peak_slew_t_per_m_per_s: NDArray[np.float64]
    """Peak |dG/dt| per axis [T/m/s]."""
    gradient_rms_10s_t_per_m: NDArray[np.float64]
    """Largest 10 s RMS gradient per axis [T/m]."""
    b1_peak_t: float
    """Peak RF amplitude [T]."""
    b1_rms_t: float
    """B1+rms over the whole sequence [T]."""
    b1_rms_10s_t: float
    """Largest B1+rms over any 10 s [T]."""
    sar_head_10s_w_per_kg: float
    sar_head_6min_w_per_kg: float
    sar_whole_body_10s_w_per_kg: float
    sar_whole_body_6min_w_per_kg: float
    pns_percent: float
    """Peak PNS, all axes combined [% of threshold]."""
    rf_peak_power_w: float
    """RF amplifier power at the peak B1 (power scales with B1^2, full power at the coil's peak B1) [W]."""
    limits: dict[str, float] = field(default_factory=dict)
    """The limits each quantity was checked against (same units as the fields)."""


def assess(
    built: BuiltSequence | Any,
    scanner: Scanner,
    *,
    mode: str = "normal",
    waves: list[NDArray[np.float64]] | None = None,
) -> SafetyReport:
    """Compute every safety and duty-cycle quantity of a sequence on ``scanner`` in operating ``mode``.

    Parameters
    ----------
    built
        A :class:`BuiltSequence` or a ``pypulseq.Sequence``.
    scanner
        The scanner (its B0 sets the SAR constant and the PNS coil model).
    mode
        IEC operating mode, ``"normal"`` or ``"first_level"``.
    waves
        The sequence's gradient waveforms if already computed (:func:`~hifield.sequence.checks.gradient_waveforms`).
    """
    check_mode(mode)
    seq: Any = getattr(built, "seq", built)
    duration = float(sum(seq.block_durations.values()))
    if waves is None:
        waves = gradient_waveforms(seq)
    peaks, slews = peak_gradient_and_slew(seq, waves=waves)
    pulses = rf_pulses(seq)
    energy_total = float(pulses.energy_t2_s.sum())
    b1_rms = float(np.sqrt(energy_total / duration)) if duration > 0 else 0.0
    b1_rms_10s = float(np.sqrt(windowed_max_mean(pulses.times_s, pulses.energy_t2_s, duration, SHORT_WINDOW_S)))
    b1_rms_6min = float(np.sqrt(windowed_max_mean(pulses.times_s, pulses.energy_t2_s, duration, LONG_WINDOW_S)))
    k_head = sar_constant_w_per_kg_per_t2(scanner.b0_t, HEAD_RADIUS_M)
    if transmit_coil(scanner) == "head":
        k_body = k_head * HEAD_MASS_FRACTION
    else:
        k_body = sar_constant_w_per_kg_per_t2(scanner.b0_t, BODY_RADIUS_M) * BODY_EXPOSED_FRACTION
    pns, _ = pns_percent(seq, pns_coil_for(scanner.b0_t), waves=waves)
    b1_peak = float(pulses.peak_t.max(initial=0.0))
    sar = SAR_LIMITS[mode]
    limits = {
        "gradient_t_per_m": scanner.gradients.max_grad_t_per_m,
        "slew_t_per_m_per_s": scanner.gradients.max_slew_t_per_m_per_s,
        "gradient_rms_t_per_m": scanner.gradients.max_rms_grad_t_per_m,
        "b1_peak_t": scanner.rf.max_b1_t,
        "rf_power_w": scanner.rf.amplifier_power_w,
        "sar_head_6min_w_per_kg": sar.head_w_per_kg,
        "sar_head_10s_w_per_kg": sar.head_w_per_kg * sar.short_term_factor,
        "sar_whole_body_6min_w_per_kg": sar.whole_body_w_per_kg,
        "sar_whole_body_10s_w_per_kg": sar.whole_body_w_per_kg * sar.short_term_factor,
        "pns_percent": PNS_LIMIT_PERCENT[mode],
    }
    return SafetyReport(
        scanner_name=scanner.name,
        mode=mode,
        duration_s=duration,
        peak_gradient_t_per_m=peaks,
        peak_slew_t_per_m_per_s=slews,
        gradient_rms_10s_t_per_m=gradient_rms_window(seq, duration, waves=waves),
        b1_peak_t=b1_peak,
        b1_rms_t=b1_rms,
        b1_rms_10s_t=b1_rms_10s,
        sar_head_10s_w_per_kg=k_head * b1_rms_10s**2,
        sar_head_6min_w_per_kg=k_head * b1_rms_6min**2,
        sar_whole_body_10s_w_per_kg=k_body * b1_rms_10s**2,
        sar_whole_body_6min_w_per_kg=k_body * b1_rms_6min**2,
        pns_percent=pns,
        rf_peak_power_w=scanner.rf.amplifier_power_w * (b1_peak / scanner.rf.max_b1_t) ** 2,
        limits=limits,
    )


def transmit_coil(scanner: Scanner) -> str:
    """``"body"`` or ``"head"``: the transmit coil assumed for the scanner's field (nearest preset)."""
    key = min(TRANSMIT_COIL, key=lambda b: abs(b - scanner.b0_t))
    return TRANSMIT_COIL[key]


_TOL = 1e-6


def violations_from_report(report: SafetyReport) -> list[Violation]:
    """The safety and duty-cycle limits a :class:`SafetyReport` exceeds (gradient amplitude/slew are checked apart)."""
    lim = report.limits
    out: list[Violation] = []

    def over(value: float, limit: float) -> bool:
        return value > limit * (1 + _TOL)

    if over(report.b1_peak_t, lim["b1_peak_t"]):
        out.append(
            Violation(
                "RF peak B1",
                report.b1_peak_t * 1e6,
                lim["b1_peak_t"] * 1e6,
                "uT",
                "lower the flip angle or lengthen the RF pulse",
            )
        )
    for axis, name in enumerate(AXES):
        rms = report.gradient_rms_10s_t_per_m[axis]
        if over(rms, lim["gradient_rms_t_per_m"]):
            out.append(
                Violation(
                    f"gradient RMS (duty cycle) on {name} over 10 s",
                    rms * 1e3,
                    lim["gradient_rms_t_per_m"] * 1e3,
                    "mT/m",
                    "use a longer TR, a lower bandwidth or a larger FOV",
                )
            )
    sar_hint = "use a longer TR, a lower flip angle, fewer slices or a longer RF pulse"
    for label, value, key in (
        ("whole-body SAR (6 min)", report.sar_whole_body_6min_w_per_kg, "sar_whole_body_6min_w_per_kg"),
        ("whole-body SAR (10 s)", report.sar_whole_body_10s_w_per_kg, "sar_whole_body_10s_w_per_kg"),
        ("head SAR (6 min)", report.sar_head_6min_w_per_kg, "sar_head_6min_w_per_kg"),
        ("head SAR (10 s)", report.sar_head_10s_w_per_kg, "sar_head_10s_w_per_kg"),
    ):
        if over(value, lim[key]):
            out.append(Violation(f"{label} in {report.mode} mode", value, lim[key], "W/kg", sar_hint, "safety"))
    if over(report.pns_percent, lim["pns_percent"]):
        out.append(
            Violation(
                f"PNS in {report.mode} mode",
                report.pns_percent,
                lim["pns_percent"],
                "% of threshold",
                "lower the slew rate (gradient_mode normal), the bandwidth or the resolution",
                "safety",
            )
        )
    return out


def check_safety(built: BuiltSequence | Any, scanner: Scanner, *, mode: str = "normal") -> list[Violation]:
    """RF peak, gradient duty cycle, SAR and PNS violations of a sequence on ``scanner`` in operating ``mode``."""
    return violations_from_report(assess(built, scanner, mode=mode))


def report_rows(report: SafetyReport) -> list[dict[str, Any]]:
    """The report as rows ``{"quantity", "value", "limit", "unit", "ok"}`` in display units, for tables and JSON.

    Gradient amplitude and slew rows are per axis; SAR rows per averaging window; ``limit`` is ``None`` where no
    limit applies (B1+rms, scan time).
    """
    lim = report.limits
    rows: list[dict[str, Any]] = []

    def row(quantity: str, value: float, limit: float | None, unit: str) -> None:
        ok = limit is None or value <= limit * (1 + _TOL)
        rows.append({"quantity": quantity, "value": float(value), "limit": limit, "unit": unit, "ok": bool(ok)})

    for axis, name in enumerate(AXES):
        row(f"peak gradient {name}", report.peak_gradient_t_per_m[axis] * 1e3, lim["gradient_t_per_m"] * 1e3, "mT/m")
    for axis, name in enumerate(AXES):
        row(f"peak slew {name}", report.peak_slew_t_per_m_per_s[axis], lim["slew_t_per_m_per_s"], "T/m/s")
    for axis, name in enumerate(AXES):
        row(
            f"gradient RMS 10 s {name}",
            report.gradient_rms_10s_t_per_m[axis] * 1e3,
            lim["gradient_rms_t_per_m"] * 1e3,
            "mT/m",
        )
    row("RF peak B1", report.b1_peak_t * 1e6, lim["b1_peak_t"] * 1e6, "uT")
    row("RF peak power", report.rf_peak_power_w / 1e3, lim["rf_power_w"] / 1e3, "kW")
    row("B1+rms (sequence)", report.b1_rms_t * 1e6, None, "uT")
    row("B1+rms (10 s)", report.b1_rms_10s_t * 1e6, None, "uT")
    row("whole-body SAR 10 s", report.sar_whole_body_10s_w_per_kg, lim["sar_whole_body_10s_w_per_kg"], "W/kg")
    row("whole-body SAR 6 min", report.sar_whole_body_6min_w_per_kg, lim["sar_whole_body_6min_w_per_kg"], "W/kg")
    row("head SAR 10 s", report.sar_head_10s_w_per_kg, lim["sar_head_10s_w_per_kg"], "W/kg")
    row("head SAR 6 min", report.sar_head_6min_w_per_kg, lim["sar_head_6min_w_per_kg"], "W/kg")
    row("PNS", report.pns_percent, lim["pns_percent"], "%")
    row("scan time", report.duration_s, None, "s")
    return rows
