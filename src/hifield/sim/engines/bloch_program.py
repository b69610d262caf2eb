"""Compile a pypulseq ``Sequence`` into the step program the Bloch kernel plays: RF on its raster, exact gradient areas.

The program is a list of *operations* over time:

* ``OP_FREE``: free precession and relaxation over ``dt`` with the exact gradient area ``∫G dt`` of the
  piecewise-linear waveforms between the two event times (exact for any gradient shape: without RF the phase
  depends only on the area); optionally the ADC samples at its end.
* ``OP_REPEAT``: the same ``dt`` and gradient area as the previous free step (flat-top ADC sampling); the kernel
  reuses that rotation instead of recomputing it.
* ``OP_RF``: one RF event, played as piecewise-constant samples on its own raster (``rf.t``) with the gradient area
  of each sample interval. Identical RF events (same shape, frequency offset, gradients, timing) differing only in
  their phase offset share one *pulse* entry: the kernel computes each spin's affine map ``M -> A M + b`` of the
  pulse once and re-applies it, rotated by the phase offset, for every repetition (exact: rotations about z commute
  with the z precession and relaxation).

Conventions (fixing one handedness, see the engine's module docstring): the rotation rates are
``Ω = γ (B1x, B1y, Bz)`` with ``dM/dt = M × Ω`` (protons precess clockwise, transverse ``m = Mx + i My`` evolves
as ``exp(-i ∫Ωz dt)``, so k-space encoding is ``exp(-i 2π k·r)`` with pypulseq's ``k = ∫G dt``). A pulseq RF of
complex ``signal`` [Hz], ``phase_offset`` and ``freq_offset`` enters as
``Ωx + i Ωy = 2π signal · exp(i phase_offset) · exp(-i 2π freq_offset t)``: a positive frequency offset excites
spins at positive ``Ωz`` (positive slice position under a positive slice gradient), while a phase (offset or
shape) turns the B1 axis the other way round, as on the scanners Pulseq runs on (a frequency offset ``df`` written
into the shape is ``exp(-i 2π df t)``; pulseq-cest and KomaMRI found the same). The receiver demodulates a sample by
``exp(i (-adc.phase_offset + 2π adc.freq_offset t))``, so an ADC phase equal to the RF phase keeps an FID's phase,
as RF spoiling expects. This is the sense of the textbook phase graphs (an RF of phase φ puts ``e^{iφ}`` on F+;
:mod:`hifield.sim.epg`, the ``fast`` engine) and of MRzero: with the opposite sense the transient of an RF-spoiled
FLASH without dummy scans has the mirror-image phase pattern, off by several percent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import SequenceError

OP_FREE = 0
OP_REPEAT = 1
OP_RF = 2

_CHANNELS = ("gz", "gy", "gx")
"""Gradient channels in (z, y, x) order; pulseq's x, y, z are the phantom's x, y, z (no rotation extension)."""
_EPS_T = 1e-12


@dataclass(frozen=True)
class Program:
    """A sequence compiled for the Bloch kernel (all arrays float64 unless stated).

    Operation arrays (length ``n_ops``): ``op`` (int8 kind), ``dt`` [s], ``area`` ``(n_ops, 3)`` gradient area
    ``2π ∫G dt`` in (z, y, x) [rad/m], ``adc`` (int64 sample index written at the end of the step, -1 for none),
    ``pulse`` (int64 pulse index for ``OP_RF``, else -1), ``phase`` [rad] (RF phase offset of ``OP_RF``).
    Pulse sample arrays (length ``n_rf_steps``, pulse ``p`` owns ``pulse_start[p]:pulse_stop[p]``): ``rf_dt`` [s],
    ``rf_w`` complex rotation ``(Ωx + i Ωy) dt`` for a unit B1+ scale [rad], ``rf_area`` ``(n, 3)`` [rad/m].
    ADC sample arrays (length ``n_samples``): ``sample_time`` [s] from the start of the sequence and ``demod``
    (complex receiver phase factor). ``adc_first`` / ``adc_length`` give each ADC event's samples.
    """

    op: NDArray[np.int8]
    dt: NDArray[np.float64]
    area: NDArray[np.float64]
    adc: NDArray[np.int64]
    pulse: NDArray[np.int64]
    phase: NDArray[np.float64]
    rf_dt: NDArray[np.float64]
    rf_w: NDArray[np.complex128]
    rf_area: NDArray[np.float64]
    pulse_start: NDArray[np.int64]
    pulse_stop: NDArray[np.int64]
    sample_time: NDArray[np.float64]
    demod: NDArray[np.complex128]
    adc_first: NDArray[np.int64]
    adc_length: NDArray[np.int64]
    adc_block: NDArray[np.int64]
    duration_s: float

    @property
    def n_ops(self) -> int:
        """Number of operations."""
        return int(self.op.size)

    @property
    def n_samples(self) -> int:
        """Total number of ADC samples."""
        return int(self.sample_time.size)

    @property
    def n_adc(self) -> int:
        """Number of ADC events (readouts)."""
        return int(self.adc_first.size)

    def raster_steps(self) -> int:
        """Time steps of the sequence on its own rasters: free/ADC steps plus every RF sample of every pulse played."""
        lengths = self.pulse_stop - self.pulse_start
        rf_ops = self.pulse[self.op == OP_RF]
        return int(np.count_nonzero(self.op != OP_RF) + lengths[rf_ops].sum())


def _grad_pieces(grad: Any, grad_raster: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Piecewise-linear ``(times from block start [s], amplitudes [Hz/m])`` of one pypulseq gradient event."""
    if grad.type == "trap":
        t = np.cumsum([grad.delay, grad.rise_time, grad.flat_time, grad.fall_time])
        a = grad.amplitude * np.array([0.0, 1.0, 1.0, 0.0])
        return t.astype(np.float64), a
    tt = np.asarray(grad.tt, dtype=np.float64)
    wave = np.asarray(grad.waveform, dtype=np.float64)
    regular = tt.size > 0 and np.all(np.abs(tt / grad_raster + 0.5 - np.arange(1, tt.size + 1)) < 1e-6)
    if regular:  # arbitrary gradient: samples at raster centres, first/last at the edges
        t = grad.delay + np.concatenate(([0.0], tt, [tt[-1] + grad_raster / 2]))
        a = np.concatenate(([float(grad.first)], wave, [float(grad.last)]))
    else:  # extended trapezoid: corner points
        t = grad.delay + tt
        a = wave
    return t, a


