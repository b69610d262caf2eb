"""Memory-bounded 3D CS: groups of x-slices in hybrid space give the volume, within the estimated peak memory."""

from __future__ import annotations

import tracemalloc

import numpy as np

from hifield.ops import fftc
from hifield.recon.chunked import chunked_cs_memory_bytes, hybrid_in_place, reconstruct_cs_chunked
from hifield.sampling import make_pattern


def _volume(nz: int, ny: int, nx: int, n_coils: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-edged block object and smooth 3D coil maps with unit RSS, shapes (z, y, x) and (coil, z, y, x)."""
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (nz, ny, nx)), indexing="ij")
    obj = ((np.abs(z) < 0.6) & (np.abs(y) < 0.7) & (np.abs(x) < 0.5)).astype(np.complex64)
    obj *= 1.0 + 0.5 * ((y > 0) & (x > 0))
    maps = np.empty((n_coils, nz, ny, nx), dtype=np.complex64)
    for c in range(n_coils):
        a, b = 2 * np.pi * c / n_coils, np.pi * (c % 2) / 2
        centre = (1.3 * np.sin(b), 1.3 * np.sin(a), 1.3 * np.cos(a))
        dist2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
        maps[c] = np.exp(1j * (a + 0.3 * x)) / (1.0 + dist2 / 0.8)
    maps /= np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))
    return obj, maps


def test_hybrid_transform_is_the_readout_inverse_fft() -> None:
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((2, 5, 6, 8)) + 1j * rng.standard_normal((2, 5, 6, 8))).astype(np.complex64)
    expected = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(k, axes=-1), axis=-1, norm="ortho"), axes=-1)
    out = hybrid_in_place(k)
    assert out is k
    np.testing.assert_allclose(k, expected, atol=1e-5)


def test_chunked_cs_recovers_an_undersampled_volume_and_matches_the_groupless_solution() -> None:
    nz, ny, nx, nc = 16, 24, 20, 8
    obj, maps = _volume(nz, ny, nx, nc)
    pattern = make_pattern("poisson", (nz, ny), acceleration=3, n_calibration=8, seed=0)
    mask = pattern.mask[:, :, 0]
    kspace = (fftc(maps * obj) * mask[None, :, :, None]).astype(np.complex64)
    zero_filled = np.sqrt(np.sum(np.abs(np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(kspace, axes=(1, 2, 3)),
                                                                      axes=(1, 2, 3), norm="ortho"), axes=(1, 2, 3)))
                                 ** 2, axis=0))  # fmt: skip
    image = reconstruct_cs_chunked(kspace.copy(), mask, lambda xs: maps[..., xs], group=6)
    assert image.shape == (nz, ny, nx) and image.dtype == np.complex64

    def nmse(a: np.ndarray) -> float:
        return float(np.sum((np.abs(a) - np.abs(obj)) ** 2) / np.sum(np.abs(obj) ** 2))

    assert nmse(image) < 0.2 * nmse(zero_filled)
    whole = reconstruct_cs_chunked(kspace.copy(), mask, lambda xs: maps[..., xs], group=nx)
    # the groups are independent problems: group size only changes how many slices share an FFT call
    np.testing.assert_allclose(np.abs(image), np.abs(whole), atol=2e-2 * np.abs(obj).max())


def test_chunked_cs_peak_memory_stays_within_its_estimate() -> None:
    nz, ny, nx, nc = 24, 32, 48, 8
    _, maps = _volume(nz, ny, 4, nc)
    mask = make_pattern("poisson", (nz, ny), acceleration=3, n_calibration=8, seed=1).mask[:, :, 0]
    rng = np.random.default_rng(2)
    kspace = (rng.standard_normal((nc, nz, ny, nx)) + 1j * rng.standard_normal((nc, nz, ny, nx))).astype(np.complex64)
    kspace *= mask[None, :, :, None]
    group = 4
    tracemalloc.start()
    reconstruct_cs_chunked(kspace, mask, lambda xs: maps[..., : xs.stop - xs.start], group=group)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    estimate = chunked_cs_memory_bytes(nc, (nz, ny, nx), group=group, include_kspace=False)
    assert peak <= estimate
    assert peak >= 0.3 * estimate  # an estimate, not a blanket bound
