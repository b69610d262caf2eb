"""How many isochromats per voxel the ``bloch`` engine needs for a sequence, and the band-limited voxel it uses.

Band-limited voxel (the default, :func:`band_voxel`, :func:`band_isochromats_needed`): isochromats on a regular grid
along one spoiled axis, Kaiser-windowed sinc weights over ``span`` voxels. Their response to a pathway dephased by
``f`` cycles per voxel is a low-pass of cut-off half a cycle (so a pathway spoiled beyond it cancels, as for an
object without detail finer than the phantom grid) that repeats every ``n / span`` cycles; the count keeps every
pathway that still carries signal below that period: ``n = span (p_max m_max + cutoff + h + kmax)`` with ``p_max``
the intervals a pathway survives (``ln(1000) T2 / interval``, at most the sequence's number of intervals) and
``m_max`` the largest dephasing per interval. It is chosen per tissue (CSF needs more than white matter).

Box voxel (``voxel_shape="box"``, :func:`isochromats_needed`): isochromats spread over a voxel on a regular grid
(the rank-1 lattice of :func:`~hifield.sim.engines.bloch_isochromats.lattice_points`) cancel a coherence pathway
dephased by ``k`` whole cycles across the voxel exactly unless ``k`` is a multiple of their number ``n`` (but not a
pathway of a non-integer number of cycles: a box is a piecewise-constant object, whose edges return signal).
A sequence that adds ``c`` cycles per voxel between RF pulses (its spoiler and readout moments) creates pathways
of ``m c`` cycles after ``m`` intervals, and
pathways live about ``T2 / interval`` intervals. With too few isochromats the high-order pathways alias back onto
the echo: spoiled gradient echo with 64 isochromats is off by tens of percent for CSF-like T2 (see
``tests/sim/test_bloch_isochromats.py``). The rule used here,

    n = next power of two of  PATHWAY_FACTOR * c * T2 / interval,   clipped to [MIN_ISOCHROMATS, MAX_ISOCHROMATS],

was set from single-voxel runs against EPG (1 cycle per 10 ms TR: 32 isochromats are within 0.2 % for T2 = 50 ms,
64 within 0.1 % for T2 = 100 ms, 512 exact for T2 = 2 s). Balanced sequences (no net moment) need only the
minimum. The T2 used is the largest among the phantom's tissues that hold at least :data:`MIN_TISSUE_FRACTION` of
its proton density, capped at :data:`MAX_T2_S`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hifield.sim.engines.bloch_isochromats import BandVoxel
from hifield.sim.engines.bloch_program import OP_RF, Program

MIN_ISOCHROMATS: int = 64
"""Fewest isochromats per voxel chosen automatically."""
MAX_ISOCHROMATS: int = 1024
"""Most isochromats per voxel chosen automatically (the cost grows linearly with the count)."""
PATHWAY_FACTOR: float = 6.0
"""Isochromats per (cycle per interval x T2 / interval): see the module docstring."""
MIN_TISSUE_FRACTION: float = 0.02
"""Tissues with less of the phantom's proton density than this do not set the T2 of the rule."""
MAX_T2_S: float = 2.0
"""T2 above this [s] counts as this (CSF; pathways older than a few seconds carry little signal)."""


MAX_BAND_ISOCHROMATS: int = 16384
"""Most isochromats per voxel chosen automatically for a band-limited voxel."""
PATHWAY_DECADES: float = 3.0
"""A pathway older than ``ln(10^PATHWAY_DECADES) T2`` has decayed below ``10^-PATHWAY_DECADES``: the band-limited
rule keeps every younger one from aliasing back onto the echo."""
MIN_HALF_TRANSITION: float = 0.125
"""Narrowest half transition band of a band-limited voxel [cycles per voxel] (its span is at most ~22 voxels)."""
MAX_HALF_TRANSITION: float = 0.5
"""Widest half transition band [cycles per voxel] (its span is at least ~5.5 voxels)."""
DEFAULT_HALF_TRANSITION: float = 0.25
"""Half transition band when the spoiling is too weak to clear the band anyway (pathways then keep some signal,
as they would from an object without detail finer than the grid)."""


