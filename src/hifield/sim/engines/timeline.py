"""The RF and ADC events of a pypulseq sequence in time order: what the ``fast`` engine's phase graphs play.

The Bloch engine compiles every gradient and RF sample (``bloch_program``); the signal-model engine needs only the
timing, flip angle and phase of each RF pulse, what each pulse is for (excitation, refocusing, inversion), and the
time, phase and k-space line of each readout. :func:`read_timeline` extracts these from any pypulseq sequence, ours
or a community ``.seq`` file, and says whether the gradients are balanced between excitations (bSSFP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import SequenceError
from hifield.sequence.events import ROLE_THRESHOLD_RAD, RfFacts, readout_lines, rf_facts
from hifield.sequence.kspace import adc_kspace

RF_EXCITATION = 0
"""Kind of an excitation pulse (creates transverse magnetisation from Mz)."""
RF_REFOCUSING = 1
"""Kind of a refocusing pulse (inside an echo train)."""
RF_INVERSION = 2
"""Kind of an inversion or saturation preparation pulse (followed by spoiling)."""

_USE = {"excitation": RF_EXCITATION, "refocusing": RF_REFOCUSING, "inversion": RF_INVERSION, "saturation": RF_INVERSION}
_BALANCED_AREA_PER_M = 1.0
"""Net gradient area between excitations [1/m] below which a sequence counts as balanced (1 cycle per metre)."""


@dataclass(frozen=True)
class Timeline:
    """RF and ADC events of a sequence (times from the sequence start).

    RF arrays (length ``n_rf``): ``rf_time_s`` (pulse centre), ``rf_flip_rad``, ``rf_phase_rad``, ``rf_kind``
    (:data:`RF_EXCITATION`, :data:`RF_REFOCUSING`, :data:`RF_INVERSION`), ``rf_freq_hz`` (frequency offset).
    ADC arrays (length ``n_adc``): ``adc_time_s`` (time of the sample at the k-space centre, sample ``n // 2`` in
    k0 order), ``adc_phase_rad`` (receiver phase), ``adc_k1``, ``adc_k2``, ``adc_avg``, ``adc_slice``, ``adc_rev``
    (samples played in reverse k0 order), ``adc_dwell_s``, ``adc_samples`` (per ADC) and ``adc_index`` (the ADC's
    ordinal among all ADCs of the sequence, kept when a slice is selected).
    """

    rf_time_s: NDArray[np.float64]
    rf_flip_rad: NDArray[np.float64]
    rf_phase_rad: NDArray[np.float64]
    rf_kind: NDArray[np.int8]
    rf_freq_hz: NDArray[np.float64]
    adc_time_s: NDArray[np.float64]
    adc_phase_rad: NDArray[np.float64]
    adc_dwell_s: NDArray[np.float64]
    adc_samples: NDArray[np.int64]
    adc_k1: NDArray[np.int64]
    adc_k2: NDArray[np.int64]
    adc_avg: NDArray[np.int64]
    adc_slice: NDArray[np.int64]
    adc_rev: NDArray[np.bool_]
    adc_index: NDArray[np.int64]
    balanced: bool
    """True when the net gradient area between consecutive excitations is zero on every axis (bSSFP)."""
    duration_s: float

    @property
    def n_adc(self) -> int:
        """Number of readouts."""
        return int(self.adc_time_s.size)

    @property
    def has_refocusing(self) -> bool:
        """Whether any pulse refocuses (spin-echo family)."""
        return bool(np.any(self.rf_kind == RF_REFOCUSING))


def _grad_area(grad: Any) -> float:
    """Area of a pypulseq gradient event [1/m]."""
    if grad.type == "trap":
        return float(grad.area)
    waveform = np.asarray(grad.waveform, dtype=np.float64)
    tt = np.asarray(grad.tt, dtype=np.float64)
    if waveform.size < 2:
        return 0.0
    return float(np.trapezoid(waveform, tt))


def read_timeline(
    seq: Any, *, matrix: int, fov_m: float, n_z: int = 1, fov_z_m: float = 1.0, cartesian: bool = True
) -> Timeline:
    """The RF and ADC events of ``seq`` in time order, with the k-space line of every readout.

    Lines come from the ``LIN``/``PAR``/``AVG``/``SLC``/``REV`` labels when the sequence carries them, else from the
    k-space position of each readout's centre sample (``round(ky * fov) + matrix // 2``).

    Parameters
    ----------
    seq
        A ``pypulseq.Sequence``.
    matrix, fov_m
        In-plane matrix and field of view [m] (to place unlabelled readouts).
    n_z, fov_z_m
        Partitions and slab thickness [m] of a 3D acquisition.
    cartesian
        Place readouts on Cartesian lines; ``False`` (radial, spiral) numbers them in order instead (``adc_k1``
        is the readout index) and takes their sample positions from :func:`readout_kspace`.

    Raises
    ------
    SequenceError
        For an empty sequence, one without RF or ADC, or a readout that lands outside the grid.

    Examples
    --------
    >>> from hifield.hardware import Scanner
    >>> from hifield.sequence import GreProtocol
    >>> built = GreProtocol(matrix=16, fov_m=0.2, tr_s=0.02, te_s=0.005).build(Scanner.preset("3T"))
    >>> tl = read_timeline(built.seq, matrix=16, fov_m=0.2)
    >>> tl.n_adc, sorted(tl.adc_k1.tolist()) == list(range(16)), tl.balanced
    (16, True, False)
    """
    block_ids = list(seq.block_events)
    if not block_ids:
        raise SequenceError("the sequence has no blocks; build or read a sequence before simulating it")
    rf_cache: dict[int, RfFacts] = {}
    rf_rows: list[tuple[float, float, float, str, float]] = []
    adc_rows: list[tuple[float, float, float, int]] = []
    area = np.zeros(3)
    area_at_exc: list[NDArray[np.float64]] = []
    t_block = 0.0
    for block_id in block_ids:
        events = seq.block_events[block_id]
        duration = float(seq.block_durations[block_id])
        rf_id = int(events[1])
        has_grad = any(int(e) for e in events[2:5])
        adc_id = int(events[5])
        if rf_id or adc_id or has_grad:
            block = seq.get_block(block_id)
            if rf_id:
                if rf_id not in rf_cache:
                    rf_cache[rf_id] = rf_facts(block.rf)
                facts = rf_cache[rf_id]
                phase = facts.shape_phase_rad + float(block.rf.phase_offset)
                rf_rows.append(
                    (t_block + facts.centre_s, facts.flip_rad, phase, facts.use, float(block.rf.freq_offset))
                )
            if has_grad:
                for axis, name in enumerate(("gx", "gy", "gz")):
                    grad = getattr(block, name, None)
                    if grad is not None:
                        area[axis] += _grad_area(grad)
            if rf_id:
                area_at_exc.append(area.copy())
            if adc_id:
                adc = block.adc
                n = int(adc.num_samples)
                dwell = float(adc.dwell)
                adc_rows.append(
                    (t_block + float(adc.delay) + (n // 2 + 0.5) * dwell, float(adc.phase_offset), dwell, n)
                )
        t_block += duration
    if not adc_rows:
        raise SequenceError("the sequence has no ADC event; add readouts (pypulseq make_adc) before simulating it")
    if not rf_rows:
        raise SequenceError("the sequence has no RF pulse; nothing is excited, so there is no signal to simulate")

    rf_time = np.array([r[0] for r in rf_rows])
    rf_flip = np.array([r[1] for r in rf_rows])
    rf_phase = np.array([r[2] for r in rf_rows])
    rf_freq = np.array([r[4] for r in rf_rows])
    kinds = np.empty(len(rf_rows), dtype=np.int8)
    for i, row in enumerate(rf_rows):
        use = row[3]
        if use in _USE:
            kinds[i] = _USE[use]
        elif row[1] < ROLE_THRESHOLD_RAD:
            kinds[i] = RF_EXCITATION
        else:
            # an undeclared large pulse: inversion when the next pulse excites, else refocusing
            nxt = rf_rows[i + 1][1] if i + 1 < len(rf_rows) else math.pi
            kinds[i] = RF_INVERSION if nxt < ROLE_THRESHOLD_RAD else RF_REFOCUSING
    if not np.any(kinds == RF_EXCITATION):
        raise SequenceError("the sequence has no excitation pulse (all RF pulses refocus or invert); add one")

    adc_time = np.array([r[0] for r in adc_rows])
    n_adc = adc_time.size
    if cartesian:
        first = np.concatenate(([0], np.cumsum([r[3] for r in adc_rows])[:-1]))
        centre = (first + np.array([r[3] // 2 for r in adc_rows])).astype(np.int64)
        lines = readout_lines(seq, centre, matrix=matrix, fov_m=fov_m, n_z=n_z, fov_z_m=fov_z_m)
    else:  # radial / spiral: readouts in order; their sample positions come from readout_kspace
        zeros = np.zeros(n_adc, dtype=np.int64)
        lines = {"k1": np.arange(n_adc, dtype=np.int64), "k2": zeros, "avg": zeros, "slc": zeros}
        lines["rev"] = zeros.astype(bool)

    exc_idx = np.flatnonzero(kinds == RF_EXCITATION)
    areas = np.array(area_at_exc)[exc_idx] if exc_idx.size > 1 else np.zeros((1, 3))
    # the first interval may follow a preparation pulse (alpha/2 of bSSFP) with its own gradients: judge the rest
    steps = np.abs(np.diff(areas, axis=0))[1:] if exc_idx.size > 2 else np.abs(np.diff(areas, axis=0))
    balanced = bool(exc_idx.size > 1 and np.all(steps < _BALANCED_AREA_PER_M))
    return Timeline(
        rf_time_s=rf_time,
        rf_flip_rad=rf_flip,
        rf_phase_rad=rf_phase,
        rf_kind=kinds,
        rf_freq_hz=rf_freq,
        adc_time_s=adc_time,
        adc_phase_rad=np.array([r[1] for r in adc_rows]),
        adc_dwell_s=np.array([r[2] for r in adc_rows]),
        adc_samples=np.array([r[3] for r in adc_rows], dtype=np.int64),
        adc_k1=lines["k1"],
        adc_k2=lines["k2"],
        adc_avg=lines["avg"],
        adc_slice=lines["slc"],
        adc_rev=lines["rev"],
        adc_index=np.arange(n_adc, dtype=np.int64),
        balanced=balanced,
        duration_s=t_block,
    )


def dephasing_times(timeline: Timeline) -> NDArray[np.float64]:
    """Dephasing time of every readout's centre sample ``(n_adc,)`` [s]: the time off-resonant spins have precessed
    since their excitation, reset at every excitation and negated at every refocusing pulse (0 at a spin echo).

    Balanced sequences (bSSFP) count from the echo halfway between excitations, where the steady state refocuses
    intravoxel dephasing. A sample ``dt`` after its readout's centre has ``tau + dt``. This is the ``tau`` of the
    ``fast`` engine's phase graphs (:func:`hifield.sim.engines.fast_echoes.echo_amplitudes`), on which the reversible
    decay ``exp(-R2' |tau|)`` acts.

    Examples
    --------
    >>> import numpy as np
    >>> t = Timeline(
    ...     rf_time_s=np.array([0.0, 0.005]), rf_flip_rad=np.array([1.57, 3.14]), rf_phase_rad=np.zeros(2),
    ...     rf_kind=np.array([RF_EXCITATION, RF_REFOCUSING], np.int8), rf_freq_hz=np.zeros(2),
    ...     adc_time_s=np.array([0.003, 0.010]), adc_phase_rad=np.zeros(2), adc_dwell_s=np.full(2, 1e-5),
    ...     adc_samples=np.full(2, 8), adc_k1=np.zeros(2, int), adc_k2=np.zeros(2, int), adc_avg=np.zeros(2, int),
    ...     adc_slice=np.zeros(2, int), adc_rev=np.zeros(2, bool), adc_index=np.arange(2), balanced=False,
    ...     duration_s=0.02)
    >>> np.round(dephasing_times(t) * 1e3, 6).tolist()
    [3.0, 0.0]
    """
    adc = timeline.adc_time_s
    if timeline.balanced:
        exc = timeline.rf_time_s[timeline.rf_kind == RF_EXCITATION]
        last = exc[np.clip(np.searchsorted(exc, adc) - 1, 0, exc.size - 1)]
        return np.asarray(adc - last - float(np.median(adc - last)), dtype=np.float64)
    times = np.concatenate((timeline.rf_time_s, adc))
    kinds = np.concatenate((timeline.rf_kind.astype(np.int64), np.full(adc.size, -1)))
    index = np.concatenate((np.zeros(timeline.rf_time_s.size, dtype=np.int64), np.arange(adc.size)))
    order = np.argsort(times, kind="stable")
    tau_adc = np.zeros(adc.size)
    tau, t_prev = 0.0, float(times[order[0]]) if times.size else 0.0
    for t, kind, i in zip(times[order].tolist(), kinds[order].tolist(), index[order].tolist(), strict=True):
        tau += t - t_prev
        t_prev = t
        if kind == -1:
            tau_adc[i] = tau
        elif kind == RF_EXCITATION:
            tau = 0.0
        elif kind == RF_REFOCUSING:
            tau = -tau
    return tau_adc


def readout_kspace(seq: Any, timeline: Timeline) -> NDArray[np.float64]:
    """Sample positions of every readout, ``(n_adc, n_samples, 3)`` in (kz, ky, kx) order [1/m] (pypulseq's k-space).

    Raises
    ------
    SequenceError
        When readouts differ in sample count (they cannot be stacked).
    """
    samples = np.unique(timeline.adc_samples)
    if samples.size != 1:
        raise SequenceError(
            f"readouts have {sorted(samples.tolist())} samples; the fast engine needs equal readouts: "
            "use --engine bloch"
        )
    k_adc = adc_kspace(seq)  # (3, total samples) in x, y, z [1/m]
    k = k_adc.T.reshape(timeline.n_adc, int(samples[0]), 3)
    return np.ascontiguousarray(k[..., ::-1])


def density_weights(kspace_m: NDArray[np.float64], *, matrix: int, fov_m: float, slice_thickness_m: float) -> Any:
    """Density-compensation weights of a 2D non-Cartesian trajectory as k-space areas [1/m^2].

    Pipe-Menon weights (1 at Cartesian Nyquist density) times one Nyquist cell ``1 / FOV^2``.
    """
    from hifield.ops.nufft import pipe_menon_density

    voxel = (slice_thickness_m, fov_m / matrix, fov_m / matrix)
    cell = 1.0 / fov_m**2
    return (pipe_menon_density(kspace_m, (1, matrix, matrix), voxel) * cell).astype(np.float32)


def sequence_trajectory(sequence: Any) -> Any:
    """The k-space trajectory of a built 2D radial or spiral sequence, with its density weights.

    The positions are the sequence's own (pypulseq's k-space at every ADC sample), so tests, figures and benchmarks
    use the trajectory the protocols play.

    Returns
    -------
    Trajectory
        ``kspace_m`` ``(n_readouts, n_samples, 3)`` [1/m] and ``density`` [1/m^2].
    """
    from hifield.data import Trajectory

    protocol = sequence.protocol
    n, fov = int(protocol.matrix), float(protocol.fov_m)
    timeline = read_timeline(sequence.seq, matrix=n, fov_m=fov, cartesian=False)
    k = readout_kspace(sequence.seq, timeline)
    thickness = float(getattr(protocol, "slice_thickness_m", 0.005))
    return Trajectory(kspace_m=k, density=density_weights(k, matrix=n, fov_m=fov, slice_thickness_m=thickness))
