"""Operator algebra and the analytic behaviour of each operator."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.ops import (
    CartesianSenseNormalOp,
    FFTOp,
    FiniteDifferenceOp,
    IdentityOp,
    MaskOp,
    SensitivityOp,
    WaveletOp,
    fftc,
    ifftc,
)


def test_fftc_delta_at_centre_is_flat_and_shift_theorem() -> None:
    n = 8
    x = np.zeros((1, n, n), dtype=np.complex64)
    x[0, n // 2, n // 2] = 1.0
    np.testing.assert_allclose(fftc(x), np.full((1, n, n), 1 / n), atol=1e-7)
    # a delta one pixel off-centre along x gives a linear phase exp(-i 2 pi k / n) (k centred)
    x2 = np.zeros((1, n, n), dtype=np.complex128)
    x2[0, n // 2, n // 2 + 1] = 1.0
    k = np.arange(n) - n // 2
    expected = np.exp(-2j * np.pi * k / n)[None, None, :] / n * np.ones((1, n, 1))
    np.testing.assert_allclose(fftc(x2), expected, atol=1e-12)
    np.testing.assert_allclose(ifftc(fftc(x2)), x2, atol=1e-12)


def test_fft_is_unitary_and_normal_is_identity() -> None:
    op = FFTOp((2, 4, 6))
    x = np.random.default_rng(0).standard_normal((2, 4, 6)) + 0j
    assert np.isclose(np.linalg.norm(op @ x), np.linalg.norm(x))
    np.testing.assert_allclose(op.normal() @ x, x, atol=1e-12)


def test_real_input_to_fft_becomes_complex() -> None:
    y = FFTOp((1, 4, 4)) @ np.ones((1, 4, 4), dtype=np.float32)
    assert y.dtype == np.complex64


def test_compose_mismatch_names_both_factors() -> None:
    with pytest.raises(ConfigError, match=r"Sensitivity.*FFT|FFT.*Sensitivity"):
        SensitivityOp(np.ones((1, 2, 1, 4, 4), np.complex64)) @ FFTOp((2, 1, 4, 5))


def test_sum_mismatch_raises() -> None:
    with pytest.raises(ConfigError, match="cannot add"):
        IdentityOp((2,)) + IdentityOp((3,))


def test_algebra_matches_matrices() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 4)) + 1j * rng.standard_normal((1, 3, 4))
    f = FFTOp((1, 3, 4))
    i = IdentityOp((1, 3, 4))
    np.testing.assert_allclose((2j * f - i) @ x, 2j * fftc(x) - x)
    np.testing.assert_allclose((-f).H @ x, -ifftc(x))
    np.testing.assert_allclose((f @ f.H) @ x, x, atol=1e-12)
    assert f.H.H is f


def test_sensitivity_forward_and_adjoint_by_hand() -> None:
    maps = np.array([[[[[1.0, 2.0]]], [[[1j, 0.5]]]]], dtype=np.complex64)  # (1, 2, 1, 1, 2)
    op = SensitivityOp(maps)
    x = np.array([[[[3.0, 4.0]]]], dtype=np.complex64)
    np.testing.assert_allclose(op @ x, [[[[3.0, 8.0]]], [[[3j, 2.0]]]])
    y = np.ones((2, 1, 1, 2), dtype=np.complex64)
    np.testing.assert_allclose(op.H @ y, [[[[1 - 1j, 2.5]]]])


def test_sensitivity_two_maps_sum() -> None:
    rng = np.random.default_rng(2)
    maps = (rng.standard_normal((2, 3, 1, 4, 4)) + 1j * rng.standard_normal((2, 3, 1, 4, 4))).astype(np.complex64)
    x = (rng.standard_normal((2, 1, 4, 4)) + 0j).astype(np.complex64)
    expected = maps[0] * x[0] + maps[1] * x[1]
    np.testing.assert_allclose(SensitivityOp(maps) @ x, expected, rtol=1e-5)


def test_sensitivity_rejects_bad_maps() -> None:
    with pytest.raises(ConfigError, match="maps, coil, z, y, x"):
        SensitivityOp(np.ones((4, 4), np.complex64))


def test_mask_zeroes_unsampled_and_bad_mask_raises() -> None:
    mask = np.zeros((1, 4, 4), dtype=bool)
    mask[:, ::2] = True
    y = MaskOp(mask, (2, 1, 4, 4)) @ np.ones((2, 1, 4, 4), np.complex64)
    assert y[:, :, 1].sum() == 0 and np.all(y[:, :, 0] == 1)
    with pytest.raises(ConfigError, match="does not broadcast"):
        MaskOp(np.ones((3, 3), bool), (2, 1, 4, 4))


def test_wavelet_orthonormal_and_shift() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 32, 32)) + 1j * rng.standard_normal((1, 1, 32, 32))
    w = WaveletOp(x.shape, level=3)
    c = w @ x
    assert np.isclose(np.linalg.norm(c), np.linalg.norm(x))  # Parseval
    np.testing.assert_allclose(w.H @ c, x, atol=1e-10)
    # a shifted transform equals the plain transform of the rolled image
    ws = w.with_shift((0, 2, 5))
    np.testing.assert_allclose(ws @ x, w @ np.roll(x, (2, 5), axis=(-2, -1)), atol=1e-10)
    shifted = w.with_random_shift(np.random.default_rng(0))
    assert shifted.shift != () and all(0 <= s < 2**w.level for s in shifted.shift)
    # db4 on 32 samples allows 2 levels (PyWavelets' dwt_max_level); the approximation band is (32 / 4)^2
    assert w.level == 2
    assert (~w.detail_mask).sum() == (32 // 4) ** 2


def test_wavelet_sparsifies_piecewise_constant_image() -> None:
    x = np.zeros((1, 1, 64, 64))
    x[..., 16:48, 20:40] = 1.0
    c = WaveletOp(x.shape, wavelet="haar", level=3) @ x
    assert np.count_nonzero(np.abs(c) > 1e-9) < 0.1 * x.size


def test_wavelet_padding_crop_round_trip() -> None:
    x = np.random.default_rng(4).standard_normal((1, 5, 10, 13)).astype(np.float32)
    w = WaveletOp(x.shape, level=2)
    # db4 allows no full level on 5 samples: one level, every axis padded to an even length
    assert w.level == 1 and w.oshape == (1, 6, 10, 14)
    np.testing.assert_allclose(w.H @ (w @ x), x, atol=1e-5)


def test_wavelet_rejects_biorthogonal() -> None:
    with pytest.raises(ConfigError, match="not orthogonal"):
        WaveletOp((1, 1, 8, 8), wavelet="bior2.2")


def test_finite_difference_of_ramp() -> None:
    x = np.tile(np.arange(6.0), (4, 1))[None]  # (1, 4, 6), ramp along x
    d = FiniteDifferenceOp(x.shape, axes=(-2, -1)) @ x
    np.testing.assert_allclose(d[0], 0.0)  # along y: constant
    np.testing.assert_allclose(d[1][..., :-1], 1.0)  # along x: slope 1 (circular wrap at the end)
    np.testing.assert_allclose(d[1][..., -1], -5.0)


@pytest.mark.parametrize("spatial", [(1, 16, 12), (1, 15, 9), (4, 6, 8)])
@pytest.mark.parametrize("n_maps", [1, 2])
@pytest.mark.parametrize("cores", [1, 2, 5])
def test_sense_normal_matches_composed_operators(
    spatial: tuple[int, int, int], n_maps: int, cores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hifield.ops.sense as sense_module

    # the coils split over threads whatever the size (2 cores: groups of 2 and 1 coils; 5: one coil each)
    monkeypatch.setattr(sense_module, "PARALLEL_ELEMENTS", 0)
    monkeypatch.setattr(sense_module, "_CPUS", cores)
    rng = np.random.default_rng(5)
    maps = (rng.standard_normal((n_maps, 3, *spatial)) + 1j * rng.standard_normal((n_maps, 3, *spatial))).astype(
        np.complex64
    )
    lines = rng.random((spatial[0], spatial[1], 1)) > 0.5
    for mask in (np.broadcast_to(lines, spatial), rng.random(spatial) > 0.5):
        sens = SensitivityOp(maps)
        composed = (MaskOp(mask, sens.oshape) @ FFTOp(sens.oshape) @ sens).normal()
        fast = CartesianSenseNormalOp(maps, mask)
        x = (rng.standard_normal(sens.ishape) + 1j * rng.standard_normal(sens.ishape)).astype(np.complex64)
        np.testing.assert_allclose(fast @ x, composed @ x, atol=1e-5 * np.abs(composed @ x).max())
    # the readout (x) is fully sampled in the line mask: no FFT along it
    assert -1 not in CartesianSenseNormalOp(maps, np.broadcast_to(lines, spatial)).fft_axes
