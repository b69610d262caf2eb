"""Noise pre-whitening against a known channel covariance."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data import RawData, RawHeader
from hifield.errors import ReconstructionError
from hifield.recon import prewhiten
from hifield.recon.whitening import noise_covariance, whitening_matrix


def correlated(psi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    white = (rng.standard_normal((psi.shape[0], n)) + 1j * rng.standard_normal((psi.shape[0], n))) / np.sqrt(2)
    return np.linalg.cholesky(psi) @ white


def raw_with(noise: np.ndarray | None, kspace: np.ndarray) -> RawData:
    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=kspace.shape[-3:], te_s=0.005, tr_s=0.01,
                       flip_angle_rad=0.2)  # fmt: skip
    return RawData(kspace=kspace.astype(np.complex64), header=header, noise=noise)


def test_whitening_decorrelates_fresh_noise_of_a_known_covariance() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    psi = a @ a.conj().T + 0.5 * np.eye(4)  # strongly coupled channels of unequal variance
    w = whitening_matrix(noise_covariance(correlated(psi, 200_000, rng)))
    fresh = noise_covariance(w @ correlated(psi, 200_000, rng))
    mean_var = float(np.mean(np.real(np.diag(psi))))
    np.testing.assert_allclose(fresh, mean_var * np.eye(4), atol=0.03 * mean_var)


def test_prewhiten_keeps_signal_units_and_improves_snr_of_coupled_channels() -> None:
    rng = np.random.default_rng(2)
    psi = np.array([[1.0, 0.95], [0.95, 1.0]], dtype=complex)  # two coils sharing most of their noise
    sens = np.array([1.0, 0.3])  # the second coil sees less signal
    signal = 5.0
    kspace = (sens * signal)[:, None] + correlated(psi, 20_000, rng)
    raw = raw_with(correlated(psi, 4096, rng).astype(np.complex64), kspace.reshape(2, 1, 1, -1))
    white = prewhiten(raw)
    assert white.kspace.dtype == np.complex64 and white.kspace.shape == raw.kspace.shape

    # matched-filter SNR of the array before and after: whitening reveals the noise correlation to the combiner
    def snr(y: np.ndarray, s: np.ndarray) -> float:
        combined = (s.conj() @ y.reshape(2, -1)) / np.vdot(s, s)
        return float(abs(combined.mean()) / combined.std())

    w = whitening_matrix(noise_covariance(raw.noise))
    assert snr(white.kspace, w @ sens) > 2.0 * snr(raw.kspace, sens)
    optimal = signal * np.sqrt(np.real(sens.conj() @ np.linalg.solve(psi, sens)))  # SNR bound sqrt(s^H Psi^-1 s)
    assert snr(white.kspace, w @ sens) == pytest.approx(optimal, rel=0.05)
    # units: the mean channel noise variance is kept
    assert np.mean(np.diag(noise_covariance(white.noise)).real) == pytest.approx(1.0, rel=0.1)


def test_prewhiten_refuses_missing_or_singular_noise() -> None:
    kspace = np.ones((2, 1, 2, 2))
    with pytest.raises(ReconstructionError, match="no noise scan"):
        prewhiten(raw_with(None, kspace))
    dead = np.zeros((2, 64), dtype=np.complex64)
    dead[0] = 1.0 + np.arange(64)
    with pytest.raises(ReconstructionError, match="not positive definite"):
        prewhiten(raw_with(dead, kspace))