def _pwl_integral(times: NDArray[np.float64], amps: NDArray[np.float64], query: NDArray[np.float64]) -> NDArray:
    """∫ from -inf to each query time of the piecewise-linear function through ``(times, amps)`` (zero outside)."""
    cum = np.concatenate(([0.0], np.cumsum(np.diff(times) * 0.5 * (amps[1:] + amps[:-1]))))
    q = np.minimum(np.maximum(query, times[0]), times[-1])
    idx = np.minimum(np.maximum(np.searchsorted(times, q, side="right") - 1, 0), times.size - 2)
    t0 = times[idx]
    a0 = amps[idx]
    seg = np.maximum(times[idx + 1] - t0, 1e-300)
    aq = a0 + (amps[idx + 1] - a0) * (q - t0) / seg
    return np.asarray(cum[idx] + (q - t0) * 0.5 * (a0 + aq))


def _rf_edges(t: NDArray[np.float64], raster: float) -> NDArray[np.float64]:
    """Edges of the piecewise-constant intervals around RF sample centres ``t``."""
    if t.size == 1:
        return np.array([t[0] - raster / 2, t[0] + raster / 2])
    mid = 0.5 * (t[1:] + t[:-1])
    return np.concatenate(([t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]))


def _rf_on_raster(rf: Any, raster: float) -> tuple[NDArray[np.float64], NDArray[np.complex128]]:
    """RF sample centres [s] and complex amplitudes [Hz]; time-shaped pulses (e.g. block pulses stored as corner
    points) are interpolated linearly onto the RF raster."""
    t = np.asarray(rf.t, dtype=np.float64)
    signal = np.asarray(rf.signal, dtype=np.complex128)
    regular = np.allclose(t / raster - 0.5, np.round(t / raster - 0.5), atol=1e-6) and (
        t.size < 2 or np.allclose(np.diff(t), raster, rtol=1e-6)
    )
    if regular:
        return t, signal
    n = max(1, round(float(t[-1] - t[0]) / raster))
    centres = t[0] + (np.arange(n) + 0.5) * raster
    values = np.interp(centres, t, signal.real) + 1j * np.interp(centres, t, signal.imag)
    return centres, values


