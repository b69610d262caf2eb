"""Coil compression: lossless for low-rank coil data; geometric keeps more energy than SVD."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.ops import fftc, ifftc
from hifield.recon import compress_coils, reconstruct


def test_svd_is_lossless_for_rank_deficient_coils(simdata: ModuleType) -> None:
    n = 48
    raw, _, _ = simdata.make_raw(n, 3, mask=simdata.equispaced_mask(n, n, r=2, n_acs=12))
    mix = np.random.default_rng(0).standard_normal((8, 3)) + 1j * np.random.default_rng(1).standard_normal((8, 3))
    q, _ = np.linalg.qr(mix)  # 8 physical coils spanning a 3-dimensional subspace (isometric mixing)
    raw8 = raw.replace(kspace=np.einsum("pc,ckji->pkji", q, raw.kspace).astype(np.complex64))
    small = compress_coils(raw8, n_virtual=3)
    assert small.kspace.shape == (3, 1, n, n)
    rss8 = np.abs(reconstruct(raw8, method="fft").data)
    rss3 = np.abs(reconstruct(small, method="fft").data)
    np.testing.assert_allclose(rss3, rss8, atol=1e-4 * rss8.max())


def test_geometric_keeps_more_energy_than_svd() -> None:
    # coil subspace that rotates along x: one global matrix cannot follow it, per-x matrices can
    rng = np.random.default_rng(2)
    n, nc = 32, 6
    x = np.linspace(0, 1, n)
    basis = np.linalg.qr(rng.standard_normal((nc, nc)) + 1j * rng.standard_normal((nc, nc)))[0]
    images = np.zeros((nc, 1, n, n), dtype=np.complex128)
    obj = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    for i in range(n):
        theta = np.pi / 2 * x[i]
        vec = np.cos(theta) * basis[:, 0] + np.sin(theta) * basis[:, 1]
        images[:, 0, :, i] = vec[:, None] * obj[None, :, i]
    from hifield.data import RawData, RawHeader

    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=(1, n, n), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3)
    raw = RawData(kspace=fftc(images).astype(np.complex64), header=header)
    energy = float(np.sum(np.abs(raw.kspace) ** 2))
    kept = {
        m: float(np.sum(np.abs(compress_coils(raw, n_virtual=1, method=m).kspace) ** 2)) / energy
        for m in ("svd", "geometric")
    }
    assert kept["geometric"] > 0.999 and kept["svd"] < 0.95
    # the geometric virtual coil is smooth along x (aligned): neighbouring images differ little in phase
    img = ifftc(compress_coils(raw, n_virtual=1, method="geometric").kspace)[0, 0]
    ratio = img[:, 1:] / np.where(np.abs(obj[:, 1:]) > 0, obj[:, 1:], 1)
    assert np.median(np.abs(np.diff(np.angle(ratio), axis=1))) < 0.2


def test_bad_arguments() -> None:
    from hifield.data import RawData, RawHeader

    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=(1, 4, 4), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3)
    raw = RawData(kspace=np.ones((2, 1, 4, 4), np.complex64), header=header)
    with pytest.raises(ConfigError, match="between 1"):
        compress_coils(raw, n_virtual=3)
    with pytest.raises(ConfigError, match="svd"):
        compress_coils(raw, n_virtual=1, method="pca")  # type: ignore[arg-type]
