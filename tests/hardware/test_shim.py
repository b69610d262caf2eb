"""Spherical-harmonic B0 shim: exact on fields it spans, order by order, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.hardware.shim import fit_shim, shim_order, spherical_harmonic_basis


def _grid(n: int = 10) -> np.ndarray:
    axis = np.linspace(-0.08, 0.08, n)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)


def test_second_order_shim_removes_any_second_order_field_but_not_third() -> None:
    pos = _grid()
    z, y, x = pos[..., 0], pos[..., 1], pos[..., 2]
    rng = np.random.default_rng(1)
    coef = rng.normal(size=9)
    field = spherical_harmonic_basis(pos, 2) @ coef
    mask = np.ones(field.shape, dtype=bool)
    residual, fitted = fit_shim(field, mask, pos, order=2)
    assert np.abs(residual).max() < 1e-6 * np.abs(field).max()
    np.testing.assert_allclose(fitted, coef, rtol=1e-6, atol=1e-9)
    cubic = 1e3 * z * y * x
    residual, _ = fit_shim(cubic + field, mask, pos, order=2)
    assert np.abs(residual).max() > 0.5 * np.abs(cubic).max()


def test_each_order_leaves_less_of_a_quadratic_field() -> None:
    pos = _grid()
    z, y, x = pos[..., 0], pos[..., 1], pos[..., 2]
    field = 5.0 + 30.0 * z - 20.0 * x + 400.0 * (z * z - 0.5 * (x * x + y * y)) + 100.0 * x * y
    mask = np.linalg.norm(pos, axis=-1) < 0.07
    spread = [float(np.std(fit_shim(field, mask, pos, order=k)[0][mask])) for k in (0, 1, 2)]
    assert spread[0] > spread[1] > spread[2]
    assert spread[2] < 1e-6
    assert abs(float(np.mean(fit_shim(field, mask, pos, order=0)[0][mask]))) < 1e-9  # centre frequency set


def test_shim_names_and_refusals() -> None:
    assert [shim_order(n) for n in ("none", "linear", "2nd-order", "2ND_ORDER")] == [0, 1, 2, 2]
    with pytest.raises(ConfigError, match="unknown B0 shim"):
        shim_order("3rd-order")
    pos = _grid(4)
    with pytest.raises(ConfigError, match="selects no voxels"):
        fit_shim(np.zeros(pos.shape[:-1]), np.zeros(pos.shape[:-1], bool), pos, order=1)
    with pytest.raises(ConfigError, match="order"):
        spherical_harmonic_basis(pos, 3)
