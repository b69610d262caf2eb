"""Thermal noise model: level versus field and timing, and the coil correlation it carries."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.sim.noise import correlated_noise, kspace_noise_std


def test_noise_std_scaling_laws() -> None:
    ref = kspace_noise_std(3.0, dwell_s=1e-5, n_grid=65536)
    assert kspace_noise_std(3.0, dwell_s=4e-5, n_grid=65536) == pytest.approx(ref / 2)
    assert kspace_noise_std(3.0, dwell_s=1e-5, n_grid=4 * 65536) == pytest.approx(ref / 2)
    assert kspace_noise_std(3.0, dwell_s=1e-5, n_grid=65536, n_averages=4) == pytest.approx(ref / 2)
    assert kspace_noise_std(7.0, dwell_s=1e-5, n_grid=65536, beta=1.0) == pytest.approx(ref * 3 / 7)


def test_correlated_noise_has_requested_covariance() -> None:
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.2 + 0.1j, 0.05], [0.2 - 0.1j, 1.2, 0.1j], [0.05, -0.1j, 0.9]])
    samples = correlated_noise((3, 200_000), cov, 0.5, rng)
    assert samples.dtype == np.complex64
    measured = samples.astype(np.complex128) @ samples.conj().T.astype(np.complex128) / samples.shape[1]
    np.testing.assert_allclose(measured, 0.25 * cov, atol=4e-3)


def test_correlated_noise_on_kspace_layout_and_seed() -> None:
    cov = np.eye(4)
    a = correlated_noise((4, 1, 8, 8), cov, 1.0, np.random.default_rng(5))
    b = correlated_noise((4, 1, 8, 8), cov, 1.0, np.random.default_rng(5))
    assert a.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="4 x 4"):
        correlated_noise((3, 1, 8, 8), cov, 1.0, np.random.default_rng(0))
