"""Echo amplitudes of every readout of a sequence per tissue: extended phase graphs over the sequence's own timeline.

The ``fast`` engine separates contrast from encoding. Contrast comes from here: the RF and ADC events of the real
sequence (:mod:`hifield.sim.engines.timeline`: flip angles, RF and receiver phases, exact times) drive an extended
phase graph (Hennig 1988; Weigel, JMRI 2015;41:266) for every tissue at once, so echo trains (TSE, FLAIR, STIR),
RF-spoiled steady states with their real phase schedule, inversion-prepared trains (MPRAGE) and EPI echo trains
all come from one model. Balanced sequences (bSSFP) have no dephasing to count and are handled per voxel by
:func:`bssfp_signal`. :func:`contrast_groups` hands the result to the encoder in ``fast``: readout amplitudes
and voxel maps per chemical-shift spectrum.

Dephasing rules (the sequences' spoilers and crushers are assumed to dephase fully within a voxel, as designed):

* gradient echo family (no refocusing pulse): one unit of dephasing before every excitation after the first
  (the spoiler of the previous TR); readouts sample ``F0`` (the gradient echo);
* spin-echo family: one unit between consecutive events when either is a refocusing pulse (crushers around every
  refocusing pulse, Carr-Purcell-Meiboom-Gill; two units between refocusing pulses whose echo is not read out),
  readouts sample ``F0``; every excitation starts from spoiled
  magnetisation (transverse and longitudinal coherences removed, as the end-of-train spoiler does);
* inversion and saturation pulses are followed by spoiling of the transverse magnetisation.

The effective dephasing time ``tau`` of each readout (time since excitation, sign flipped by every refocusing pulse)
gives the phase of off-resonant spins and the reversible T2' decay ``exp(-|tau| / T2')``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.sim.engines.timeline import RF_EXCITATION, RF_INVERSION, RF_REFOCUSING, Timeline
from hifield.sim.epg import dephase_in_place, relax_in_place, rf_transition
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from hifield.phantom import Phantom

MAX_STATES = 400
"""Highest dephasing order kept in the phase graphs (higher orders have decayed for the trains simulated here)."""
STEADY_STATE_T1_MULTIPLE = 5.0
"""Preparation length in units of the longest T1 when the engine starts the acquisition in steady state."""
_EVENT_ADC = 3


def echo_amplitudes(
    timeline: Timeline,
    t1_s: NDArray[np.floating],
    t2_s: NDArray[np.floating],
    *,
    steady_state: bool = True,
    flip_scale: NDArray[np.floating] | None = None,
) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """Echo amplitude of every readout for every tissue, per unit M0, and each readout's dephasing time.

    Parameters
    ----------
    timeline
        Events of the sequence (:func:`~hifield.sim.engines.timeline.read_timeline`).
    t1_s, t2_s
        Relaxation times of each tissue [s], shape ``(n_tissue,)``.
    steady_state
        Start the recorded pass in the sequence's own steady state: the sequence is first played (without
        recording) for at least five times the longest T1, as preparation (dummy) scans would. ``False`` starts
        from full relaxation, transients included.
    flip_scale
        Relative B1+ of each tissue row, shape ``(n_tissue,)``: every flip angle of that row is scaled by it
        (rows can be one tissue at several B1+ scales). ``None``: nominal flip angles.

    Returns
    -------
    amplitudes
        ``(n_adc, n_tissue)`` complex echo of each readout at its centre, demodulated by the receiver phase; an
        ideal 90 degree excitation about x of full magnetisation gives ``+1``.
    tau_s
        ``(n_adc,)`` effective dephasing time of each readout centre [s]: the time since excitation for gradient
        echoes, the distance from the spin echo for spin echoes.

    Examples
    --------
    >>> from hifield.hardware import Scanner
    >>> from hifield.sequence import GreProtocol
    >>> from hifield.sim.engines.timeline import read_timeline
    >>> built = GreProtocol(matrix=16, fov_m=0.2, tr_s=0.5, te_s=0.005, flip_angle_rad=1.0).build(Scanner.preset("3T"))
    >>> a, tau = echo_amplitudes(read_timeline(built.seq, matrix=16, fov_m=0.2), np.array([1.0]), np.array([0.05]))
    >>> e1 = np.exp(-0.5)
    >>> ernst = np.sin(1.0) * (1 - e1) / (1 - e1 * np.cos(1.0)) * np.exp(-tau[0] / 0.05)
    >>> bool(abs(abs(a[-1, 0]) / ernst - 1) < 0.01)
    True
    """
    t1 = np.asarray(t1_s, dtype=np.float64).reshape(-1)
    t2 = np.asarray(t2_s, dtype=np.float64).reshape(-1)
    n_tissue = t1.size
    spin_echo = timeline.has_refocusing
    row_scale = None if flip_scale is None else np.asarray(flip_scale, dtype=np.float64).reshape(-1, 1)
    if row_scale is not None and row_scale.shape[0] != n_tissue:
        raise ConfigError(f"flip_scale has {row_scale.shape[0]} rows for {n_tissue} tissues; give one per tissue")

    # events in time order: (time, kind, index); kinds 0-2 are RF kinds, 3 is a readout
    times = np.concatenate((timeline.rf_time_s, timeline.adc_time_s))
    kinds = np.concatenate((timeline.rf_kind.astype(np.int64), np.full(timeline.n_adc, _EVENT_ADC)))
    index = np.concatenate((np.arange(timeline.rf_time_s.size), np.arange(timeline.n_adc)))
    order = np.argsort(times, kind="stable")
    times, kinds, index = times[order], kinds[order], index[order]

    n_exc = int(np.count_nonzero(timeline.rf_kind == RF_EXCITATION))
    n_ref = int(np.count_nonzero(timeline.rf_kind == RF_REFOCUSING))
    n_states = min(MAX_STATES, 2 * n_ref + n_exc + 2)
    fp = np.zeros((n_tissue, n_states), dtype=np.complex128)
    fm = np.zeros_like(fp)
    z = np.zeros_like(fp)
    z[:, 0] = 1.0

    n_prep = 0
    if steady_state:
        n_prep = max(1, math.ceil(STEADY_STATE_T1_MULTIPLE * float(t1.max()) / max(timeline.duration_s, 1e-9)))
    amplitudes = np.zeros((timeline.n_adc, n_tissue), dtype=np.complex128)
    tau_adc = np.zeros(timeline.n_adc, dtype=np.float64)
    wrap = timeline.duration_s - float(times[-1]) + float(times[0])  # last event -> first event of the next pass

    prev_kind = -1  # kind of the previous event (carried across passes)
    exc_ordinal = np.cumsum(timeline.rf_kind == RF_EXCITATION) - 1  # excitation number of each RF pulse
    exc_phase = _excitation_phase_schedule(timeline)
    for p in range(n_prep + 1):
        record = p == n_prep
        shift = (p - n_prep) * n_exc  # preparation passes continue the RF phase schedule backwards in time
        t_prev = float(times[0])
        tau = 0.0
        if p > 0:
            relax_in_place(fp, fm, z, wrap, t1, t2)
        for t, kind, i in zip(times.tolist(), kinds.tolist(), index.tolist(), strict=True):
            dt = t - t_prev
            if dt > 0:
                relax_in_place(fp, fm, z, dt, t1, t2)
                tau += dt
            t_prev = t
            if spin_echo:
                if kind in (RF_EXCITATION, RF_INVERSION):
                    fp[:] = 0.0
                    fm[:] = 0.0
                    z[:, 1:] = 0.0
                elif prev_kind == RF_REFOCUSING or kind == RF_REFOCUSING:
                    dephase_in_place(fp, fm)
                    if prev_kind == kind == RF_REFOCUSING:  # an echo without readout between two refocusing pulses
                        dephase_in_place(fp, fm)
            elif kind == RF_EXCITATION and prev_kind >= 0:
                dephase_in_place(fp, fm)
            if kind == _EVENT_ADC:
                if record:
                    amplitudes[i] = fp[:, 0]
                    tau_adc[i] = tau
            else:
                phi = float(timeline.rf_phase_rad[i])
                if kind == RF_EXCITATION and not record and exc_phase is not None:
                    phi = exc_phase(int(exc_ordinal[i]) + shift)
                flip = float(timeline.rf_flip_rad[i])
                fp, fm, z = rf_transition(fp, fm, z, flip if row_scale is None else flip * row_scale, phi)
                if kind == RF_EXCITATION:
                    tau = 0.0
                elif kind == RF_REFOCUSING:
                    tau = -tau
                else:  # inversion / saturation: the spoiler after it removes transverse magnetisation
                    fp[:] = 0.0
                    fm[:] = 0.0
            prev_kind = kind

    # receiver: demodulate by the ADC phase; rotate so that a 90 degree pulse about x (phase 0) gives +1
    receiver = 1j * np.exp(-1j * timeline.adc_phase_rad)
    return amplitudes * receiver[:, np.newaxis], tau_adc


def _excitation_phase_schedule(timeline: Timeline) -> Callable[[int], float] | None:
    """The excitation phases as a quadratic schedule ``phi(m) = phi0 + d1 m + psi m (m - 1) / 2`` (RF spoiling,
    bSSFP alternation, constant phase), extendable to earlier excitations; ``None`` if the phases follow no such law.
    """
    phases = timeline.rf_phase_rad[timeline.rf_kind == RF_EXCITATION]
    if phases.size < 3:
        return None
    d1 = float(phases[1] - phases[0])
    psi = float(phases[2] - 2 * phases[1] + phases[0])
    phi0 = float(phases[0])
    m = np.arange(phases.size, dtype=np.float64)
    predicted = phi0 + d1 * m + psi * m * (m - 1) / 2
    error = np.angle(np.exp(1j * (predicted - phases)))
    if np.max(np.abs(error)) > 1e-6:
        return None
    return lambda k: phi0 + d1 * k + psi * k * (k - 1) / 2


def bssfp_signal(
    t1_s: NDArray[np.floating] | float,
    t2_s: NDArray[np.floating] | float,
    *,
    flip_angle_rad: NDArray[np.floating] | float,
    tr_s: float,
    te_s: float,
    off_resonance_hz: NDArray[np.floating] | float,
    phase_increment_rad: float = math.pi,
) -> NDArray[np.complex128]:
    """Steady-state transverse magnetisation of balanced SSFP at ``te_s`` after each pulse, per unit M0.

    Instantaneous pulses about x, RF phase advancing by ``phase_increment_rad`` per TR (pi: the usual alternating
    +alpha/-alpha), receiver following the RF phase; free precession ``exp(-i 2 pi df t)`` (hifield's sign
    convention) with T1/T2 relaxation. Solved exactly per voxel as the fixed point of one TR (3 x 3 systems).

    Examples
    --------
    >>> import numpy as np
    >>> tr, a, t1, t2 = 5e-3, np.radians(40.0), 0.8, 0.1
    >>> e1, e2 = np.exp(-tr / t1), np.exp(-tr / t2)
    >>> on = np.sin(a) * (1 - e1) / (1 - (e1 - e2) * np.cos(a) - e1 * e2) * np.exp(-tr / 2 / t2)
    >>> s = bssfp_signal(t1, t2, flip_angle_rad=a, tr_s=tr, te_s=tr / 2, off_resonance_hz=0.0)
    >>> bool(np.isclose(abs(s), on))
    True
    """
    t1, t2, alpha, df = np.broadcast_arrays(
        np.asarray(t1_s, dtype=np.float64),
        np.asarray(t2_s, dtype=np.float64),
        np.asarray(flip_angle_rad, dtype=np.float64),
        np.asarray(off_resonance_hz, dtype=np.float64),
    )
    shape = t1.shape
    t1, t2, alpha, df = (a.reshape(-1) for a in (t1, t2, alpha, df))
    e1 = np.exp(-tr_s / t1)
    e2 = np.exp(-tr_s / t2)
    theta = -2.0 * np.pi * df * tr_s + phase_increment_rad  # precession per TR in the frame following the RF
    n = t1.size
    c, s = np.cos(theta), np.sin(theta)
    # free precession + relaxation over a TR: m -> A m + b, A = diag(E2, E2, E1) P(theta)
    a_mat = np.zeros((n, 3, 3))
    a_mat[:, 0, 0], a_mat[:, 0, 1] = e2 * c, -e2 * s
    a_mat[:, 1, 0], a_mat[:, 1, 1] = e2 * s, e2 * c
    a_mat[:, 2, 2] = e1
    b = np.zeros((n, 3))
    b[:, 2] = 1.0 - e1
    # rotation about x by alpha: (Mx, My, Mz) -> (Mx, My cos a + Mz sin a, -My sin a + Mz cos a)
    ca, sa = np.cos(alpha), np.sin(alpha)
    r = np.zeros((n, 3, 3))
    r[:, 0, 0] = 1.0
    r[:, 1, 1], r[:, 1, 2] = ca, sa
    r[:, 2, 1], r[:, 2, 2] = -sa, ca
    # just after a pulse: m+ = R (A m+ + b)  =>  (I - R A) m+ = R b
    lhs = np.eye(3)[np.newaxis] - r @ a_mat
    m_plus = np.linalg.solve(lhs, (r @ b[:, :, np.newaxis]))[:, :, 0]
    mxy = (m_plus[:, 0] + 1j * m_plus[:, 1]) * np.exp(-te_s / t2) * np.exp(-2j * np.pi * df * te_s)
    return mxy.reshape(shape)


B1_STEP = 0.02
"""Spacing of the B1+ scale grid on which phase graphs are run when the phantom carries a B1+ map."""
B1_MAX_BINS = 24
"""Most B1+ scale bins of a slice: for wide B1+ ranges the spacing grows to a whole multiple of :data:`B1_STEP`
(one phase graph per bin; 24 keeps the 7 T brain's 0.6-1.5 range at 0.04, whose interpolation error in the image,
4e-4 relative, is below that of the 16 bins of 0.047 used before)."""


_ECHO_CACHE: OrderedDict[bytes, dict[int, tuple[NDArray[np.complex128], NDArray[np.float64]]]] = OrderedDict()
"""Phase graphs already run, by timeline and tissues (:func:`_timeline_key`), then by B1+ scale in B1_STEP units."""
_ECHO_CACHE_TIMELINES = 4
"""Timelines whose phase graphs are kept (a stack's worker alternates a few: reference, accelerated, prescan)."""


def _timeline_key(
    timeline: Timeline, t1_s: NDArray[np.float64], t2_s: NDArray[np.float64], *, steady_state: bool
) -> bytes:
    """Digest of everything :func:`echo_amplitudes` reads besides the flip scale: the RF and ADC events (times,
    flips, phases, kinds), the pass duration, the tissues' relaxation times and the steady-state choice."""
    digest = hashlib.blake2b(digest_size=20)
    for array in (
        timeline.rf_time_s, timeline.rf_flip_rad, timeline.rf_phase_rad, timeline.rf_kind,
        timeline.adc_time_s, timeline.adc_phase_rad, t1_s, t2_s,
    ):  # fmt: skip
        contiguous = np.ascontiguousarray(array)
        digest.update(str((contiguous.dtype, contiguous.shape)).encode())
        digest.update(contiguous.tobytes())
    digest.update(repr((float(timeline.duration_s), bool(steady_state))).encode())
    return digest.digest()


def _cached_echo_amplitudes(
    timeline: Timeline,
    t1_s: NDArray[np.float64],
    t2_s: NDArray[np.float64],
    scales: NDArray[np.float64],
    *,
    steady_state: bool,
) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
    """:func:`echo_amplitudes` of every tissue at every B1+ scale (multiples of :data:`B1_STEP`), columns
    ``bin * n_tissue + tissue``, running the phase graphs only for the scales not yet run for this timeline.

    Rows of the phase graphs are independent (the preparation length depends on the longest T1 of ``t1_s``, which
    is part of the key), so a column computed with other scales beside it is the same column.
    """
    key = _timeline_key(timeline, t1_s, t2_s, steady_state=steady_state)
    columns = _ECHO_CACHE.pop(key, {})
    _ECHO_CACHE[key] = columns  # most recently used last
    while len(_ECHO_CACHE) > _ECHO_CACHE_TIMELINES:
        _ECHO_CACHE.popitem(last=False)
    units = [round(float(scale) / B1_STEP) for scale in scales]
    missing = sorted({u for u in units if u not in columns})
    if missing:
        n_t = t1_s.size
        amplitudes, tau = echo_amplitudes(
            timeline,
            np.tile(t1_s, len(missing)),
            np.tile(t2_s, len(missing)),
            steady_state=steady_state,
            flip_scale=np.repeat(np.asarray(missing, dtype=np.float64) * B1_STEP, n_t),
        )
        for j, unit in enumerate(missing):
            columns[unit] = (amplitudes[:, j * n_t : (j + 1) * n_t].copy(), tau)
    tau_s = columns[units[0]][1]
    return np.concatenate([columns[u][0] for u in units], axis=1), tau_s.copy()


def select_slice(timeline: Timeline, slice_index: int = 0) -> Timeline:
    """The events that act on one slice of a multi-slice sequence: its readouts and the pulses at its frequency."""
    if not np.any(timeline.adc_slice != slice_index):
        return timeline
    keep_adc = timeline.adc_slice == slice_index
    first = float(timeline.adc_time_s[keep_adc][0])
    exc = np.flatnonzero((timeline.rf_kind == RF_EXCITATION) & (timeline.rf_time_s < first))
    freq = float(timeline.rf_freq_hz[exc[-1]]) if exc.size else 0.0
    keep_rf = (np.abs(timeline.rf_freq_hz - freq) < 1e-3) | (
        (timeline.rf_kind == RF_INVERSION) & (np.abs(timeline.rf_freq_hz) < 1e-3)
    )
    adc_fields = [f.name for f in dataclasses.fields(timeline) if f.name.startswith("adc_")]
    rf_fields = [f.name for f in dataclasses.fields(timeline) if f.name.startswith("rf_")]
    changes: dict[str, Any] = {name: getattr(timeline, name)[keep_adc] for name in adc_fields}
    changes.update({name: getattr(timeline, name)[keep_rf] for name in rf_fields})
    return dataclasses.replace(timeline, **changes)


@dataclass(frozen=True)
class ContrastGroup:
    """Voxel maps that share one chemical-shift spectrum and their amplitudes per readout.

    Without a B1+ map, column ``c`` of ``amplitudes`` belongs to voxel map ``maps[c]``. With one, the columns are
    ``(B1+ bin, tissue)`` pairs (bin-major) and ``maps`` holds one map per tissue: a voxel takes its tissue's
    amplitudes interpolated linearly between the two B1+ bins around its own B1+ scale (``b1_bin``, ``b1_weight``),
    so no map per bin is ever stored.
    """

    maps: NDArray[np.float64] | NDArray[np.complex128]
    """``(map, z, y, x)``: fraction x proton density per tissue (complex images for bSSFP)."""
    amplitudes: NDArray[np.complex128]
    """``(n_adc, column)``."""
    peaks_hz: tuple[float, ...]
    peak_amplitudes: tuple[float, ...]
    b1_bin: NDArray[np.intp] | None = None
    """``(z, y, x)`` index of the B1+ bin at or below each voxel's scale (None without a B1+ map)."""
    b1_weight: NDArray[np.float64] | None = None
    """``(z, y, x)`` weight of the bin above (1 - weight for ``b1_bin``)."""
    decay_per_s: NDArray[np.float64] | None = None
    """``(2, column)``: R2 = 1/T2 and R2' = 1/T2* - 1/T2 [1/s] of each column's tissue, for the decay between a
    readout's samples (the amplitudes hold the echo at the readout's centre sample); None: no decay along it."""

    def image(self, weights: NDArray[np.complexfloating]) -> NDArray[np.complex128]:
        """The image ``(z, y, x)`` of one combination ``weights`` ``(column,)`` of the columns.

        Examples
        --------
        >>> g = ContrastGroup(np.ones((2, 1, 1, 2)), np.ones((1, 2), complex), (0.0,), (1.0,))
        >>> g.image(np.array([1.0, 2j])).ravel().tolist()
        [(1+2j), (1+2j)]
        """
        n_maps = self.maps.shape[0]
        flat = self.maps.reshape(n_maps, -1)
        weights = np.asarray(weights, dtype=np.complex128)
        out = np.empty(flat.shape[1], dtype=np.complex128)
        if self.b1_bin is None or self.b1_weight is None:
            if np.iscomplexobj(flat):
                out[:] = weights @ flat
            else:  # two real products: no complex copy of the maps
                out.real = weights.real @ flat
                out.imag = weights.imag @ flat
            return out.reshape(self.maps.shape[1:])
        per_bin = weights.reshape(-1, n_maps)  # (bin, tissue)
        lower = self.b1_bin.ravel()
        upper = np.minimum(lower + 1, per_bin.shape[0] - 1)
        above = self.b1_weight.ravel()
        out[:] = 0.0
        for k in range(n_maps):
            low = per_bin[lower, k]
            out += flat[k] * (low + (per_bin[upper, k] - low) * above)
        return out.reshape(self.maps.shape[1:])


def contrast_groups(
    phantom: Phantom, timeline: Timeline, b0_t: float, *, steady_state: bool
) -> tuple[list[ContrastGroup], NDArray[np.float64]]:
    """Tissue contrast of every readout, grouped by chemical-shift spectrum, and each readout's dephasing time.

    Echo trains, spoiled steady states and prepared trains: phase graphs per tissue (per B1+ bin when the phantom
    has a B1+ map). Balanced sequences: the bSSFP steady state per voxel, which depends on each voxel's off-resonance
    and each fat peak's shift, so every peak becomes a group of its own and ``tau`` counts from the echo.
    """
    tissues = [(i, t) for i, t in enumerate(phantom.tissues) if t.pd > 0]
    if not tissues:
        raise ConfigError("the phantom has no tissue with proton density above 0; there is no signal to simulate")
    fractions = phantom.fractions
    b1 = phantom.b1_scale.astype(np.float64) if phantom.b1_scale is not None else None
    groups: list[ContrastGroup] = []

    if timeline.balanced:
        exc = timeline.rf_time_s[timeline.rf_kind == RF_EXCITATION]
        flips = timeline.rf_flip_rad[timeline.rf_kind == RF_EXCITATION]
        tr = float(np.median(np.diff(exc)))
        last_exc = exc[np.searchsorted(exc, timeline.adc_time_s) - 1]
        te = float(np.median(timeline.adc_time_s - last_exc))
        alpha = float(np.median(flips)) * (b1 if b1 is not None else 1.0)
        offset = phantom.off_resonance_hz.astype(np.float64)
        ones = np.ones((timeline.n_adc, 1), dtype=np.complex128)
        for index, tissue in tissues:
            for shift_ppm, weight in zip(tissue.chemical_shift_ppm, tissue.peak_amplitudes, strict=True):
                df = GAMMA_BAR_HZ_PER_T * b0_t * shift_ppm * 1e-6
                signal = bssfp_signal(
                    tissue.t1_s, tissue.t2_s, flip_angle_rad=alpha, tr_s=tr, te_s=te, off_resonance_hz=offset + df
                )
                # the phase of the total off-resonance at TE is in ``signal``; the readout adds the rest
                image = fractions[index] * tissue.pd * weight * signal * np.exp(2j * np.pi * offset * te)
                rates = np.array([[1.0 / tissue.t2_s], [0.0]])  # bSSFP refocuses R2' at its echo (not modelled)
                groups.append(ContrastGroup(image[np.newaxis], ones, (df,), (1.0,), decay_per_s=rates))
        tau = timeline.adc_time_s - last_exc - te
        return groups, tau

    t1 = np.array([t.t1_s for _, t in tissues])
    t2 = np.array([t.t2_s for _, t in tissues])
    r2p = np.array([max(1.0 / t.t2star_s - 1.0 / t.t2_s, 0.0) for _, t in tissues])
    b1_step = B1_STEP
    if b1 is None:
        amplitudes, tau = echo_amplitudes(timeline, t1, t2, steady_state=steady_state)
        amplitudes = amplitudes * np.exp(-np.abs(tau)[:, np.newaxis] * r2p[np.newaxis, :])
        columns: list[tuple[int, tuple[int, float] | None]] = [(k, None) for k in range(len(tissues))]
    else:
        # B1+ scales every flip angle per voxel: phase graphs on a grid of scales (at most B1_MAX_BINS, one
        # vectorised pass over all of them), linear interpolation between
        # only voxels with tissue matter (the map may be extreme in empty space, e.g. next to the coil elements)
        occupied = b1[fractions.sum(axis=0) > 0]
        lo, hi = (float(occupied.min()), float(occupied.max())) if occupied.size else (1.0, 1.0)
        # the spacing is a whole multiple of B1_STEP, so the bins of neighbouring slices of a stack coincide and
        # their phase graphs are computed once (_cached_echo_amplitudes)
        step = B1_STEP * max(1, math.ceil((hi - lo) / (B1_MAX_BINS * B1_STEP) - 1e-9))
        edges = np.arange(np.floor(lo / step), np.ceil(hi / step) + 1) * step
        n_t = len(tissues)
        amplitudes, tau = _cached_echo_amplitudes(
            timeline, t1, t2, edges, steady_state=steady_state
        )  # column = bin * n_tissue + tissue
        amplitudes = amplitudes * np.exp(-np.abs(tau)[:, np.newaxis] * np.tile(r2p, edges.size)[np.newaxis, :])
        columns = [(k, (j, float(scale))) for j, scale in enumerate(edges) for k in range(n_t)]
        b1_step = step

    b1_bin = b1_weight = None
    if b1 is not None:
        position = np.clip((b1 - edges[0]) / b1_step, 0.0, edges.size - 1.0)
        b1_bin = np.minimum(np.floor(position).astype(np.intp), max(edges.size - 2, 0))
        b1_weight = np.clip(position - b1_bin, 0.0, 1.0)
    by_spectrum: dict[tuple[tuple[float, ...], tuple[float, ...]], list[int]] = {}
    for k, (_, tissue) in enumerate(tissues):
        key = (tuple(tissue.chemical_shift_ppm), tuple(tissue.peak_amplitudes))
        by_spectrum.setdefault(key, []).append(k)
    for (shifts_ppm, peak_amps), members in by_spectrum.items():
        maps = np.empty((len(members), *fractions.shape[1:]), dtype=np.float64)
        for m, k in enumerate(members):
            index, tissue = tissues[k]
            maps[m] = fractions[index].astype(np.float64) * tissue.pd
        # the columns of this group's tissues, bin-major (column = bin * n_tissue + tissue)
        cols = [c for c, (k, _) in enumerate(columns) if k in members]
        peaks = tuple(GAMMA_BAR_HZ_PER_T * b0_t * ppm * 1e-6 for ppm in shifts_ppm)
        decay = np.stack([1.0 / t2, r2p])[:, [columns[c][0] for c in cols]]
        groups.append(
            ContrastGroup(maps, amplitudes[:, cols], peaks, tuple(peak_amps), b1_bin, b1_weight, decay_per_s=decay)
        )
    return groups, tau