def _ppm_hz(seq: Any, ppm: float) -> float:
    if not ppm:
        return 0.0
    return float(ppm) * 1e-6 * float(seq.system.gamma) * float(seq.system.B0)


def compile_sequence(seq: Any) -> Program:
    """Compile a pypulseq ``Sequence`` into a :class:`Program`.

    Parameters
    ----------
    seq
        A ``pypulseq.Sequence`` (built in memory or read from a ``.seq`` file).

    Returns
    -------
    Program
        Operations, pulse table and ADC sample table.

    Raises
    ------
    SequenceError
        For an empty sequence, a sequence without ADC, or a block the kernel cannot play (named in the message).
    """
    block_ids = list(seq.block_events)
    if not block_ids:
        raise SequenceError("the sequence has no blocks; build or read a sequence before simulating it")
    builder = _ProgramBuilder(seq)
    for block_id in block_ids:
        builder.add_block(block_id)
    return builder.program()


def _block_areas(pieces: list[Any], edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """``2π ∫G dt`` over each interval between consecutive ``edges``, shape ``(edges.size - 1, 3)``, from the
    piecewise-linear gradient ``pieces`` of a block (None for an idle channel)."""
    out = np.zeros((edges.size - 1, 3))
    for axis, piece in enumerate(pieces):
        if piece is not None:
            out[:, axis] = np.diff(_pwl_integral(piece[0], piece[1], edges))
    return 2.0 * math.pi * out


class _ProgramBuilder:
    """Accumulates the operations, pulse table and ADC table of a sequence block by block."""

    def __init__(self, seq: Any) -> None:
        self.seq = seq
        self.grad_raster = float(seq.grad_raster_time)
        self.rf_raster = float(seq.rf_raster_time)
        self.parts_op: list[NDArray[np.int8]] = []
        self.parts_dt: list[NDArray[np.float64]] = []
        self.parts_area: list[NDArray[np.float64]] = []
        self.parts_adc: list[NDArray[np.int64]] = []
        self.parts_pulse: list[NDArray[np.int64]] = []
        self.parts_phase: list[NDArray[np.float64]] = []
        self.rf_dt: list[NDArray[np.float64]] = []
        self.rf_w: list[NDArray[np.complex128]] = []
        self.rf_area: list[NDArray[np.float64]] = []
        self.pulse_keys: dict[bytes, int] = {}
        self.pulse_start: list[int] = []
        self.pulse_stop: list[int] = []
        self.n_rf = 0
        self.sample_time: list[NDArray[Any]] = []
        self.demod: list[NDArray[Any]] = []
        self.adc_first: list[int] = []
        self.adc_length: list[int] = []
        self.adc_block: list[int] = []
        self.n_samples = 0
        self.t_block = 0.0

    def add_block(self, block_id: int) -> None:
        """Append one block: its event times split it into free steps and RF runs (one operation per pulse)."""
        block = self.seq.get_block(block_id)
        duration = float(self.seq.block_durations[block_id])
        pieces = [
            None if getattr(block, name, None) is None else _grad_pieces(getattr(block, name), self.grad_raster)
            for name in _CHANNELS
        ]
        points = [np.array([0.0, duration])]
        adc_times = None if block.adc is None else self._add_adc(block_id, block.adc, duration)
        if adc_times is not None:
            points.append(adc_times)
        rf = block.rf
        rf_range = None
        t_rf = rf_signal = None
        if rf is not None:
            t_rf, rf_signal, edges = self._rf_samples(block_id, rf, duration, adc_times)
            points.append(edges)
            rf_range = (edges[0], edges[-1])
        times = np.unique(np.clip(np.concatenate(points), 0.0, duration))
        keep = np.concatenate(([True], np.diff(times) > _EPS_T))
        times = times[keep]
        t0 = times[:-1]
        t1 = times[1:]
        step_area = _block_areas(pieces, times)
        step_dt = t1 - t0
        adc_index = np.full(t0.size, -1, dtype=np.int64)
        if adc_times is not None:
            pos = np.searchsorted(t1, adc_times - 1e-10)
            adc_index[pos] = self.n_samples + np.arange(adc_times.size)
            self.n_samples += adc_times.size
        in_rf = np.zeros(t0.size, dtype=bool)
        if rf_range is not None:
            in_rf = (t0 >= rf_range[0] - 1e-10) & (t1 <= rf_range[1] + 1e-10)
        # operations of this block: free steps as arrays, each RF run (one pulse) as one operation
        run_edges = np.flatnonzero(np.diff(np.concatenate(([False], in_rf, [False])).astype(np.int8)))
        runs = run_edges.reshape(-1, 2)  # [start, stop) of each run of RF steps
        cursor = 0
        for s, e in [(int(a), int(b)) for a, b in runs] + [(t0.size, t0.size)]:
            if s > cursor:  # free steps [cursor, s)
                self._add_free(step_dt[cursor:s], step_area[cursor:s], adc_index[cursor:s])
            if e > s:
                assert rf is not None and t_rf is not None and rf_signal is not None
                self._add_pulse(rf, t_rf, rf_signal, t0[s:e], t1[s:e], step_dt[s:e], step_area[s:e])
            cursor = e
        self.t_block += duration

    def _add_adc(self, block_id: int, adc: Any, duration: float) -> NDArray[np.float64]:
        """Record one ADC's sample times and demodulation; returns its sample times in the block [s]."""
        n = int(adc.num_samples)
        adc_times = np.asarray(float(adc.delay) + (np.arange(n) + 0.5) * float(adc.dwell), dtype=np.float64)
        if adc_times[-1] > duration + 1e-9:
            raise SequenceError(
                f"block {block_id}: the ADC ends at {adc_times[-1] * 1e3:.4f} ms, after the block's "
                f"{duration * 1e3:.4f} ms; fix the block duration"
            )
        f_adc = float(adc.freq_offset) + _ppm_hz(self.seq, getattr(adc, "freq_ppm", 0.0))
        p_adc = float(adc.phase_offset) + _ppm_hz(self.seq, getattr(adc, "phase_ppm", 0.0))
        t_rel = adc_times - float(adc.delay)
        phase = -p_adc + 2.0 * math.pi * f_adc * t_rel
        modulation = np.asarray(getattr(adc, "phase_modulation", np.array([])), dtype=np.float64)
        if modulation.size == n:
            phase = phase - modulation
        self.sample_time.append(self.t_block + adc_times)
        self.demod.append(np.exp(1j * phase))
        self.adc_first.append(self.n_samples)
        self.adc_length.append(n)
        self.adc_block.append(int(block_id))
        return adc_times

    def _rf_samples(
        self, block_id: int, rf: Any, duration: float, adc_times: NDArray[np.float64] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.complex128], NDArray[np.float64]]:
        """The pulse's sample centres [s], complex samples [Hz] and interval edges in the block [s], checked to fit
        the block and not to overlap the ADC."""
        t_rf, rf_signal = _rf_on_raster(rf, self.rf_raster)
        edges = float(rf.delay) + _rf_edges(t_rf, self.rf_raster)
        if edges[0] < -1e-9 or edges[-1] > duration + 1e-9:
            raise SequenceError(
                f"block {block_id}: the RF pulse ({edges[0] * 1e3:.4f} to {edges[-1] * 1e3:.4f} ms) does not fit "
                f"in the block's {duration * 1e3:.4f} ms; fix the block duration"
            )
        if adc_times is not None and np.any((adc_times > edges[0]) & (adc_times < edges[-1])):
            raise SequenceError(
                f"block {block_id}: ADC samples during an RF pulse are not supported by the bloch engine; "
                f"separate the ADC from the pulse"
            )
        return t_rf, rf_signal, edges

    def _add_free(self, dt: NDArray[np.float64], area: NDArray[np.float64], adc: NDArray[np.int64]) -> None:
        """Append free-precession steps."""
        count = dt.size
        self.parts_op.append(np.full(count, OP_FREE, dtype=np.int8))
        self.parts_dt.append(dt)
        self.parts_area.append(area)
        self.parts_adc.append(adc)
        self.parts_pulse.append(np.full(count, -1, dtype=np.int64))
        self.parts_phase.append(np.zeros(count))

    def _add_pulse(
        self,
        rf: Any,
        t_rf: NDArray[np.float64],
        rf_signal: NDArray[np.complex128],
        t0: NDArray[np.float64],
        t1: NDArray[np.float64],
        d: NDArray[np.float64],
        a: NDArray[np.float64],
    ) -> None:
        """Append one RF run as one operation; identical pulses (up to their phase offset) share a pulse entry."""
        f_rf = float(rf.freq_offset) + _ppm_hz(self.seq, getattr(rf, "freq_ppm", 0.0))
        p_rf = float(rf.phase_offset) + _ppm_hz(self.seq, getattr(rf, "phase_ppm", 0.0))
        mid = 0.5 * (t0 + t1) - float(rf.delay)
        idx = np.clip(np.searchsorted(_rf_edges(t_rf, self.rf_raster), mid, side="right") - 1, 0, t_rf.size - 1)
        w = 2.0 * math.pi * rf_signal[idx] * np.exp(-2j * math.pi * f_rf * t_rf[idx]) * d  # see the module docstring
        key = b"".join(np.ascontiguousarray(x).tobytes() for x in (w, a, d))
        pulse = self.pulse_keys.get(key)
        if pulse is None:
            pulse = len(self.pulse_start)
            self.pulse_keys[key] = pulse
            self.pulse_start.append(self.n_rf)
            self.n_rf += d.size
            self.pulse_stop.append(self.n_rf)
            self.rf_dt.append(d)
            self.rf_w.append(w)
            self.rf_area.append(a)
        self.parts_op.append(np.array([OP_RF], dtype=np.int8))
        self.parts_dt.append(np.array([float(d.sum())]))
        self.parts_area.append(np.zeros((1, 3)))
        self.parts_adc.append(np.array([-1], dtype=np.int64))
        self.parts_pulse.append(np.array([pulse], dtype=np.int64))
        self.parts_phase.append(np.array([-p_rf]))  # the kernel turns the pulse's axis by -phase

    def program(self) -> Program:
        """The finished program: repeats marked, idle free steps merged."""
        if self.n_samples == 0:
            raise SequenceError("the sequence has no ADC events, so there is nothing to simulate; add readouts")
        op_all = np.concatenate(self.parts_op)
        dt_all = np.concatenate(self.parts_dt)
        area_all = np.concatenate(self.parts_area).reshape(-1, 3)
        # a free step playing the same rotation as the free step just before it is a repeat (flat-top sampling)
        op_all[_repeats(op_all, dt_all, area_all)] = OP_REPEAT
        op, dt, area, adc_index_all, pulse_all, phase_all = _merge_free(
            op_all,
            dt_all,
            area_all,
            np.concatenate(self.parts_adc),
            np.concatenate(self.parts_pulse),
            np.concatenate(self.parts_phase),
        )
        return Program(
            op=op,
            dt=dt,
            area=area,
            adc=adc_index_all,
            pulse=pulse_all,
            phase=phase_all,
            rf_dt=np.concatenate(self.rf_dt) if self.rf_dt else np.zeros(0),
            rf_w=np.concatenate(self.rf_w) if self.rf_w else np.zeros(0, dtype=np.complex128),
            rf_area=np.concatenate(self.rf_area) if self.rf_area else np.zeros((0, 3)),
            pulse_start=np.asarray(self.pulse_start, dtype=np.int64),
            pulse_stop=np.asarray(self.pulse_stop, dtype=np.int64),
            sample_time=np.concatenate(self.sample_time),
            demod=np.concatenate(self.demod),
            adc_first=np.asarray(self.adc_first, dtype=np.int64),
            adc_length=np.asarray(self.adc_length, dtype=np.int64),
            adc_block=np.asarray(self.adc_block, dtype=np.int64),
            duration_s=float(self.t_block),
        )


