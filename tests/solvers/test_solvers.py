"""Solvers on small problems with known answers: linear systems and LASSO with an orthonormal design."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.solvers import admm, conjugate_gradient, fista, pdhg, prox_tv, soft_threshold


def _soft(v: np.ndarray, t: float) -> np.ndarray:
    mag = np.abs(v)
    return v * np.maximum(mag - t, 0) / np.maximum(mag, 1e-300)


@pytest.fixture
def hermitian_system() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 20)) + 1j * rng.standard_normal((20, 20))
    return a.conj().T @ a + 0.5 * np.eye(20), rng.standard_normal(20) + 1j * rng.standard_normal(20)


def test_cg_solves_hermitian_system(hermitian_system: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = hermitian_system
    x, hist = conjugate_gradient(lambda v: a @ v, b, max_iter=200, tol=1e-12)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-8)
    assert hist.converged and hist.residual[-1] <= 1e-12
    assert hist.n_iter <= 200


def test_cg_warm_start_and_max_iter(hermitian_system: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = hermitian_system
    exact = np.linalg.solve(a, b)
    x, hist = conjugate_gradient(lambda v: a @ v, b, x0=exact, max_iter=5, tol=1e-8)
    assert hist.converged and hist.n_iter == 0
    np.testing.assert_allclose(x, exact)
    _, hist3 = conjugate_gradient(lambda v: a @ v, b, max_iter=3, tol=0.0)
    assert hist3.n_iter == 3 and not hist3.converged


def test_cg_keeps_complex64(hermitian_system: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = hermitian_system
    a64 = a.astype(np.complex64)
    x, _ = conjugate_gradient(lambda v: a64 @ v, b.astype(np.complex64), max_iter=50, tol=1e-5)
    assert x.dtype == np.complex64
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-3)


def test_cg_zero_rhs_and_bad_args() -> None:
    x, hist = conjugate_gradient(lambda v: v, np.zeros(3), max_iter=5)
    assert hist.converged and not x.any()
    with pytest.raises(ConfigError):
        conjugate_gradient(lambda v: v, np.ones(3), max_iter=-1)


@pytest.fixture
def lasso() -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """LASSO min 0.5||Qx - b||^2 + lam ||x||_1 with orthonormal Q: x* = soft(Q^T b, lam)."""
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    b = rng.standard_normal(30)
    lam = 0.4
    return q, b, lam, _soft(q.T @ b, lam)


def test_fista_lasso(lasso: tuple[np.ndarray, np.ndarray, float, np.ndarray]) -> None:
    q, b, lam, _expected = lasso
    a = 0.5 * q  # ||A||^2 = 0.25: the solution becomes soft(A^T b / 0.25, lam / 0.25)
    x, hist = fista(
        lambda x: a.T @ (a @ x - b),
        lambda v, t: _soft(v, lam * t),
        np.zeros(30),
        step=4.0,
        max_iter=500,
        tol=1e-12,
        objective=lambda x: 0.5 * np.sum((a @ x - b) ** 2) + lam * np.abs(x).sum(),
    )
    np.testing.assert_allclose(x, _soft(q.T @ b / 0.5, lam / 0.25), atol=1e-9)
    assert hist.converged and len(hist.objective) == hist.n_iter
    assert hist.objective[-1] <= hist.objective[0] + 1e-12


def test_fista_complex_lasso_keeps_dtype() -> None:
    rng = np.random.default_rng(2)
    b = (rng.standard_normal(16) + 1j * rng.standard_normal(16)).astype(np.complex64)
    x, _ = fista(lambda x: x - b, lambda v, t: _soft(v, 0.3 * t), np.zeros(16, np.complex64), step=1.0, max_iter=50)
    assert x.dtype == np.complex64
    np.testing.assert_allclose(x, _soft(b, 0.3), atol=1e-6)


def test_admm_lasso(lasso: tuple[np.ndarray, np.ndarray, float, np.ndarray]) -> None:
    q, b, lam, expected = lasso
    rho = 1.0

    def solve_x(v: np.ndarray, rho: float) -> np.ndarray:
        # argmin 0.5||Qx - b||^2 + rho/2 ||x - v||^2 = (Q^T b + rho v) / (1 + rho)
        return (q.T @ b + rho * v) / (1 + rho)

    x, hist = admm(solve_x, lambda v, t: _soft(v, lam * t), lambda x: x, np.zeros(30), rho=rho, max_iter=500, tol=1e-12)
    np.testing.assert_allclose(x, expected, atol=1e-8)
    assert hist.converged


def test_pdhg_lasso(lasso: tuple[np.ndarray, np.ndarray, float, np.ndarray]) -> None:
    q, b, lam, expected = lasso
    x, _hist = pdhg(
        lambda x: x,
        lambda z: z,
        lambda v, s: np.clip(v, -lam, lam),
        np.zeros(30),
        op_norm=1.0,
        grad_f=lambda x: q.T @ (q @ x - b),
        lipschitz=1.0,
        max_iter=3000,
        tol=1e-13,
    )
    np.testing.assert_allclose(x, expected, atol=1e-7)


def test_pdhg_tv_denoising_1d_of_step_keeps_step() -> None:
    """TV denoising of a noiseless step with a small weight: the result is the step shrunk towards its mean."""
    n = 40
    f = np.where(np.arange(n) < n // 2, 0.0, 1.0)
    lam = 0.5

    def grad(x: np.ndarray) -> np.ndarray:
        return np.diff(x)

    def grad_adj(z: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        out[:-1] -= z
        out[1:] += z
        return out

    x, _ = pdhg(
        grad,
        grad_adj,
        lambda v, s: np.clip(v, -lam, lam),
        np.zeros(n),
        op_norm=2.0,
        grad_f=lambda x: x - f,
        lipschitz=1.0,
        max_iter=5000,
        tol=1e-14,
    )
    # analytic: each plateau of length n/2 moves by lam / (n/2) towards the other
    shift = lam / (n // 2)
    np.testing.assert_allclose(x[: n // 2], shift, atol=1e-6)
    np.testing.assert_allclose(x[n // 2 :], 1 - shift, atol=1e-6)


def test_prox_tv_of_step_matches_analytic() -> None:
    n = 40
    f = np.where(np.arange(n) < n // 2, 0.0, 1.0)
    x, dual = prox_tv(f, 0.5, axes=(-1,), n_iter=3000)
    # circular TV: two jumps, each plateau moves by 2 * weight / (n / 2) towards the other
    shift = 2 * 0.5 / (n // 2)
    np.testing.assert_allclose(x[: n // 2], shift, atol=1e-4)
    np.testing.assert_allclose(x[n // 2 :], 1 - shift, atol=1e-4)
    assert dual.shape == (1, n)
    # warm start from the converged dual: already there after one iteration
    x2, _ = prox_tv(f, 0.5, axes=(-1,), n_iter=1, dual=dual)
    np.testing.assert_allclose(x2, x, atol=1e-3)


def test_soft_threshold_complex() -> None:
    v = np.array([3 + 4j, 0.1j, -2.0], dtype=np.complex64)
    out = soft_threshold(v, 1.0)
    np.testing.assert_allclose(out, [(3 + 4j) * 0.8, 0, -1.0], atol=1e-6)
    assert out.dtype == np.complex64