class IsochromatWarning(UserWarning):
    """The isochromat count asked for is below what the sequence needs for an accurate result."""


@dataclass(frozen=True)
class IsochromatNeed:
    """What a sequence needs: ``n_isochromats`` and the figures it was derived from."""

    n_isochromats: int
    """Isochromats per voxel the rule asks for."""
    cycles_per_interval: float
    """Largest dephasing between consecutive RF pulses, in cycles across one voxel (any axis)."""
    interval_s: float
    """Median time between consecutive RF pulses [s]."""
    t2_s: float
    """T2 used by the rule [s]."""


def interval_moments_cycles(program: Program, voxel_m: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Net gradient moment between consecutive RF pulses in cycles across one voxel ``(n_intervals, 3)`` (z, y, x),
    and the interval durations [s]."""
    is_rf = program.op == OP_RF
    rf_index = np.flatnonzero(is_rf)
    if rf_index.size < 2:
        return np.zeros((0, 3)), np.zeros(0)
    area = np.where(is_rf[:, None], 0.0, program.area)  # the RF pulses' own (slice-select) moments are refocused
    cumulative = np.concatenate([np.zeros((1, 3)), np.cumsum(area, axis=0)])
    times = np.concatenate([[0.0], np.cumsum(program.dt)])
    moments = cumulative[rf_index[1:]] - cumulative[rf_index[:-1] + 1]  # [rad/m]
    cycles = np.abs(moments) * np.asarray(voxel_m, dtype=np.float64)[None, :] / (2.0 * math.pi)
    return cycles, np.diff(times[rf_index])


def isochromats_needed(program: Program, voxel_m: Sequence[float], t2_s: float) -> IsochromatNeed:
    """Isochromats per voxel for ``program`` on voxels of ``voxel_m`` (z, y, x) [m] (0 along an axis that is not
    spread) and tissue ``t2_s`` [s] (see the module docstring).

    Examples
    --------
    A single RF pulse: nothing to dephase, the minimum.

    >>> from hifield.sim.engines.bloch_program import compile_sequence
    >>> import pypulseq as pp
    >>> seq = pp.Sequence()
    >>> seq.add_block(pp.make_block_pulse(0.1, duration=1e-4))
    >>> seq.add_block(pp.make_adc(8, dwell=1e-5))
    >>> isochromats_needed(compile_sequence(seq), (0.0, 1e-3, 1e-3), 0.1).n_isochromats
    64
    """
    cycles, intervals = interval_moments_cycles(program, voxel_m)
    if intervals.size == 0:
        return IsochromatNeed(MIN_ISOCHROMATS, 0.0, 0.0, t2_s)
    per_interval = float(np.max(cycles)) if cycles.size else 0.0
    interval = float(np.median(intervals))
    t2 = min(float(t2_s), MAX_T2_S)
    if per_interval < 0.05 or interval <= 0:  # balanced: no pathway is dephased on purpose
        return IsochromatNeed(MIN_ISOCHROMATS, per_interval, interval, t2)
    raw = PATHWAY_FACTOR * max(per_interval, 1.0) * t2 / interval
    n = 1 << max(0, math.ceil(math.log2(max(raw, 1.0))))
    return IsochromatNeed(int(min(max(n, MIN_ISOCHROMATS), MAX_ISOCHROMATS)), per_interval, interval, t2)


def axis_moments_cycles(program: Program, voxel_m: Sequence[float]) -> tuple[np.ndarray, int]:
    """Typical dephasing per interval between RF pulses along each axis ``(3,)`` (z, y, x) [cycles per voxel]: the
    lower quartile of the intervals that dephase that axis by more than 0.05 cycles (0 when none does), and the
    number of intervals."""
    cycles, intervals = interval_moments_cycles(program, voxel_m)
    typical = np.zeros(3)
    for axis in range(3):
        moving = cycles[:, axis][cycles[:, axis] > 0.05] if cycles.size else np.zeros(0)
        if moving.size:
            typical[axis] = float(np.quantile(moving, 0.25))
    return typical, int(intervals.size)


def band_voxel(program: Program, voxel_m: Sequence[float], kmax_cycles: Sequence[float]) -> BandVoxel:
    """The band-limited voxel for ``program`` on voxels of ``voxel_m`` (z, y, x) [m] (0: not spread) whose encoding
    reaches ``kmax_cycles`` per voxel along each axis (0.5 on the protocol's own grid, less on a finer phantom).

    It spreads along one axis the sequence dephases at every interval between RF pulses: every coherence pathway
    then has its own dephasing along that axis, and a single axis keeps the isochromats a regular grid (two spread
    axes on a lattice alias pathways back whose dephasings along the two axes are commensurate, as a FLASH's readout
    and slice spoilers are). Of the axes whose dephasing clears the band, the one needing the fewest isochromats
    (span times largest dephasing per interval) is taken; when none clears it, the most dephased one. Its
    transition band sits between the
    encoding and the first spoiled pathway: half width ``h = min(cutoff - kmax, m - kmax - cutoff)`` for a typical
    dephasing of ``m`` cycles per interval (:func:`axis_moments_cycles`), clipped to
    [:data:`MIN_HALF_TRANSITION`, :data:`MAX_HALF_TRANSITION`] (and :data:`DEFAULT_HALF_TRANSITION` when the spoiling
    cannot clear the band); the span follows from ``h`` (:class:`~hifield.sim.engines.bloch_isochromats.BandVoxel`).

    Examples
    --------
    >>> from hifield.sim.engines.bloch_program import compile_sequence
    >>> import pypulseq as pp
    >>> seq = pp.Sequence()
    >>> for _ in range(3):
    ...     seq.add_block(pp.make_block_pulse(0.1, duration=1e-4))
    ...     seq.add_block(pp.make_adc(8, dwell=1e-5))
    ...     seq.add_block(pp.make_trapezoid("x", area=1250.0, duration=2e-3))
    >>> band = band_voxel(compile_sequence(seq), (0.0, 1e-3, 1e-3), (0.0, 0.25, 0.25))
    >>> band.axes, round(band.span, 1)
    ((False, False, True), 10.9)
    """
    typical, _ = axis_moments_cycles(program, voxel_m)
    typical = np.where(np.asarray(voxel_m, dtype=np.float64) > 0, typical, 0.0)
    cycles, _ = interval_moments_cycles(program, voxel_m)
    reference = BandVoxel(axes=(False, False, False))
    width = math.sqrt(1.0 + (reference.beta / math.pi) ** 2)  # span x half transition
    candidates = []  # (clears the band, cost, axis, half transition)
    for axis in range(3):
        if typical[axis] <= 0:
            continue
        kmax = float(kmax_cycles[axis])
        room = float(typical[axis]) - kmax - reference.cutoff  # to the first spoiled pathway
        h = min(reference.cutoff - kmax, room) if reference.cutoff - kmax > 0 else room
        clears = room >= MIN_HALF_TRANSITION
        h = min(max(h if clears else DEFAULT_HALF_TRANSITION, MIN_HALF_TRANSITION), MAX_HALF_TRANSITION)
        cost = width / h * float(np.max(cycles[:, axis]))  # isochromats per pathway (see band_isochromats_needed)
        candidates.append((not clears, cost if clears else -float(typical[axis]), axis, h))
    if not candidates:
        return BandVoxel(axes=(False, False, False))
    _, _, best, h = min(candidates)
    axes = (best == 0, best == 1, best == 2)
    return BandVoxel(axes=axes, span=width / h, cutoff=reference.cutoff, beta=reference.beta)


def band_isochromats_needed(
    program: Program, voxel_m: Sequence[float], band: BandVoxel, t2_s: float, kmax_cycles: Sequence[float]
) -> IsochromatNeed:
    """Isochromats per voxel of a band-limited voxel ``band`` for tissue ``t2_s`` [s].

    The response of ``n`` isochromats over ``span`` voxels repeats every ``n / span`` cycles per voxel, so a pathway
    dephased by ``m`` cycles per interval for ``p`` intervals aliases back onto the echo once ``p m`` reaches that
    period. Pathways live at most ``ln(10^PATHWAY_DECADES) T2 / interval`` intervals (they decay by T2 at every
    interval they spend transverse) and at most as many intervals as the sequence has, so

        n = span (p_max m_max + cutoff + h + kmax),   rounded up to a multiple of 64, at least
        :data:`MIN_ISOCHROMATS`, at most :data:`MAX_BAND_ISOCHROMATS`.
    """
    _, n_intervals = axis_moments_cycles(program, voxel_m)
    cycles, intervals = interval_moments_cycles(program, voxel_m)
    interval = float(np.median(intervals)) if intervals.size else 0.0
    spread = [a for a in range(3) if band.axes[a]]
    t2 = min(float(t2_s), MAX_T2_S)
    if not spread or interval <= 0:
        return IsochromatNeed(MIN_ISOCHROMATS, 0.0, interval, t2)
    m_max = max(float(np.max(cycles[:, a])) for a in spread)
    lifetime = PATHWAY_DECADES * math.log(10.0) * t2 / interval
    pathways = min(lifetime, float(n_intervals))
    kmax = max(float(kmax_cycles[a]) for a in spread)
    period = pathways * m_max + band.cutoff + band.half_transition + kmax
    n = 64 * math.ceil(band.span * period / 64)
    return IsochromatNeed(int(min(max(n, MIN_ISOCHROMATS), MAX_BAND_ISOCHROMATS)), m_max, interval, t2)


def phantom_t2_s(tissues: Sequence[object], fractions: np.ndarray) -> float:
    """Largest T2 [s] among tissues holding at least :data:`MIN_TISSUE_FRACTION` of the proton density."""
    pd = np.array([float(getattr(t, "pd", 0.0)) * float(np.sum(f)) for t, f in zip(tissues, fractions, strict=True)])
    total = float(pd.sum())
    if total <= 0:
        return 0.0
    t2 = [float(getattr(t, "t2_s", 0.0)) for t, w in zip(tissues, pd, strict=True) if w >= MIN_TISSUE_FRACTION * total]
    return max(t2, default=0.0)


def resolve_isochromats(requested: int | None, need: IsochromatNeed) -> int:
    """The count to simulate with: ``requested``, or the need when None. Warns (:class:`IsochromatWarning`) when
    ``requested`` is below the need."""
    if requested is None:
        return need.n_isochromats
    if requested < need.n_isochromats:
        warnings.warn(
            f"n_isochromats = {requested} is below the {need.n_isochromats} this sequence needs "
            f"({need.cycles_per_interval:.2g} cycles per voxel every {need.interval_s * 1e3:.3g} ms, T2 "
            f"{need.t2_s * 1e3:.0f} ms): spoiled echoes may be off by several percent; leave it unset to choose it",
            IsochromatWarning,
            stacklevel=3,
        )
    return int(requested)


__all__ = [
    "MAX_BAND_ISOCHROMATS",
    "MAX_ISOCHROMATS",
    "MIN_ISOCHROMATS",
    "IsochromatNeed",
    "IsochromatWarning",
    "axis_moments_cycles",
    "band_isochromats_needed",
    "band_voxel",
    "interval_moments_cycles",
    "isochromats_needed",
    "phantom_t2_s",
    "resolve_isochromats",
]
