"""Every registered reconstruction method through one contract: shape, dtype, header, determinism, linear units."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data import Image, RawData, RawHeader
from hifield.ops import fftc
from hifield.recon import reconstruct, reconstructor_names

N = 32


def _raw(method: str) -> RawData:
    rng = np.random.default_rng(0)
    y, x = np.meshgrid(np.linspace(-1, 1, N), np.linspace(-1, 1, N), indexing="ij")
    obj = ((x**2 / 0.6 + y**2 / 0.8) < 1).astype(np.float64) * (1 + 0.3 * np.cos(3 * x)) * np.exp(0.3j * x)
    maps = np.stack([np.exp(-((x - 0.8 * np.cos(a)) ** 2 + (y - 0.8 * np.sin(a)) ** 2)) for a in (0, 1.6, 3.2, 4.8)])
    maps = maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))
    kspace = fftc((maps * obj)[:, None]) + 1e-3 * (rng.standard_normal((4, 1, N, N)) + 0j)
    mask = np.zeros((1, N, N), dtype=bool)
    if method in ("pocs", "homodyne"):
        mask[:, N // 4 :, :] = True  # partial Fourier: a quarter of k1 missing
    else:
        mask[:, ::2, :] = True
        mask[:, N // 2 - 6 : N // 2 + 6, :] = True
    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=(1, N, N), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3)
    return RawData(kspace=(kspace * mask).astype(np.complex64), header=header, mask=mask)


@pytest.fixture(params=reconstructor_names())
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_image_contract(method: str) -> None:
    raw = _raw(method)
    image = reconstruct(raw, method=method)
    assert isinstance(image, Image)
    assert image.data.shape == (1, 1, N, N) and image.data.dtype == np.complex64
    assert image.header.recon_method == method and image.header.acquisition is raw.header
    np.testing.assert_array_equal(image.header.affine, raw.header.affine_array())
    assert np.all(np.isfinite(image.data)) and np.abs(image.data).max() > 0


def test_deterministic_and_in_input_units(method: str) -> None:
    raw = _raw(method)
    a = reconstruct(raw, method=method).data
    np.testing.assert_array_equal(a, reconstruct(raw, method=method).data)
    scaled = reconstruct(raw.replace(kspace=raw.kspace * np.float32(100)), method=method).data
    np.testing.assert_allclose(np.abs(scaled), 100 * np.abs(a), rtol=1e-2, atol=1e-2 * 100 * np.abs(a).max())


def test_other_axes_are_kept(method: str) -> None:
    raw = _raw(method)
    stacked = raw.replace(kspace=np.stack([raw.kspace, raw.kspace]))
    assert reconstruct(stacked, method=method).data.shape == (2, 1, 1, N, N)
