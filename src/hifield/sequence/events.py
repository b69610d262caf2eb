"""Facts read from pypulseq events: an RF pulse's flip angle, centre and role; where each readout lands in k-space."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import SequenceError
from hifield.sequence.kspace import adc_kspace

ROLE_THRESHOLD_RAD = math.radians(120.0)
"""Pulses without a declared use: below this flip angle they excite, above it they refocus or invert."""


@dataclass(frozen=True)
class RfFacts:
    """What one RF event does: flip angle [rad], centre from the block start [s], phase of its shape [rad], use."""

    flip_rad: float
    centre_s: float
    shape_phase_rad: float
    use: str


def rf_facts(rf: Any) -> RfFacts:
    """Flip angle, centre, shape phase and declared use (``rf.use``, ``"undefined"`` if absent) of a pypulseq RF.

    The flip angle is ``2 pi |integral of the B1 shape [Hz] dt|``: a sum over samples on a uniform raster (sample
    ``i`` at ``(i + 1/2) dt``), the trapezoidal integral of a time-shaped (piecewise-linear) pulse such as
    pypulseq's block pulse.

    Examples
    --------
    >>> import pypulseq as pp
    >>> block = pp.make_block_pulse(math.pi / 2, duration=1e-3, use="excitation")
    >>> sinc = pp.make_sinc_pulse(math.pi, duration=2e-3, use="refocusing")
    >>> [round(math.degrees(rf_facts(rf).flip_rad), 1) for rf in (block, sinc)]
    [90.0, 180.0]
    >>> rf_facts(sinc).use
    'refocusing'
    """
    signal = np.asarray(rf.signal, dtype=np.complex128)
    t = np.asarray(rf.t, dtype=np.float64)
    steps = np.diff(t)
    if t.size > 2 and np.allclose(steps, steps[0]) and abs(t[0] - steps[0] / 2) < 1e-3 * steps[0]:
        integral = complex(np.sum(signal) * steps[0])
    else:
        integral = complex(np.trapezoid(signal, t))
    centre = getattr(rf, "center", None)
    if centre is None:
        peak = np.flatnonzero(np.abs(signal) >= np.abs(signal).max() * 0.99999)
        centre = 0.5 * (t[peak[0]] + t[peak[-1]])
    return RfFacts(
        flip_rad=2.0 * math.pi * abs(integral),
        centre_s=float(rf.delay) + float(centre),
        shape_phase_rad=math.atan2(integral.imag, integral.real) if abs(integral) > 0 else 0.0,
        use=str(getattr(rf, "use", "undefined") or "undefined"),
    )


def readout_lines(
    seq: Any,
    centre_samples: NDArray[np.int64],
    *,
    matrix: int,
    fov_m: float,
    n_z: int = 1,
    fov_z_m: float = 1.0,
    blocks: NDArray[np.int64] | None = None,
) -> dict[str, NDArray[Any]]:
    """k-space line (``k1``, ``k2``) and ``avg``, ``slc``, ``rev`` of every readout of a Cartesian sequence.

    Lines come from the ``LIN``/``PAR``/``AVG``/``SLC``/``REV`` labels when the sequence carries them, else from the
    k-space position of each readout's centre sample (``round(ky * fov) + matrix // 2``, likewise along z).

    Parameters
    ----------
    seq
        A ``pypulseq.Sequence``.
    centre_samples
        Index of each readout's centre sample among all ADC samples of the sequence, in order.
    matrix, fov_m
        In-plane matrix and field of view [m].
    n_z, fov_z_m
        Partitions and slab thickness [m] of a 3D acquisition.
    blocks
        Block id of each readout, to name it in errors.

    Raises
    ------
    SequenceError
        When a readout lands outside the grid.
    """
    n_adc = int(np.asarray(centre_samples).size)
    labels = seq.evaluate_labels(evolution="adc") if n_adc else {}

    def label(name: str) -> NDArray[np.int64] | None:
        value = labels.get(name)
        if value is None or np.asarray(value).size != n_adc:
            return None
        return np.asarray(value, dtype=np.int64).reshape(n_adc)

    k1, k2 = label("LIN"), label("PAR")
    if k1 is None:
        k_adc = adc_kspace(seq)  # (3, samples) in x, y, z [1/m]
        k1 = np.rint(k_adc[1, centre_samples] * fov_m).astype(np.int64) + matrix // 2
        if n_z > 1:
            k2 = np.rint(k_adc[2, centre_samples] * fov_z_m).astype(np.int64) + n_z // 2
    if k2 is None:
        k2 = np.zeros(n_adc, dtype=np.int64)
    bad = (k1 < 0) | (k1 >= matrix) | (k2 < 0) | (k2 >= n_z)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        where = f"the ADC in block {int(blocks[i])}" if blocks is not None else f"readout {i}"
        raise SequenceError(
            f"{where} lands on line k1={int(k1[i])}, k2={int(k2[i])} outside the {n_z} x {matrix} grid; "
            f"check the sequence's LIN/PAR labels or its phase encoding"
        )
    zeros = np.zeros(n_adc, dtype=np.int64)
    avg, slc, rev = label("AVG"), label("SLC"), label("REV")
    return {
        "k1": k1,
        "k2": k2,
        "avg": avg if avg is not None else zeros,
        "slc": slc if slc is not None else zeros,
        "rev": (rev != 0) if rev is not None else zeros.astype(bool),
    }


GRID_TOLERANCE: float = 0.05
"""How far (in grid steps) a readout sample may lie from its Cartesian grid point and still count as on it."""


def cartesian_lines_from_kspace(seq: Any, *, fov_m: float = 0.0) -> tuple[NDArray[np.int64], float] | None:
    """Phase-encode line of every readout when all readouts lie on one 2D Cartesian grid, else ``None``.

    A sequence is Cartesian when every ADC has the same number of samples; each readout runs along x with uniformly
    spaced samples (the same step in every readout) and crosses kx = 0 at its centre sample (within a step); ky and
    kz are constant during each readout; ky is a whole multiple of the phase-encode step 1 / ``fov_m`` (the readout
    step when ``fov_m`` is 0) and kz is the same for all readouts. Radial and spiral readouts fail these tests and
    stay non-Cartesian.

    Returns
    -------
    (lines, fov_m)
        The line of each readout, ``round(ky * fov) + matrix // 2`` with ``matrix`` the samples per readout, in
        acquisition order (the order of the phase-encode areas), and the field of view used [m].
    """
    t_adc, _ = seq.adc_times()
    n_total = int(np.asarray(t_adc).size)
    samples_of: dict[int, int] = {}  # per ADC event id: decompress one block per distinct ADC only
    sizes = []
    for block_id, events in seq.block_events.items():
        adc_id = int(events[5])
        if adc_id:
            if adc_id not in samples_of:
                samples_of[adc_id] = int(seq.get_block(block_id).adc.num_samples)
            sizes.append(samples_of[adc_id])
    if not sizes or len(set(sizes)) != 1 or sizes[0] < 2 or sizes[0] * len(sizes) != n_total:
        return None
    n = sizes[0]
    k = adc_kspace(seq).reshape(3, len(sizes), n)  # x, y, z [1/m]
    kx, ky, kz = k[0], k[1], k[2]
    steps = np.diff(kx, axis=1)
    step = float(np.median(np.abs(steps)))
    if step <= 0 or not np.allclose(np.abs(steps), step, rtol=0.01, atol=0.0):
        return None
    if np.any(np.min(np.abs(kx), axis=1) > 0.5 * step * (1 + GRID_TOLERANCE)):  # kx = 0 within half a step
        return None
    if np.any(np.abs(kx[:, n // 2]) > step * (1 + GRID_TOLERANCE)):  # ... near the centre sample
        return None
    fov = fov_m if fov_m > 0 else 1.0 / step
    pe_step = 1.0 / fov
    tol = GRID_TOLERANCE * min(step, pe_step)
    if np.any(np.ptp(ky, axis=1) > tol) or np.any(np.ptp(kz, axis=1) > tol) or np.ptp(kz[:, n // 2]) > tol:
        return None
    pos = ky[:, n // 2] / pe_step
    lines = np.rint(pos)
    if np.any(np.abs(pos - lines) > GRID_TOLERANCE):
        return None
    lines = lines.astype(np.int64) + n // 2
    if np.any((lines < 0) | (lines >= n)):
        return None
    return lines, fov


def rf_bandwidth_hz(rf: Any, *, resolution_hz: float = 10.0) -> float:
    """Full width at half maximum [Hz] of an RF pulse's spectrum (small-tip approximation).

    The complex shape is resampled on a 1 us raster and zero-padded to ``resolution_hz``; the half-maximum crossings
    are interpolated linearly. The pulse's frequency offset only moves the spectrum, so it is left out (pypulseq's
    ``calc_rf_bandwidth`` multiplies by a real exponential when an offset is set).

    Examples
    --------
    >>> import pypulseq as pp
    >>> rf = pp.make_sinc_pulse(math.radians(10), duration=3e-3, time_bw_product=4, apodization=0.42)
    >>> round(rf_bandwidth_hz(rf))  # close to the nominal 4 / 3 ms
    1332
    """
    t = np.asarray(rf.t, dtype=np.float64)
    signal = np.asarray(rf.signal, dtype=np.complex128)
    dt = 1e-6
    grid = np.arange(t[0], t[-1] + 0.5 * dt, dt)
    samples = np.interp(grid, t, signal.real) + 1j * np.interp(grid, t, signal.imag)
    n = max(round(1.0 / (resolution_hz * dt)), grid.size)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft(samples, n)))
    freq = np.fft.fftshift(np.fft.fftfreq(n, dt))
    half = 0.5 * float(spectrum.max())
    above = np.flatnonzero(spectrum >= half)
    if half <= 0 or above[0] == 0 or above[-1] == n - 1:
        return 0.0

    def crossing(inside: int, outside: int) -> float:
        a, b = spectrum[outside], spectrum[inside]
        return float(freq[outside] + (half - a) * (freq[inside] - freq[outside]) / (b - a))

    return crossing(int(above[-1]), int(above[-1]) + 1) - crossing(int(above[0]), int(above[0]) - 1)


def slice_thickness_from_excitation(seq: Any) -> float | None:
    """Slice thickness [m] that the first excitation of ``seq`` plays: RF bandwidth / slice-select gradient.

    The excitation is the first RF declared for excitation (or undeclared, below 120 degrees); the gradient is the
    magnitude over x, y and z at the pulse's centre [Hz/m], the bandwidth the FWHM of the pulse's spectrum
    (:func:`rf_bandwidth_hz`), so the result is the small-tip FWHM of the slice profile: within 1 % of the nominal
    thickness for a sinc of time-bandwidth product 4, wider for shorter products. ``None`` when no excitation is
    played with a gradient (a non-selective pulse).
    """
    from hifield.sequence.checks import _event_shape

    for block_id, events in seq.block_events.items():
        if not events[1]:
            continue
        block = seq.get_block(block_id)
        facts = rf_facts(block.rf)
        if facts.use not in ("excitation", "undefined") or (
            facts.use == "undefined" and facts.flip_rad >= ROLE_THRESHOLD_RAD
        ):
            continue
        amplitude_sq = 0.0
        for axis in ("gx", "gy", "gz"):
            event = getattr(block, axis, None)
            if event is not None:
                t, g = _event_shape(event)
                amplitude_sq += float(np.interp(facts.centre_s, t, g, left=0.0, right=0.0)) ** 2
        bandwidth = rf_bandwidth_hz(block.rf)
        if amplitude_sq <= 0.0 or bandwidth <= 0.0:
            return None
        return bandwidth / math.sqrt(amplitude_sq)
    return None
