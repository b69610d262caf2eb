"""Metrics against hand-computed values (the fastMRI evaluation's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.metrics import nmse, psnr, ssim


def test_nmse_by_hand() -> None:
    gt = np.array([[[3.0, 4.0]]])
    pred = np.array([[[3.0, 2.0]]])
    assert nmse(gt, pred) == pytest.approx(4.0 / 25.0)


def test_psnr_uses_volume_max() -> None:
    gt = np.zeros((2, 8, 8))
    gt[0, 0, 0] = 2.0  # volume maximum is 2 even though slice 1 is all zero
    pred = gt + 0.1
    mse = 0.01
    assert psnr(gt, pred) == pytest.approx(10 * np.log10(4.0 / mse))
    assert psnr(gt, pred, data_range=1.0) == pytest.approx(10 * np.log10(1.0 / mse))


def test_ssim_of_constant_slices_by_hand() -> None:
    # constant windows: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2, the contrast term is C2/C2 = 1
    a = np.array([1.0, 2.0])
    b = np.array([0.5, 2.0])
    gt = np.ones((2, 16, 16)) * a[:, None, None]
    pred = np.ones((2, 16, 16)) * b[:, None, None]
    big_l = gt.max()
    c1 = (0.01 * big_l) ** 2
    per_slice = (2 * a * b + c1) / (a**2 + b**2 + c1)
    assert ssim(gt, pred) == pytest.approx(per_slice.mean(), rel=1e-10)


def test_ssim_identity_and_degradation() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32))
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, x + 0.3 * rng.standard_normal(x.shape)) < 0.9


def test_complex_and_2d_inputs_become_magnitude_slices() -> None:
    x = np.exp(1j * np.linspace(0, 3, 64)).reshape(8, 8) * 2.0
    assert nmse(x, np.abs(x)) == pytest.approx(0.0)
    assert ssim(np.abs(x), x) == pytest.approx(1.0)


def test_shape_mismatch_and_small_images_raise() -> None:
    with pytest.raises(ConfigError, match="differ"):
        nmse(np.ones((2, 8, 8)), np.ones((1, 8, 8)))
    with pytest.raises(ConfigError, match="7 x 7"):
        ssim(np.ones((1, 5, 5)), np.ones((1, 5, 5)))