def _same_as_previous(dt: NDArray[np.float64], area: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether each step plays the same rotation as the one before it: equal ``dt`` (to 1 ps) and gradient areas (to
    1e-9 rad/m); False for the first."""
    same = np.zeros(dt.size, dtype=bool)
    same[1:] = (np.abs(dt[1:] - dt[:-1]) <= 1e-12) & np.all(np.abs(area[1:] - area[:-1]) <= 1e-9, axis=1)
    return same


def _repeats(op: NDArray[np.int8], dt: NDArray[np.float64], area: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Free steps that follow a free step with the same rotation (candidates for ``OP_REPEAT``)."""
    free = op != OP_RF
    previous_free = np.zeros(op.size, dtype=bool)
    previous_free[1:] = free[:-1]
    return free & previous_free & _same_as_previous(dt, area)


def _merge_free(
    op: NDArray[np.int8],
    dt: NDArray[np.float64],
    area: NDArray[np.float64],
    adc: NDArray[np.int64],
    pulse: NDArray[np.int64],
    phase: NDArray[np.float64],
) -> tuple[NDArray[Any], ...]:
    """Merge runs of free steps without ADC into one step (exact: only the total area and time matter).

    A run is folded into the ADC step that ends it (which becomes ``OP_FREE``), or kept as one free step before the
    RF operation that ends it (or at the end of the program). A repeat stays a repeat only if the operation kept
    before it is a free step with the same rotation.
    """
    idle = (op != OP_RF) & (adc < 0)  # free steps without ADC: merged
    ends = np.flatnonzero(~idle)  # operations that end a run (RF or ADC steps)
    n_ends = ends.size
    group = np.cumsum(~idle) - (~idle)  # for an idle step: index of the operation that ends its run
    members = np.flatnonzero(idle)
    g = group[members]
    n_groups = n_ends + 1  # the last group: idle steps after the last RF/ADC operation
    count = np.bincount(g, minlength=n_groups)
    run_dt = np.bincount(g, weights=dt[members], minlength=n_groups)
    run_area = np.stack([np.bincount(g, weights=area[members, a], minlength=n_groups) for a in range(3)], axis=1)
    pending = count[:n_ends] > 0
    is_rf = op[ends] == OP_RF
    separate = pending & is_rf  # a run before an RF operation stays a free step of its own
    folded = pending & ~is_rf  # a run before an ADC step is folded into it
    n_out = n_ends + int(separate.sum()) + int(count[n_ends] > 0)
    position = np.arange(n_ends) + np.cumsum(separate)  # output index of each ending operation
    out_op = np.zeros(n_out, dtype=np.int8)
    out_dt = np.zeros(n_out)
    out_area = np.zeros((n_out, 3))
    out_adc = np.full(n_out, -1, dtype=np.int64)
    out_pulse = np.full(n_out, -1, dtype=np.int64)
    out_phase = np.zeros(n_out)
    out_op[position] = op[ends]
    out_dt[position] = dt[ends]
    out_area[position] = area[ends]
    out_adc[position] = adc[ends]
    out_pulse[position] = pulse[ends]
    out_phase[position] = phase[ends]
    out_op[position[folded]] = OP_FREE
    out_dt[position[folded]] = run_dt[:n_ends][folded] + dt[ends[folded]]
    out_area[position[folded]] = run_area[:n_ends][folded] + area[ends[folded]]
    before = position[separate] - 1
    out_op[before] = OP_FREE
    out_dt[before] = run_dt[:n_ends][separate]
    out_area[before] = run_area[:n_ends][separate]
    if count[n_ends] > 0:
        out_op[-1] = OP_FREE
        out_dt[-1] = run_dt[n_ends]
        out_area[-1] = run_area[n_ends]
    previous_free = np.zeros(n_out, dtype=bool)
    previous_free[1:] = out_op[:-1] != OP_RF
    lost = (out_op == OP_REPEAT) & ~(previous_free & _same_as_previous(out_dt, out_area))
    out_op[lost] = OP_FREE
    return out_op, out_dt, out_area, out_adc, out_pulse, out_phase


@dataclass(frozen=True)
class IdealSlicePulses:
    """The slice-selective pulses of a program played as ideal in-plane rotations (:func:`ideal_slice_selection`)."""

    selective: NDArray[np.bool_]
    """Per pulse: played with a z gradient (slice selective)."""
    before_s: NDArray[np.float64]
    """Per pulse: time from its start to its centre [s]."""
    after_s: NDArray[np.float64]
    """Per pulse: time from its centre to its end [s]."""


def _pulse_centre(dt: NDArray[np.float64], w: NDArray[np.complex128]) -> float:
    """Time [s] from a pulse's start to its centre: the middle of its samples at (within 0.1 % of) peak amplitude."""
    edges = np.concatenate([[0.0], np.cumsum(dt)])
    mag = np.abs(w) / np.maximum(dt, _EPS_T)
    peak = np.flatnonzero(mag >= 0.999 * float(mag.max())) if mag.size else np.zeros(1, dtype=np.int64)
    return 0.5 * (float(edges[peak[0]]) + float(edges[peak[-1] + 1]))


def ideal_slice_selection(program: Program) -> tuple[Program, IdealSlicePulses]:
    """The program of a 2D slice simulated in-plane with ideal slice selection.

    A slice-selective pulse (one played with a z gradient) becomes a rotation that every spin of the slice sees as
    its nominal pulse, whatever its z and its off-resonance, at the pulse's centre: the z gradient is taken out of
    the pulse and played as two zero-duration gradient steps, the area before the centre just before the pulse and
    the area after it just after. Spins spread along z then dephase under slice spoilers, crushers and the
    slice-select lobes between pulses as a slice's spins do, while every pulse excites them as the slice centre is
    excited (the premise of the in-plane model and of the ``fast`` engine). The kernel's pulse maps for these pulses
    are computed on resonance and wrapped by the off-resonant precession over the two halves of the pulse
    (:class:`IdealSlicePulses`), so the off-resonance phase still accrues from the pulse centre. Pulses without a z
    gradient (spectrally selective fat saturation, non-selective pulses) are left as they are.
    """
    n_pulses = program.pulse_start.size
    selective = np.zeros(n_pulses, dtype=bool)
    before = np.zeros(n_pulses)
    after = np.zeros(n_pulses)
    area_before = np.zeros(n_pulses)
    area_after = np.zeros(n_pulses)
    rf_area = program.rf_area.copy()
    for p in range(n_pulses):
        sl = slice(int(program.pulse_start[p]), int(program.pulse_stop[p]))
        dt = program.rf_dt[sl]
        gz = program.rf_area[sl, 0]
        if dt.size == 0 or not np.any(np.abs(gz) > 0.0):
            continue
        selective[p] = True
        centre = _pulse_centre(dt, program.rf_w[sl])
        edges = np.concatenate([[0.0], np.cumsum(dt)])
        cumulative = np.concatenate([[0.0], np.cumsum(gz)])
        split = float(np.interp(centre, edges, cumulative))  # gradients are constant over each RF sample
        before[p], after[p] = centre, float(edges[-1]) - centre
        area_before[p], area_after[p] = split, float(cumulative[-1]) - split
        rf_area[sl, 0] = 0.0
    if not np.any(selective):
        return program, IdealSlicePulses(selective, before, after)
    rf_ops = np.flatnonzero((program.op == OP_RF) & selective[np.maximum(program.pulse, 0)])
    n_ops = program.n_ops
    # every selective RF op k becomes three: free (area before), the pulse, free (area after)
    shift = np.zeros(n_ops, dtype=np.int64)
    shift[rf_ops] = 1
    new_index = np.arange(n_ops) + np.cumsum(shift) + np.concatenate([[0], np.cumsum(shift)[:-1]])
    total = n_ops + 2 * rf_ops.size
    op = np.full(total, OP_FREE, dtype=np.int8)
    dt_all = np.zeros(total)
    area = np.zeros((total, 3))
    adc = np.full(total, -1, dtype=np.int64)
    pulse = np.full(total, -1, dtype=np.int64)
    phase = np.zeros(total)
    op[new_index] = program.op
    dt_all[new_index] = program.dt
    area[new_index] = program.area
    adc[new_index] = program.adc
    pulse[new_index] = program.pulse
    phase[new_index] = program.phase
    p_of = program.pulse[rf_ops]
    area[new_index[rf_ops] - 1, 0] = area_before[p_of]
    area[new_index[rf_ops] + 1, 0] = area_after[p_of]
    # a repeat step must follow the free step it repeats: one right after an inserted step becomes a free step
    follows = new_index[rf_ops] + 2
    follows = follows[follows < total]
    op[follows[op[follows] == OP_REPEAT]] = OP_FREE
    changed = dataclasses.replace(
        program, op=op, dt=dt_all, area=area, adc=adc, pulse=pulse, phase=phase, rf_area=rf_area
    )
    return changed, IdealSlicePulses(selective, before, after)
