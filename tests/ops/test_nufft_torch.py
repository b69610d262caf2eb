"""The pure-torch NUFFT (hifield.ops.nufft_torch) against finufft: accuracy, adjointness, dtype, device, autograd."""

from __future__ import annotations

import pickle
import subprocess
import sys

import finufft
import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.ops import NUFFTOp
from hifield.ops.nufft_torch import TorchNUFFT, kernel_width

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

GRIDS = [(64, 64), (16, 24, 20)]
N_TRANS = 3
# (dtype, eps given to TorchNUFFT, largest relative L2 error accepted); measured about 8e-5 and 9e-7
PRECISIONS = [(torch.complex64, 1e-4, 5e-4), (torch.complex128, 1e-6, 1e-5)]


def _phases_rad(pattern: str, ndim: int, seed: int = 0) -> list[np.ndarray]:
    """Sample phases [rad] in [-pi, pi) per axis: radial spokes through the centre, or uniformly random."""
    rng = np.random.default_rng(seed)
    if pattern == "uniform":
        return [rng.uniform(-np.pi, np.pi, 3000) for _ in range(ndim)]
    radius = (np.arange(96) - 48) * (np.pi / 48)  # [rad], 96 samples per spoke from -pi
    directions = rng.standard_normal((40, ndim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return [np.outer(directions[:, axis], radius).ravel() for axis in range(ndim)]


def _crandn(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _finufft(coords: list[np.ndarray], modes: tuple[int, ...], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Reference type 2 (isign -1) of ``x`` and type 1 (isign +1) of ``y`` to 1e-12."""
    type2 = {2: finufft.nufft2d2, 3: finufft.nufft3d2}[len(modes)]
    type1 = {2: finufft.nufft2d1, 3: finufft.nufft3d1}[len(modes)]
    return type2(*coords, x, isign=-1, eps=1e-12), type1(*coords, y, modes, isign=1, eps=1e-12)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("modes", GRIDS, ids=["2d", "3d"])
@pytest.mark.parametrize("pattern", ["radial", "uniform"])
def test_forward_and_adjoint_match_finufft(modes: tuple[int, ...], pattern: str) -> None:
    coords = _phases_rad(pattern, len(modes))
    rng = np.random.default_rng(1)
    x = _crandn(rng, (N_TRANS, *modes))
    y = _crandn(rng, (N_TRANS, coords[0].size))
    y_ref, x_ref = _finufft(coords, modes, x, y)
    for dtype, eps, tol in PRECISIONS:
        op = TorchNUFFT(coords, modes, eps)
        y_t = op.forward(torch.from_numpy(x).to(dtype))
        x_t = op.adjoint(torch.from_numpy(y).to(dtype))
        assert y_t.dtype == dtype and x_t.dtype == dtype
        assert y_t.shape == (N_TRANS, coords[0].size) and x_t.shape == (N_TRANS, *modes)
        assert _rel(y_t.numpy(), y_ref) < tol, dtype
        assert _rel(x_t.numpy(), x_ref) < tol, dtype


@pytest.mark.parametrize("modes", [(15, 9), (5, 3), (7, 4, 9)])
def test_odd_and_small_grids_match_the_explicit_sum(modes: tuple[int, ...]) -> None:
    """Mode ``r`` carries frequency ``r - n // 2`` (finufft's modeord 0), odd sizes and grids under the kernel."""
    rng = np.random.default_rng(2)
    coords = [rng.uniform(-4.0, 4.0, 300) for _ in modes]  # outside [-pi, pi) too: wrapped
    freqs = np.meshgrid(*[np.arange(n) - n // 2 for n in modes], indexing="ij")
    dft = np.exp(-1j * sum(np.outer(c, f.ravel()) for c, f in zip(coords, freqs, strict=True)))
    x = _crandn(rng, (2, *modes))
    y = _crandn(rng, (2, 300))
    op = TorchNUFFT(coords, modes, 1e-7)
    assert _rel(op.forward(torch.from_numpy(x)).numpy(), x.reshape(2, -1) @ dft.T) < 1e-6
    assert _rel(op.adjoint(torch.from_numpy(y)).numpy().reshape(2, -1), y @ dft.conj()) < 1e-6


def test_matches_the_numpy_path_of_nufftop() -> None:
    """Built from NUFFTOp's phases and modes and scaled by its ``_scale``, it reproduces ``op @ x`` and ``op.H @ y``."""
    rng = np.random.default_rng(3)
    k = np.stack([np.zeros(2000), rng.uniform(-250, 250, 2000), rng.uniform(-250, 250, 2000)], axis=-1)  # [1/m]
    op = NUFFTOp(k, (1, 48, 40), (0.005, 0.002, 0.002), batch_shape=(N_TRANS,), eps=1e-12)
    torch_op = TorchNUFFT(op._coords, op._modes, 1e-6)
    x = _crandn(rng, op.ishape)
    y = _crandn(rng, op.oshape)
    y_t = torch_op.forward(torch.from_numpy(x).reshape(N_TRANS, *op._modes)) * op._scale
    x_t = torch_op.adjoint(torch.from_numpy(y)) * op._scale
    assert _rel(y_t.numpy(), op @ x) < 1e-5
    assert _rel(x_t.numpy(), (op.H @ y).reshape(N_TRANS, *op._modes)) < 1e-5


@pytest.mark.parametrize(("dtype", "tol"), [(torch.complex128, 1e-12), (torch.complex64, 1e-5)])
@pytest.mark.parametrize("modes", GRIDS, ids=["2d", "3d"])
def test_adjoint_is_the_exact_adjoint(modes: tuple[int, ...], dtype: object, tol: float) -> None:
    coords = _phases_rad("uniform", len(modes), seed=4)
    op = TorchNUFFT(coords, modes, 1e-4)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((N_TRANS, *modes), dtype=dtype, generator=gen)
    y = torch.randn((N_TRANS, coords[0].size), dtype=dtype, generator=gen)
    lhs = torch.vdot(op.forward(x).reshape(-1), y.reshape(-1))
    rhs = torch.vdot(x.reshape(-1), op.adjoint(y).reshape(-1))
    scale = float(torch.linalg.vector_norm(op.forward(x)) * torch.linalg.vector_norm(y))
    assert abs(complex(lhs) - complex(rhs)) / scale < tol


def test_unbatched_shapes_real_input_and_shape_errors() -> None:
    coords = _phases_rad("uniform", 2)
    op = TorchNUFFT(coords, (64, 64))
    x = torch.randn(64, 64)  # real float32: promoted to complex64
    y = op.forward(x)
    assert y.shape == (coords[0].size,) and y.dtype == torch.complex64
    assert torch.allclose(y, op.forward(x[None].to(torch.complex64))[0])
    assert op.adjoint(y).shape == (64, 64)
    with pytest.raises(ConfigError):
        op.forward(torch.zeros(2, 64, 63, dtype=torch.complex64))
    with pytest.raises(ConfigError):
        op.adjoint(torch.zeros(2, 7, dtype=torch.complex64))
    with pytest.raises(ConfigError):
        TorchNUFFT(coords, (64, 64, 64))


def test_kernel_width_follows_eps() -> None:
    assert [kernel_width(e) for e in (1e-2, 1e-4, 1e-6, 1e-12, 1e-20)] == [3, 5, 7, 13, 16]
    with pytest.raises(ConfigError):
        kernel_width(0.0)


def test_gradients_flow_through_forward_and_adjoint() -> None:
    rng = np.random.default_rng(6)
    op = TorchNUFFT([rng.uniform(-np.pi, np.pi, 40) for _ in range(2)], (6, 5), 1e-6)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn((2, 6, 5), dtype=torch.complex128, generator=gen, requires_grad=True)
    y = torch.randn((2, 40), dtype=torch.complex128, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(op.forward, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(op.adjoint, (y,), fast_mode=True)
    # the gradient of ||A x - b||^2 / 2 is A^H (A x - b)
    b = torch.randn((2, 40), dtype=torch.complex128, generator=gen)
    loss = 0.5 * torch.linalg.vector_norm(op.forward(x) - b) ** 2
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.allclose(grad, op.adjoint(op.forward(x) - b).detach(), atol=1e-10)


def test_pickle_drops_device_tensors() -> None:
    op = TorchNUFFT(_phases_rad("uniform", 2), (64, 64))
    x = torch.randn((1, 64, 64), dtype=torch.complex64)
    y = op.forward(x)
    clone = pickle.loads(pickle.dumps(op))
    assert clone._device_cache == {}
    assert torch.equal(clone.forward(x), y)


def test_module_import_does_not_import_torch() -> None:
    code = "import sys, hifield.ops.nufft_torch; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.strip() == "False"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("modes", GRIDS, ids=["2d", "3d"])
def test_cuda_matches_cpu(modes: tuple[int, ...]) -> None:
    coords = _phases_rad("radial", len(modes))
    op = TorchNUFFT(coords, modes, 1e-4)
    gen = torch.Generator().manual_seed(8)
    for dtype, tol in [(torch.complex64, 1e-5), (torch.complex128, 1e-12)]:
        x = torch.randn((N_TRANS, *modes), dtype=dtype, generator=gen)
        y = torch.randn((N_TRANS, coords[0].size), dtype=dtype, generator=gen)
        y_gpu, x_gpu = op.forward(x.cuda()), op.adjoint(y.cuda())
        assert y_gpu.is_cuda and x_gpu.is_cuda and y_gpu.dtype == dtype and x_gpu.dtype == dtype
        y_cpu, x_cpu = op.forward(x), op.adjoint(y)
        assert float(torch.linalg.vector_norm(y_gpu.cpu() - y_cpu) / torch.linalg.vector_norm(y_cpu)) < tol
        assert float(torch.linalg.vector_norm(x_gpu.cpu() - x_cpu) / torch.linalg.vector_norm(x_cpu)) < tol
    # gradients on the device
    x = torch.randn((N_TRANS, *modes), dtype=torch.complex64, device="cuda", requires_grad=True)
    torch.linalg.vector_norm(op.forward(x)).backward()
    assert x.grad is not None and x.grad.is_cuda
