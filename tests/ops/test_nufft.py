"""NUFFT against a direct DFT and the centred FFT; Pipe-Menon density against the analytic radial (Ram-Lak) one."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.ops import NUFFTOp, fftc, pipe_menon_density


def _direct(k: np.ndarray, x: np.ndarray, voxel: tuple[float, float, float]) -> np.ndarray:
    """Explicit sum y_j = N^-1/2 sum_r x(r) exp(-i 2 pi k_j . r), r = (index - n // 2) * voxel."""
    grids = [(np.arange(n) - n // 2) * v for n, v in zip(x.shape[-3:], voxel, strict=True)]
    rz, ry, rx = np.meshgrid(*grids, indexing="ij")
    phase = np.exp(
        -2j * np.pi * (np.multiply.outer(k[:, 0], rz) + np.multiply.outer(k[:, 1], ry) + np.multiply.outer(k[:, 2], rx))
    )
    return np.einsum("jzyx,...zyx->...j", phase, x) / np.sqrt(x.shape[-3] * x.shape[-2] * x.shape[-1])


@pytest.mark.parametrize("shape", [(1, 24, 20), (6, 10, 12)])
def test_nufft_matches_direct_dft(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    voxel = (0.004, 0.002, 0.0025)
    kmax = np.array([0.5 / v for v in voxel]) * np.array([1.0 if shape[0] > 1 else 0.0, 1.0, 1.0])
    k = (rng.random((300, 3)) * 2 - 1) * kmax
    x = rng.standard_normal((2, *shape)) + 1j * rng.standard_normal((2, *shape))
    op = NUFFTOp(k, shape, voxel, batch_shape=(2,))
    ref = _direct(k, x, voxel)
    y = op @ x
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-4
    # adjoint against the conjugate-transposed sum
    yy = rng.standard_normal((2, 300)) + 1j * rng.standard_normal((2, 300))
    lhs = np.vdot(y, yy)
    assert abs(lhs - np.vdot(x, op.H @ yy)) <= 1e-10 * np.linalg.norm(y) * np.linalg.norm(yy)
    # single precision keeps complex64 and the same accuracy class
    y32 = op @ x.astype(np.complex64)
    assert y32.dtype == np.complex64 and np.linalg.norm(y32 - ref) / np.linalg.norm(ref) < 1e-4


def test_nufft_on_cartesian_grid_is_centred_fft() -> None:
    n, fov = 16, 0.2
    axis = (np.arange(n) - n // 2) / fov
    ky, kx = np.meshgrid(axis, axis, indexing="ij")
    k = np.stack([np.zeros_like(kx), ky, kx], axis=-1)
    x = np.random.default_rng(1).standard_normal((1, n, n)) + 0j
    op = NUFFTOp(k, (1, n, n), (0.005, fov / n, fov / n))
    np.testing.assert_allclose(op @ x, fftc(x)[0], atol=1e-5)


def test_nufft_rejects_bad_positions() -> None:
    with pytest.raises(ConfigError, match="kz, ky, kx"):
        NUFFTOp(np.zeros((4, 2)), (1, 4, 4), (1.0, 1.0, 1.0))


def test_pipe_menon_cartesian_is_one_and_radial_is_ram_lak() -> None:
    n, fov = 32, 0.2
    voxel = (0.005, fov / n, fov / n)
    axis = (np.arange(n) - n // 2) / fov
    ky, kx = np.meshgrid(axis, axis, indexing="ij")
    cart = np.stack([np.zeros_like(kx), ky, kx], axis=-1)
    np.testing.assert_allclose(pipe_menon_density(cart, (1, n, n), voxel), 1.0, atol=1e-3)
    # radial: 80 diameter spokes of n samples spaced 1/fov; analytic weight pi |k| dk / n_spokes per Nyquist cell
    n_spokes = 80
    angles = np.arange(n_spokes) * np.pi / n_spokes
    radius = (np.arange(n) - n // 2) / fov
    k = np.zeros((n_spokes, n, 3))
    k[..., 1] = np.sin(angles)[:, None] * radius
    k[..., 2] = np.cos(angles)[:, None] * radius
    w = pipe_menon_density(k, (1, n, n), voxel)
    analytic = np.pi * np.abs(radius) * fov / n_spokes  # in units of the Nyquist cell area (1 / fov^2)
    # Pipe-Menon is known to deviate at the outermost rings (the kernel falls off the sampled disc)
    ring = (np.abs(radius) * fov >= 3) & (np.abs(radius) * fov <= n / 2 - 5)
    np.testing.assert_allclose(w[:, ring].mean(axis=0), analytic[ring], rtol=0.03)
