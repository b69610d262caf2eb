"""Torch tensors through the solvers and proximal maps: tensors in, tensors out, the same numbers as numpy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.ops import CartesianSenseNormalOp
from hifield.solvers import admm, conjugate_gradient, fista, pdhg, prox_tv, soft_threshold

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")


def _crandn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.fixture
def normal_equations() -> tuple[np.ndarray, np.ndarray]:
    """``(E^H E + 0.1 I, E^H y)`` for a random complex 80 x 20 ``E``: Hermitian positive definite, well conditioned."""
    rng = np.random.default_rng(3)
    e = _crandn(rng, 80, 20)
    y = _crandn(rng, 80)
    return e.conj().T @ e + 0.1 * np.eye(20), e.conj().T @ y


def test_cg_torch_matches_numpy_complex128(normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = normal_equations
    x_np, hist_np = conjugate_gradient(lambda v: a @ v, b, max_iter=100, tol=1e-10)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    x_t, hist_t = conjugate_gradient(lambda v: at @ v, bt, max_iter=100, tol=1e-10)
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.complex128 and x_t.device == bt.device
    np.testing.assert_allclose(x_t.numpy(), x_np, rtol=0, atol=1e-6 * np.abs(x_np).max())
    np.testing.assert_allclose(x_t.numpy(), np.linalg.solve(a, b), rtol=1e-8)
    assert hist_t.converged and hist_np.converged and hist_t.n_iter == hist_np.n_iter
    np.testing.assert_allclose(hist_t.residual, hist_np.residual, rtol=1e-6)
    assert not torch.equal(bt, torch.zeros_like(bt))  # the right-hand side is not overwritten


def test_cg_torch_warm_start_from_tensor_or_numpy(normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = normal_equations
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    x_np, hist_np = conjugate_gradient(lambda v: a @ v, b, x0=0.5 * b, max_iter=7, tol=0.0)
    for x0 in (0.5 * bt, 0.5 * b):
        x_t, hist_t = conjugate_gradient(lambda v: at @ v, bt, x0=x0, max_iter=7, tol=0.0)
        assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.complex128
        np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-10)
        np.testing.assert_allclose(hist_t.residual, hist_np.residual, rtol=1e-8)
    # the starting point is copied, never updated in place
    x0 = 0.5 * bt
    x0_before = x0.clone()
    conjugate_gradient(lambda v: at @ v, bt, x0=x0, max_iter=3)
    assert torch.equal(x0, x0_before)
    # a tensor start for a numpy system comes back as numpy
    x_mixed, _ = conjugate_gradient(lambda v: a @ v, b, x0=0.5 * bt, max_iter=7, tol=0.0)
    assert isinstance(x_mixed, np.ndarray)
    np.testing.assert_array_equal(x_mixed, x_np)


def test_cg_torch_keeps_complex64_and_zero_rhs(normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = normal_equations
    at, bt = torch.from_numpy(a.astype(np.complex64)), torch.from_numpy(b.astype(np.complex64))
    x_t, hist = conjugate_gradient(lambda v: at @ v, bt, max_iter=100, tol=1e-5)
    assert x_t.dtype == torch.complex64 and hist.converged
    np.testing.assert_allclose(x_t.numpy(), np.linalg.solve(a, b), rtol=1e-3)
    x0, hist0 = conjugate_gradient(lambda v: at @ v, torch.zeros(4, dtype=torch.complex64), max_iter=5)
    assert isinstance(x0, torch.Tensor) and hist0.converged and not bool(x0.abs().sum())


def test_cg_sense_with_torch_operator_matches_numpy() -> None:
    """The real use: CG-SENSE through the operator, which computes natively in torch on tensors."""
    rng = np.random.default_rng(5)
    maps = _crandn(rng, 1, 4, 1, 16, 16).astype(np.complex64)
    mask = np.zeros((1, 16, 16), dtype=bool)
    mask[:, ::2, :] = True
    mask[:, 6:10, :] = True
    op = CartesianSenseNormalOp(maps, mask)
    aty = op.apply(_crandn(rng, 1, 1, 16, 16).astype(np.complex64))

    def reg(x: object) -> object:
        return op.apply(x) + 0.01 * x

    x_np, hist_np = conjugate_gradient(reg, aty, max_iter=15, tol=0.0)
    x_t, hist_t = conjugate_gradient(reg, torch.from_numpy(aty), max_iter=15, tol=0.0)
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.complex64 and x_t.shape == aty.shape
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=2e-4 * np.abs(x_np).max())
    np.testing.assert_allclose(hist_t.residual, hist_np.residual, rtol=2e-3)


def test_cg_rejects_operator_of_the_other_kind(normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = normal_equations
    at = torch.from_numpy(a)
    with pytest.raises(ConfigError, match="normal returned a torch tensor"):
        conjugate_gradient(lambda v: at @ torch.from_numpy(v), b, max_iter=5)


@pytest.fixture
def sparse_recovery() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compressed sensing in miniature: 40 Gaussian measurements of an 8-sparse vector of length 80."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((40, 80)) / np.sqrt(40)
    x_true = np.zeros(80)
    x_true[rng.choice(80, 8, replace=False)] = rng.choice([-1.0, 1.0], 8) * (1 + rng.random(8))
    return a, a @ x_true, x_true


def test_fista_l1_torch_matches_numpy(sparse_recovery: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    a, b, x_true = sparse_recovery
    lam = 0.01
    step = 1.0 / np.linalg.norm(a, 2) ** 2

    def run(a_: object, b_: object, x0: object) -> tuple[object, object]:
        return fista(
            lambda x: a_.T @ (a_ @ x - b_),
            lambda v, t: soft_threshold(v, lam * t).real,
            x0,
            step=step,
            max_iter=2000,
            tol=1e-10,
            objective=lambda x: 0.5 * float(((a_ @ x - b_) ** 2).sum()) + lam * float(abs(x).sum()),
        )

    x_np, hist_np = run(a, b, np.zeros(80))
    x_t, hist_t = run(torch.from_numpy(a), torch.from_numpy(b), torch.zeros(80, dtype=torch.float64))
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.float64
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-8)
    assert hist_t.n_iter == hist_np.n_iter and hist_t.converged
    np.testing.assert_allclose(hist_t.objective, hist_np.objective, rtol=1e-9)
    # and it did recover the sparse vector: its support, and its values up to the L1 bias
    np.testing.assert_array_equal(np.abs(x_t.numpy()) > 0.05, x_true != 0)
    np.testing.assert_allclose(x_t.numpy(), x_true, atol=0.1)


def test_fista_complex64_torch_keeps_dtype() -> None:
    rng = np.random.default_rng(2)
    b = _crandn(rng, 16).astype(np.complex64)
    bt = torch.from_numpy(b)
    x_np, _ = fista(lambda x: x - b, lambda v, t: soft_threshold(v, 0.3 * t), np.zeros(16, np.complex64), step=1.0)
    x_t, _ = fista(lambda x: x - bt, lambda v, t: soft_threshold(v, 0.3 * t), torch.zeros_like(bt), step=1.0)
    assert x_t.dtype == torch.complex64
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-6)


def test_fista_rejects_a_numpy_start_for_a_torch_problem() -> None:
    bt = torch.ones(4, dtype=torch.float64)
    with pytest.raises(ConfigError, match="x0 is a numpy array but grad returned a torch tensor"):
        fista(lambda x: bt - 1, lambda v, t: v, np.zeros(4), step=1.0)
    with pytest.raises(ConfigError, match="x0 is a torch tensor but prox returned a numpy array"):
        fista(lambda x: x - bt, lambda v, t: v.numpy(), torch.zeros(4, dtype=torch.float64), step=1.0)


def test_admm_lasso_torch_matches_numpy(sparse_recovery: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    a, b, _ = sparse_recovery
    lam, rho = 0.01, 1.0

    def run(a_: object, b_: object, inv: object, x0: object) -> tuple[object, object]:
        # x-step: argmin 0.5||A x - b||^2 + rho/2 ||x - v||^2 = (A^T A + rho I)^-1 (A^T b + rho v)
        return admm(
            lambda v, r: inv @ (a_.T @ b_ + r * v),
            lambda v, t: soft_threshold(v, lam * t).real,
            lambda x: x,
            x0,
            rho=rho,
            max_iter=3000,
            tol=1e-10,
        )

    inv = np.linalg.inv(a.T @ a + rho * np.eye(80))
    x_np, hist_np = run(a, b, inv, np.zeros(80))
    x_t, hist_t = run(
        torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(inv), torch.zeros(80, dtype=torch.float64)
    )
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.float64
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-8)
    assert hist_t.n_iter == hist_np.n_iter and hist_t.converged
    # same minimiser as FISTA reaches (the LASSO has a unique solution here)
    x_f, _ = fista(
        lambda x: a.T @ (a @ x - b),
        lambda v, t: soft_threshold(v, lam * t).real,
        np.zeros(80),
        step=1.0 / np.linalg.norm(a, 2) ** 2,
        max_iter=5000,
        tol=1e-12,
    )
    np.testing.assert_allclose(x_t.numpy(), x_f, atol=1e-6)


def _diff(x: object) -> object:
    return x[1:] - x[:-1]


def test_pdhg_tv_denoising_torch_matches_numpy() -> None:
    """1-D TV denoising of a step with the analytic answer (each plateau moves by lam / (n/2))."""
    n, lam = 40, 0.5
    f = np.where(np.arange(n) < n // 2, 0.0, 1.0)

    def run(f_: object, x0: object, zeros: object, clip: object) -> tuple[object, object]:
        def adj(z: object) -> object:
            out = zeros(n)
            out[:-1] -= z
            out[1:] += z
            return out

        return pdhg(
            _diff,
            adj,
            lambda v, s: clip(v, -lam, lam),
            x0,
            op_norm=2.0,
            grad_f=lambda x: x - f_,
            lipschitz=1.0,
            max_iter=5000,
            tol=1e-14,
        )

    x_np, hist_np = run(f, np.zeros(n), np.zeros, np.clip)
    zeros64 = lambda m: torch.zeros(m, dtype=torch.float64)  # noqa: E731
    x_t, hist_t = run(torch.from_numpy(f), zeros64(n), zeros64, torch.clamp)
    assert isinstance(x_t, torch.Tensor) and x_t.dtype == torch.float64
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=1e-10)
    assert hist_t.n_iter == hist_np.n_iter
    shift = lam / (n // 2)
    np.testing.assert_allclose(x_t.numpy()[: n // 2], shift, atol=1e-6)
    np.testing.assert_allclose(x_t.numpy()[n // 2 :], 1 - shift, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float32, np.float64])
@pytest.mark.parametrize("kind", ["python", "np.float64", "np.float32", "numpy array", "tensor"])
def test_soft_threshold_tensor_equals_numpy(dtype: type, kind: str) -> None:
    rng = np.random.default_rng(4)
    v = rng.standard_normal((3, 50)) * 2
    if np.iscomplexobj(np.zeros(0, dtype)):
        v = v + 1j * rng.standard_normal((3, 50)) * 2
    v = v.astype(dtype)
    v[0, :5] = 0.0  # exact zeros stay zeros (no 0 / 0)
    thresholds = {
        "python": 0.7,
        "np.float64": np.float64(0.7),
        "np.float32": np.float32(0.7),
        "numpy array": rng.random((3, 1)).astype(np.float32),
        "tensor": None,
    }
    threshold = thresholds[kind]
    t_threshold = torch.from_numpy(thresholds["numpy array"]) if kind == "tensor" else threshold
    expected = soft_threshold(v, thresholds["numpy array"] if kind == "tensor" else threshold)
    got = soft_threshold(torch.from_numpy(v), t_threshold)
    assert isinstance(got, torch.Tensor)
    assert got.numpy().dtype == expected.dtype
    tol = 1e-6 if np.finfo(expected.dtype).bits == 32 else 1e-14
    np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol)
    assert not got[0, :5].abs().sum()


def test_soft_threshold_of_integer_tensor_is_complex128() -> None:
    got = soft_threshold(torch.tensor([3, -1, 0]), 1.0)
    expected = soft_threshold(np.array([3, -1, 0]), 1.0)
    assert got.dtype == torch.complex128 and expected.dtype == np.complex128
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(expected, [2, 0, 0])


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.complex64])
def test_prox_tv_tensor_equals_numpy(dtype: type) -> None:
    rng = np.random.default_rng(8)
    v = rng.standard_normal((2, 12, 10))
    if np.iscomplexobj(np.zeros(0, dtype)):
        v = v + 1j * rng.standard_normal((2, 12, 10))
    v = v.astype(dtype)
    x_np, dual_np = prox_tv(v, 0.3, n_iter=30)
    vt = torch.from_numpy(v)
    x_t, dual_t = prox_tv(vt, 0.3, n_iter=30)
    assert isinstance(x_t, torch.Tensor) and isinstance(dual_t, torch.Tensor)
    assert x_t.dtype == vt.dtype and dual_t.dtype == vt.dtype and dual_t.shape == dual_np.shape == (2, *v.shape)
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    np.testing.assert_allclose(x_t.numpy(), x_np, atol=tol)
    np.testing.assert_allclose(dual_t.numpy(), dual_np, atol=tol)
    # warm start from a numpy or a tensor dual, along other axes
    x2_np, _ = prox_tv(v, 0.3, axes=(0, -1), n_iter=5, dual=dual_np)
    for dual in (dual_np, torch.from_numpy(dual_np)):
        x2_t, _ = prox_tv(vt, 0.3, axes=(0, -1), n_iter=5, dual=dual)
        np.testing.assert_allclose(x2_t.numpy(), x2_np, atol=tol)
    # and a tensor dual for a numpy image
    x2_mixed, dual_mixed = prox_tv(v, 0.3, axes=(0, -1), n_iter=5, dual=torch.from_numpy(dual_np))
    assert isinstance(x2_mixed, np.ndarray) and isinstance(dual_mixed, np.ndarray)
    np.testing.assert_array_equal(x2_mixed, x2_np)


def test_prox_tv_tensor_of_step_matches_analytic() -> None:
    n = 40
    f = torch.where(torch.arange(n) < n // 2, 0.0, 1.0).to(torch.float64)
    x, _ = prox_tv(f, 0.5, axes=(-1,), n_iter=3000)
    shift = 2 * 0.5 / (n // 2)  # circular TV: two jumps
    np.testing.assert_allclose(x[: n // 2].numpy(), shift, atol=1e-4)
    np.testing.assert_allclose(x[n // 2 :].numpy(), 1 - shift, atol=1e-4)
    x0, d0 = prox_tv(f, 0.0)
    assert torch.equal(x0, f) and x0 is not f and d0.shape == (2, n)


def test_numpy_solves_do_not_import_torch() -> None:
    code = (
        "import sys, numpy as np; from hifield.solvers import conjugate_gradient, fista, soft_threshold, prox_tv; "
        "conjugate_gradient(lambda v: 2 * v, np.ones(3)); fista(lambda x: x, soft_threshold, np.ones(3), step=0.5); "
        "prox_tv(np.ones((4, 4)), 0.1); print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.strip() == "False"


_DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ],
    ),
]


@pytest.mark.parametrize("device", _DEVICES)
def test_solvers_keep_the_device(device: str, normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = normal_equations
    at, bt = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    x_np, _ = conjugate_gradient(lambda v: a @ v, b, x0=0.5 * b, max_iter=30, tol=1e-10)
    x_t, _ = conjugate_gradient(lambda v: at @ v, bt, x0=0.5 * b, max_iter=30, tol=1e-10)
    assert x_t.device.type == device
    np.testing.assert_allclose(x_t.cpu().numpy(), x_np, atol=1e-8)
    thresholds = np.linspace(0.1, 1.0, 20).astype(np.float32)
    x_np, _ = fista(lambda x: x - b, lambda v, t: soft_threshold(v, thresholds * t), np.zeros(20, complex), step=1.0)
    x_t, _ = fista(lambda x: x - bt, lambda v, t: soft_threshold(v, thresholds * t), torch.zeros_like(bt), step=1.0)
    assert x_t.device.type == device and x_t.dtype == torch.complex128
    np.testing.assert_allclose(x_t.cpu().numpy(), x_np, atol=1e-12)
    img = np.random.default_rng(9).standard_normal((8, 8))
    x_np, dual_np = prox_tv(img, 0.2, n_iter=10)
    x_t, dual_t = prox_tv(torch.from_numpy(img).to(device), 0.2, n_iter=10, dual=np.zeros_like(dual_np))
    assert x_t.device.type == device and dual_t.device.type == device
    np.testing.assert_allclose(x_t.cpu().numpy(), x_np, atol=1e-12)


def test_gradients_flow_back_to_the_right_hand_side(normal_equations: tuple[np.ndarray, np.ndarray]) -> None:
    """Autograd through CG: d sum(A^-1 b) / db = A^-H 1 (the step sizes count as constants; exact once converged)."""
    a, b = normal_equations
    at = torch.from_numpy(a)
    bt = torch.from_numpy(b.real.copy()).to(torch.complex128).requires_grad_(True)
    x, hist = conjugate_gradient(lambda v: at @ v, bt, max_iter=100, tol=1e-13)
    assert hist.converged and x.requires_grad
    x.real.sum().backward()
    expected = np.linalg.solve(a.conj().T, np.ones(20))
    np.testing.assert_allclose(bt.grad.numpy(), expected, atol=1e-8)
