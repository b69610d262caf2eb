"""Off-resonance in the fast engine: a B0 map split into a few frequencies by multi-frequency interpolation.

Every readout sample at time ``t`` (relative to the k-space centre) carries the phase ``exp(-i 2 pi f t)`` of its
voxel's off-resonance ``f``. Encoding each voxel at its own frequency is a non-Fourier transform; instead the phase
is written as a combination of a few fixed frequencies ``f_j`` with per-voxel weights,

    exp(-i 2 pi f t)  ~=  sum_j  w_j(f) exp(-i 2 pi f_j t),

so the encoding needs one Fourier transform per ``f_j``. The weights are the least-squares fit over the readout's
time span (multi-frequency interpolation: Man, Pauly & Macovski, MRM 1997;37:785), which needs far fewer
frequencies than linear interpolation between neighbouring ones for the same error: about the time-bandwidth
product of the phase (frequency range x time span, in cycles) plus a few.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["TOLERANCE", "frequency_segments", "interpolation_error"]

TOLERANCE = 1e-3
"""Largest error of the interpolated phase factor ``|exp(-i 2 pi f t) - sum_j w_j exp(-i 2 pi f_j t)|`` over the
readout's time span and the map's frequency range (the factor has magnitude 1, so this is a relative error)."""

_N_TIMES = 129
"""Least number of times the fit is made on (more for long spans: at least 16 per cycle of the fastest phase)."""
_N_FREQUENCIES = 1025
_MAX_SEGMENTS = 512
_MAX_WEIGHT = 10.0
"""Largest weight accepted: a fit that cancels large weights would lose the accuracy of complex64 images."""


def _fit(
    frequencies: NDArray[np.float64],
    times: NDArray[np.float64],
    grid: NDArray[np.float64],
    target: NDArray[np.complex128] | None = None,
) -> NDArray[np.complex128]:
    """Least-squares weights ``(len(frequencies), len(grid))`` of every grid frequency on the fixed ones
    (``target``: the phase factors ``exp(-i 2 pi t f)`` of ``times`` x ``grid``, when already at hand)."""
    basis = np.exp(-2j * np.pi * np.outer(times, frequencies))  # (times, segments)
    if target is None:
        target = np.exp(-2j * np.pi * np.outer(times, grid))  # (times, grid)
    # the minimum-norm least-squares solution (as np.linalg.lstsq, rcond=None) through the small basis's SVD: one
    # factorisation for every grid column instead of a solver call over all of them
    u, sv, vh = np.linalg.svd(basis, full_matrices=False)
    keep = sv > np.finfo(np.float64).eps * max(basis.shape) * sv[0]
    return (vh[keep].conj().T / sv[keep]) @ (u[:, keep].conj().T @ target)


def interpolation_error(
    frequencies: NDArray[np.float64],
    weights: NDArray[np.complex128],
    times: NDArray[np.float64],
    grid: NDArray[np.float64],
    target: NDArray[np.complex128] | None = None,
) -> float:
    """Largest ``|exp(-i 2 pi f t) - sum_j w_j(f) exp(-i 2 pi f_j t)|`` over ``times`` x ``grid``."""
    basis = np.exp(-2j * np.pi * np.outer(times, frequencies))
    if target is None:
        target = np.exp(-2j * np.pi * np.outer(times, grid))
    return float(np.max(np.abs(basis @ weights - target)))


@functools.lru_cache(maxsize=32)
def _fixed_frequencies(
    low: float, high: float, t_low: float, t_high: float, tolerance: float
) -> tuple[NDArray[np.float64], NDArray[np.complex128], NDArray[np.float64]]:
    """The fewest fixed frequencies that interpolate the phase within ``tolerance`` over ``[low, high]`` Hz and
    ``[t_low, t_high]`` s, with their least-squares weights on a frequency grid (cached: a scan simulates the same
    map and readout more than once)."""
    cycles = (high - low) * (t_high - t_low)  # time-bandwidth product of the phase
    extreme = max(abs(low), abs(high)) * (t_high - t_low)  # cycles of the fastest phase over the span
    times = np.linspace(t_low, t_high, max(_N_TIMES, 16 * math.ceil(extreme) + 1))
    grid = np.linspace(low, high, max(_N_FREQUENCIES, 16 * math.ceil(cycles) + 1))
    margin = 1.0 / (t_high - t_low)  # the fixed frequencies reach one cycle over the span beyond the map's range
    target = np.exp(-2j * np.pi * np.outer(times, grid))  # the same for every attempt

    def attempt(n: int) -> tuple[bool, NDArray[np.float64], NDArray[np.complex128]]:
        frequencies = np.linspace(low - margin, high + margin, n)
        weights = _fit(frequencies, times, grid, target)
        good = interpolation_error(frequencies, weights, times, grid, target) <= tolerance
        return good and float(np.max(np.abs(weights))) <= _MAX_WEIGHT, frequencies, weights

    # the fewest segments that pass: grow by a quarter until one passes, then bisect (a dozen fits, not hundreds)
    failing = max(2, math.ceil(cycles) + 1) - 1
    n_segments = failing + 1
    passed, frequencies, weights = attempt(n_segments)
    while not passed and n_segments < _MAX_SEGMENTS:
        failing = n_segments
        n_segments = min(_MAX_SEGMENTS, max(n_segments + 1, math.ceil(1.25 * n_segments)))
        passed, frequencies, weights = attempt(n_segments)
    while passed and n_segments - failing > 1:
        middle = (failing + n_segments) // 2
        ok, f_mid, w_mid = attempt(middle)
        if ok:
            n_segments, frequencies, weights = middle, f_mid, w_mid
        else:
            failing = middle
    return frequencies, weights, grid


def frequency_segments(
    offset_hz: NDArray[np.float64], times_s: NDArray[np.float64], *, tolerance: float = TOLERANCE
) -> list[tuple[float, NDArray[np.complex128]]]:
    """Split an off-resonance map into fixed frequencies with per-voxel weights (multi-frequency interpolation).

    Parameters
    ----------
    offset_hz
        Off-resonance of every voxel [Hz], any shape.
    times_s
        Sample times relative to the reference time at which the phase is zero [s] (every readout sample).
    tolerance
        Largest error of the interpolated unit phase factor (see :data:`TOLERANCE`).

    Returns
    -------
    list of (f_j [Hz], w_j)
        ``w_j`` has the shape of ``offset_hz`` (complex); ``sum_j w_j exp(-i 2 pi f_j t)`` approximates
        ``exp(-i 2 pi f t)`` voxel by voxel within ``tolerance`` for every ``t`` in the span of ``times_s``.

    Examples
    --------
    >>> f = np.linspace(-100.0, 300.0, 50)
    >>> t = np.linspace(-2e-3, 2e-3, 64)
    >>> segments = frequency_segments(f, t)
    >>> approx = sum(w[None, :] * np.exp(-2j * np.pi * fj * t[:, None]) for fj, w in segments)
    >>> bool(np.max(np.abs(approx - np.exp(-2j * np.pi * np.outer(t, f)))) < 1e-3), len(segments) < 10
    (True, True)
    """
    offset_hz = np.asarray(offset_hz, dtype=np.float64)
    low, high = float(offset_hz.min()), float(offset_hz.max())
    t_low, t_high = float(np.min(times_s)), float(np.max(times_s))
    if high - low <= 1e-9 or t_high - t_low <= 0.0:  # one frequency: exact
        return [(0.5 * (low + high), np.ones(offset_hz.shape, dtype=np.complex128))]
    # the fit covers a range rounded outward (0.5 Hz, 10 us), so the scan's simulations of one map share it
    f_key = (math.floor(low * 2) / 2, math.ceil(high * 2) / 2)
    t_key = (math.floor(t_low * 1e5) / 1e5, math.ceil(t_high * 1e5) / 1e5)
    frequencies, weights, grid = _fixed_frequencies(*f_key, *t_key, tolerance)
    flat = offset_hz.ravel()
    segments = []
    for j, frequency in enumerate(frequencies):
        w = np.interp(flat, grid, weights[j].real) + 1j * np.interp(flat, grid, weights[j].imag)
        segments.append((float(frequency), w.reshape(offset_hz.shape)))
    return segments
