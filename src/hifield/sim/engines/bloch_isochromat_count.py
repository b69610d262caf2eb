"""How many isochromats per voxel the ``bloch`` engine needs for a sequence: chosen from its spoiler moments and T2.

Isochromats spread over a voxel on a regular grid (the rank-1 lattice of
:func:`~hifield.sim.engines.bloch_isochromats.lattice_points`) cancel a coherence pathway dephased by ``k`` whole
cycles across the voxel exactly unless ``k`` is a multiple of their number ``n``.
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
    "MAX_ISOCHROMATS",
    "MIN_ISOCHROMATS",
    "IsochromatNeed",
    "IsochromatWarning",
    "interval_moments_cycles",
    "isochromats_needed",
    "phantom_t2_s",
    "resolve_isochromats",
]
