"""Synthetic multi-coil Cartesian data for reconstruction tests: a numeric phantom and smooth coil maps."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData, RawHeader, centred_affine
from hifield.ops import fftc


def smooth_coil_maps(n_coils: int, shape: tuple[int, int], *, seed: int = 0) -> NDArray[np.complex64]:
    """Birdcage-like maps ``(coil, 1, y, x)``: coils on a circle, smooth falloff and phase, unit RSS."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    maps = np.empty((n_coils, 1, ny, nx), dtype=np.complex64)
    for c in range(n_coils):
        angle = 2 * np.pi * c / n_coils
        cy, cx = 1.3 * np.sin(angle), 1.3 * np.cos(angle)
        dist2 = (y - cy) ** 2 + (x - cx) ** 2
        mag = 1.0 / (1.0 + dist2 / 0.8)
        phase = angle + 0.5 * rng.standard_normal() * (x * np.cos(angle) + y * np.sin(angle))
        maps[c, 0] = mag * np.exp(1j * phase)
    # normalised so that sum_c |S_c|^2 = 1: then RSS and SENSE both estimate the object itself
    maps /= np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))
    return maps


def phantom_image(n: int) -> NDArray[np.complex64]:
    """Shepp-Logan (scikit-image) resized to ``n x n`` with a smooth phase, shape ``(1, n, n)``."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    img = resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)
    y, x = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    return (img * np.exp(1j * 0.4 * (x + 0.5 * y)))[None].astype(np.complex64)


def equispaced_mask(ny: int, nx: int, *, r: int, n_acs: int) -> NDArray[np.bool_]:
    """Every ``r``-th phase-encode line plus ``n_acs`` central lines, shape ``(1, ny, nx)``."""
    lines = np.zeros(ny, dtype=bool)
    lines[(ny // 2) % r :: r] = True
    lines[ny // 2 - n_acs // 2 : ny // 2 - n_acs // 2 + n_acs] = True
    return np.broadcast_to(lines[None, :, None], (1, ny, nx)).copy()


def random_mask(ny: int, nx: int, *, r: float, n_acs: int, seed: int = 0) -> NDArray[np.bool_]:
    """Variable-density random phase-encode lines (Gaussian density) with ``n_acs`` central lines."""
    rng = np.random.default_rng(seed)
    k = np.arange(ny) - ny // 2
    n_lines = round(ny / r)
    lines = np.zeros(ny, dtype=bool)
    lines[ny // 2 - n_acs // 2 : ny // 2 - n_acs // 2 + n_acs] = True
    pdf = np.exp(-0.5 * (k / (0.3 * ny)) ** 2)
    pdf[lines] = 0
    pdf /= pdf.sum()
    extra = rng.choice(ny, size=max(0, n_lines - n_acs), replace=False, p=pdf)
    lines[extra] = True
    return np.broadcast_to(lines[None, :, None], (1, ny, nx)).copy()


def make_raw(
    n: int = 128,
    n_coils: int = 8,
    *,
    mask: NDArray[np.bool_] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    scale: float = 1.0,
) -> tuple[RawData, NDArray[np.complex64], NDArray[np.complex64]]:
    """(raw, ground-truth image (1, n, n), true maps (coil, 1, n, n))."""
    rng = np.random.default_rng(seed)
    img = phantom_image(n) * np.float32(scale)
    maps = smooth_coil_maps(n_coils, (n, n), seed=seed)
    kspace = fftc(maps * img[None])
    if noise > 0:
        kspace = kspace + (noise * scale / np.sqrt(2)) * (
            rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape)
        )
    kspace = kspace.astype(np.complex64)
    if mask is not None:
        kspace = kspace * mask
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, 0.2, 0.2),
        matrix=(1, n, n),
        te_s=0.01,
        tr_s=0.1,
        flip_angle_rad=0.3,
        affine=tuple(tuple(float(v) for v in row) for row in centred_affine((1, n, n), (0.005, 0.2 / n, 0.2 / n))),
    )
    raw = RawData(kspace=kspace.astype(np.complex64), header=header, mask=mask)
    return raw, img, maps
