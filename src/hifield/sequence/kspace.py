"""k-space position of every readout sample of a pypulseq sequence, integrated exactly from its gradient events."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.sequence.checks import _event_shape, block_start_times


def _segments(seq: Any, axis: int) -> tuple[NDArray[np.float64], ...]:
    """Linear pieces of one axis's gradient: start, end [s], amplitude at start and end [Hz/m], sorted by start.

    Every gradient event is expanded once from the event library and placed at each block that plays it; pieces
    never span two events, so the integral does not depend on how events meet at block edges.
    """
    starts = block_start_times(seq)
    block_ids = list(seq.block_events.keys())
    column = np.array([events[2 + axis] for events in seq.block_events.values()], dtype=np.int64)
    t0s, t1s, g0s, g1s = [], [], [], []
    for event_id in np.unique(column[column > 0]):
        rows = np.flatnonzero(column == event_id)
        event = getattr(seq.get_block(block_ids[rows[0]]), ("gx", "gy", "gz")[axis])
        t, g = _event_shape(event)
        keep = np.diff(t) > 0
        if not keep.any():
            continue
        a, b = t[:-1][keep], t[1:][keep]
        t0s.append((starts[rows, None] + a[None, :]).ravel())
        t1s.append((starts[rows, None] + b[None, :]).ravel())
        g0s.append(np.broadcast_to(g[:-1][keep], (rows.size, int(keep.sum()))).ravel())
        g1s.append(np.broadcast_to(g[1:][keep], (rows.size, int(keep.sum()))).ravel())
    if not t0s:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    t0, t1, g0, g1 = (np.concatenate(x).astype(np.float64) for x in (t0s, t1s, g0s, g1s))
    order = np.argsort(t0, kind="stable")
    return t0[order], t1[order], g0[order], g1[order]


def gradient_moment(seq: Any, times_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Zeroth gradient moment ``(3, n)`` [1/m] from the sequence start to each of ``times_s``, axes (x, y, z) as in
    pypulseq (gradients in Hz/m times seconds).

    Exact for the piecewise-linear gradients of Pulseq (trapezoids and arbitrary/extended shapes, linear between
    their points), with no RF resets: see :func:`adc_kspace` for the trajectory.
    """
    times = np.asarray(times_s, dtype=np.float64)
    out = np.zeros((3, times.size))
    for axis in range(3):
        t0, t1, g0, g1 = _segments(seq, axis)
        if t0.size == 0:
            continue
        area = 0.5 * (g0 + g1) * (t1 - t0)
        before = np.concatenate([[0.0], np.cumsum(area)])  # moment at the start of each piece
        i = np.searchsorted(t0, times, side="right") - 1  # the last piece starting at or before t
        inside = i >= 0
        j = np.where(inside, i, 0)
        dt = np.clip(times - t0[j], 0.0, t1[j] - t0[j])  # a time past the end of its piece takes the whole piece
        slope = (g1[j] - g0[j]) / (t1[j] - t0[j])
        partial = g0[j] * dt + 0.5 * slope * dt * dt
        out[axis] = np.where(inside, before[j] + partial, 0.0)
    return out


def rf_event_times(seq: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centre times [s] of the excitation and of the refocusing pulses, as ``seq.rf_times()`` gives them.

    An RF whose ``use`` is ``"excitation"``, ``"undefined"`` or absent excites; ``"refocusing"`` refocuses; other
    uses (inversion, saturation, preparation) are in neither list. Each distinct RF event is decompressed once,
    instead of once per block as ``rf_times`` does.
    """
    from pypulseq.calc_rf_center import calc_rf_center

    starts = block_start_times(seq)
    block_ids = list(seq.block_events.keys())
    column = np.array([events[1] for events in seq.block_events.values()], dtype=np.int64)
    excitation: list[NDArray[np.float64]] = []
    refocusing: list[NDArray[np.float64]] = []
    for event_id in np.unique(column[column > 0]):
        rows = np.flatnonzero(column == event_id)
        rf = seq.get_block(block_ids[rows[0]]).rf
        use = getattr(rf, "use", "undefined")
        times = starts[rows] + float(rf.delay) + float(calc_rf_center(rf)[0])
        if use in ("excitation", "undefined"):
            excitation.append(times)
        elif use == "refocusing":
            refocusing.append(times)
    return (
        np.sort(np.concatenate(excitation)) if excitation else np.zeros(0),
        np.sort(np.concatenate(refocusing)) if refocusing else np.zeros(0),
    )


_KSPACE: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int], NDArray[np.float64]]] = weakref.WeakKeyDictionary()
"""The last :func:`adc_kspace` of each live sequence object, with the block count it was computed for."""


def adc_kspace(seq: Any) -> NDArray[np.float64]:
    """k-space position ``(3, samples)`` [1/m] of every ADC sample, in acquisition order (read-only; remembered
    per sequence object until it gains or loses blocks, since one simulation asks for it more than once).

    Axes in pypulseq's order (x, y, z), as ``calculate_kspace`` gives them, because this is the pypulseq boundary;
    callers turn it to hifield's ``(z, y, x)`` (``hifield.sim.engines.timeline.readout_kspace`` does).

    The same trajectory as ``pypulseq.Sequence.calculate_kspace()[0]`` (an excitation resets k to 0, a refocusing
    pulse mirrors it about 0; pulse times from :func:`rf_event_times`), integrated exactly from the
    gradient events instead of through scipy's piecewise polynomials over the whole waveform, which costs the
    import of ``scipy.interpolate`` (about 0.4 s) and time for long sequences.
    """
    key = (len(seq.block_events), int(next(reversed(seq.block_events), 0)))
    try:
        cached = _KSPACE.get(seq)
    except TypeError:  # an object that cannot be weakly referenced: no memory
        cached = None
    if cached is not None and cached[0] == key:
        return cached[1]
    k = _adc_kspace(seq)
    k.setflags(write=False)
    try:
        _KSPACE[seq] = (key, k)
    except TypeError:
        pass
    return k


def _adc_kspace(seq: Any) -> NDArray[np.float64]:
    """:func:`adc_kspace`, computed."""
    t_excitation, t_refocusing = rf_event_times(seq)
    t_adc = np.asarray(seq.adc_times()[0], dtype=np.float64)
    events = sorted([(float(t), 0) for t in t_excitation] + [(float(t), 1) for t in t_refocusing])
    event_times = np.array([t for t, _ in events], dtype=np.float64)
    moments = gradient_moment(seq, np.concatenate([event_times, t_adc]))
    at_event, at_adc = moments[:, : event_times.size], moments[:, event_times.size :]
    # offset added to the moment in each period between RF events: an excitation starts k at 0; a refocusing pulse
    # maps k -> -k, i.e. offset -> -2 * moment(t_ref) - offset
    offsets = np.zeros((3, event_times.size + 1))
    offset = np.zeros(3)
    for n, (_, kind) in enumerate(events):
        offset = -at_event[:, n] if kind == 0 else -2.0 * at_event[:, n] - offset
        offsets[:, n + 1] = offset
    period = np.searchsorted(event_times, t_adc, side="right")  # an ADC at an RF time follows that RF
    return at_adc + offsets[:, period]
