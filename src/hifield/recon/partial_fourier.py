"""Partial-Fourier reconstruction: POCS (Haacke et al. 1991) and homodyne detection (Noll et al. 1991)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ReconstructionError
from hifield.ops import fftc, ifftc
from hifield.recon.cartesian import rss
from hifield.recon.config import PartialFourierConfig

Complex = NDArray[np.complex64]


def _extent(mask: NDArray[np.bool_]) -> tuple[int, int, int]:
    """(axis, first, last + 1) of the asymmetric acquired range; axis -2 (k1) or -1 (k0)."""
    best: tuple[int, int, int] | None = None
    for axis in (-2, -1):
        other = tuple(a for a in (-3, -2, -1) if a != axis)
        covered = np.flatnonzero(np.any(mask, axis=other))
        n = mask.shape[axis]
        if covered.size == 0:
            continue
        lo, hi = int(covered[0]), int(covered[-1]) + 1
        missing = max(lo, n - hi)
        if missing > 0 and (best is None or missing > max(best[1], mask.shape[best[0]] - best[2])):
            best = (axis, lo, hi)
    if best is None:
        raise ReconstructionError(
            "k-space is not partial-Fourier (no side of k1 or k0 is missing); use --recon fft or sense"
        )
    axis, lo, hi = best
    n = mask.shape[axis]
    if lo > n // 2 or hi <= n // 2:
        raise ReconstructionError(f"partial-Fourier data must contain the k-space centre; acquired {lo}..{hi - 1}")
    return best


def _phase_and_weights(
    kspace: Complex, mask: NDArray[np.bool_], config: PartialFourierConfig
) -> tuple[Complex, NDArray[np.float32], int, int, int]:
    axis, lo, hi = _extent(mask)
    n = mask.shape[axis]
    c = n // 2
    half = min(c - lo, hi - c)  # symmetric band [c - half, c + half)
    shape = [1, 1, 1]
    shape[axis] = n
    k = np.arange(n) - c
    # low-resolution phase from the symmetric centre, Hann-windowed
    window = np.where(np.abs(k) < half, 0.5 * (1 + np.cos(np.pi * k / max(half, 1))), 0.0).astype(np.float32)
    low = ifftc(kspace * window.reshape(shape))
    phase = np.exp(1j * np.angle(low)).astype(np.complex64)
    # homodyne weights: 2 on the acquired side beyond the band, 0 on the missing side, a ramp across the band
    ramp_half = max(1, round(half * config.transition))
    w = np.zeros(n, dtype=np.float32)
    acquired_high = (hi - c) >= (c - lo)  # the high-k side is the complete one
    sign = 1 if acquired_high else -1
    kk = sign * k
    w[kk >= ramp_half] = 2.0
    band = np.abs(kk) < ramp_half
    w[band] = 1.0 + kk[band] / ramp_half
    return phase, w.reshape(shape), axis, lo, hi


def recon_pocs(kspace: Complex, mask: NDArray[np.bool_], config: PartialFourierConfig) -> Complex:
    """POCS per coil: alternate the low-resolution phase constraint and data consistency; RSS ``(1, z, y, x)``."""
    phase, _, _, _, _ = _phase_and_weights(kspace, mask, config)
    k = kspace.copy()
    for _ in range(config.n_iter):
        img = ifftc(k)
        img = (np.abs(img) * phase).astype(np.complex64)
        k = np.where(mask, kspace, fftc(img)).astype(np.complex64)
    return rss(ifftc(k))


def recon_homodyne(kspace: Complex, mask: NDArray[np.bool_], config: PartialFourierConfig) -> Complex:
    """Homodyne detection per coil: ramp-weighted k-space, phase-demodulated real part; RSS ``(1, z, y, x)``."""
    phase, weights, _, _, _ = _phase_and_weights(kspace, mask, config)
    real = np.real(ifftc(kspace * weights) * np.conj(phase))
    return np.sqrt(np.sum(real**2, axis=0, dtype=np.float64))[None].astype(np.complex64)
