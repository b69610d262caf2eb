"""Torch tensors through the operators: native torch where torch has the transform, the numpy boundary elsewhere."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from hifield.backend import copy, is_tensor, norm, vdot, zeros_like
from hifield.ops import (
    CartesianSenseNormalOp,
    FFTOp,
    FiniteDifferenceOp,
    IdentityOp,
    LinearOperator,
    MaskOp,
    NUFFTOp,
    SensitivityOp,
    WaveletOp,
    fftc,
    ifftc,
)

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")


def _crandn(shape: tuple[int, ...], dtype: object = torch.complex64, seed: int = 0) -> object:
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _maps(n_maps: int, n_coils: int, spatial: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    shape = (n_maps, n_coils, *spatial)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _encoding(maps: np.ndarray, mask: np.ndarray) -> LinearOperator:
    sens = SensitivityOp(maps)
    return MaskOp(mask, sens.oshape) @ FFTOp(sens.oshape) @ sens


def test_is_tensor_recognises_tensors_only() -> None:
    assert is_tensor(torch.zeros(2))
    assert not is_tensor(np.zeros(2))
    assert not is_tensor([0.0, 1.0])


def test_backend_helpers_agree_between_numpy_and_torch() -> None:
    a = _crandn((3, 4), torch.complex128, seed=1)
    b = _crandn((3, 4), torch.complex128, seed=2)
    an, bn = a.numpy(), b.numpy()
    assert vdot(a, b) == pytest.approx(complex(np.vdot(an, bn)), rel=1e-12)
    assert vdot(a.conj(), b) == pytest.approx(complex(np.vdot(np.conj(an), bn)), rel=1e-12)
    assert norm(a) == pytest.approx(float(np.linalg.norm(an)), rel=1e-12)
    z = zeros_like(a)
    assert isinstance(z, torch.Tensor) and z.dtype == a.dtype and float(norm(z)) == 0.0
    assert type(zeros_like(an)) is np.ndarray
    c = copy(a)
    c[0, 0] = 0
    assert a[0, 0] != 0


def test_fftc_tensor_delta_is_flat_and_round_trips() -> None:
    n = 8
    x = torch.zeros((1, n, n), dtype=torch.complex128)
    x[0, n // 2, n // 2] = 1.0
    k = fftc(x)
    assert isinstance(k, torch.Tensor) and k.dtype == torch.complex128
    torch.testing.assert_close(k, torch.full((1, n, n), 1 / n, dtype=torch.complex128))
    # one pixel off-centre along x: linear phase exp(-i 2 pi k / n), k centred (analytic, as for numpy)
    x2 = torch.zeros((1, n, n), dtype=torch.complex128)
    x2[0, n // 2, n // 2 + 1] = 1.0
    kk = np.arange(n) - n // 2
    expected = np.exp(-2j * np.pi * kk / n)[None, None, :] / n * np.ones((1, n, 1))
    np.testing.assert_allclose(fftc(x2).numpy(), expected, atol=1e-12)
    torch.testing.assert_close(ifftc(fftc(x2)), x2)


@pytest.mark.parametrize(("real", "cplx"), [("float32", "complex64"), ("float64", "complex128")])
def test_fft_promotes_real_tensors_like_numpy(real: str, cplx: str) -> None:
    op = FFTOp((2, 4, 6))
    x = torch.randn((2, 4, 6), dtype=getattr(torch, real), generator=torch.Generator().manual_seed(0))
    out = op @ x
    assert out.dtype == getattr(torch, cplx)
    ref = op @ x.numpy()
    assert ref.dtype == np.dtype(cplx)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_finite_difference_tensor_analytic() -> None:
    op = FiniteDifferenceOp((4,), axes=(-1,))
    out = op @ torch.tensor([0.0, 1.0, 3.0, 6.0], dtype=torch.float64)
    assert out.tolist() == [[1.0, 2.0, 3.0, -6.0]]
    # adjoint of the circular forward difference: y[j-1] - y[j]
    back = op.H @ torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert back.tolist() == [-1.0, 1.0, 0.0, 0.0]


def test_mask_tensor_zeroes_unsampled_and_keeps_nan_free() -> None:
    op = MaskOp(np.array([True, False]), (2,))
    out = op @ torch.tensor([1 + 1j, complex("nan")], dtype=torch.complex64)
    assert out.dtype == torch.complex64 and out.tolist() == [1 + 1j, 0j]


def test_algebra_with_tensors_keeps_dtype_and_matches_numpy() -> None:
    f = FFTOp((1, 4, 6))
    ops: dict[str, LinearOperator] = {
        "scale": (2.0 - 1.5j) * f,
        "sum": f + f.H,
        "difference": f - IdentityOp((1, 4, 6)),
        "negation": -f,
        "adjoint": f.H,
        "adjoint_of_adjoint": f.H.H,
        "normal": f.normal(),
        "compose": f @ f @ f.H,
    }
    for name, op in ops.items():
        for dtype in (torch.complex64, torch.complex128):
            x = _crandn(op.ishape, dtype)
            out = op @ x
            assert isinstance(out, torch.Tensor) and out.dtype == dtype, name
            np.testing.assert_allclose(out.numpy(), op @ x.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    # FFT is unitary: its normal operator is the identity on tensors too
    x = _crandn((1, 4, 6), torch.complex128)
    torch.testing.assert_close(f.normal() @ x, x)


def test_identity_on_tensor_returns_a_copy() -> None:
    x = torch.ones(3, dtype=torch.complex64)
    out = IdentityOp((3,)) @ x
    out[0] = 5.0
    assert x[0] == 1.0


def test_encoding_normal_equals_fast_sense_normal_on_tensors() -> None:
    """``E^H E`` composed from SensitivityOp, FFTOp and MaskOp equals CartesianSenseNormalOp (both natively)."""
    for n_maps, spatial in [(1, (1, 8, 6)), (2, (2, 6, 8)), (1, (1, 7, 6))]:
        maps = _maps(n_maps, 3, spatial)
        mask = np.random.default_rng(4).random((*spatial[:2], 1)) > 0.5
        composed = _encoding(maps, np.broadcast_to(mask, spatial)).normal()
        fast = CartesianSenseNormalOp(maps, np.broadcast_to(mask, spatial))
        x = _crandn(fast.ishape, torch.complex128, seed=n_maps)
        a, b = composed @ x, fast @ x
        assert a.dtype == b.dtype == torch.complex128
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_autograd_flows_through_native_operators() -> None:
    """Gradient of ``||E x - b||^2`` (torch's conjugate-Wirtinger convention) is ``2 E^H (E x - b)``."""
    maps = _maps(1, 3, (1, 8, 6))
    mask = np.random.default_rng(3).random((1, 8, 6)) > 0.5
    e_op = _encoding(maps, mask) + 0.5 * FiniteDifferenceOp((3, 1, 8, 6), axes=(-2, -1)).H @ FiniteDifferenceOp(
        (3, 1, 8, 6), axes=(-2, -1)
    ) @ SensitivityOp(maps)
    b = _crandn(e_op.oshape, torch.complex128, seed=1)
    x = _crandn(e_op.ishape, torch.complex128, seed=2).requires_grad_(True)
    loss = torch.linalg.norm(e_op @ x - b) ** 2
    loss.backward()
    with torch.no_grad():
        expected = 2 * (e_op.H @ (e_op @ x - b))
    torch.testing.assert_close(x.grad, expected)


def test_boundary_operators_take_detached_and_conjugated_tensors() -> None:
    """The wavelet goes through numpy; the NUFFT runs in torch. Both take conjugate and strided views."""
    k = (np.random.default_rng(6).random((20, 3)) - 0.5) * np.array([0.0, 80.0, 80.0])
    nufft = NUFFTOp(k, (1, 12, 10), (0.005, 0.01, 0.01))
    wave = WaveletOp((1, 1, 16, 16), level=2)
    for op, rtol, graph in ((nufft, 5e-4, True), (wave, 1e-6, False)):
        base = _crandn((*op.ishape[:-1], 2 * op.ishape[-1]), torch.complex64, seed=3)
        x = base[..., ::2].conj().requires_grad_(False)
        x_grad = base[..., ::2].clone().requires_grad_(True)
        out = op @ x
        assert isinstance(out, torch.Tensor) and out.dtype == torch.complex64
        expected = op @ np.conj(base.numpy()[..., ::2])
        assert np.linalg.norm(out.numpy() - expected) <= rtol * np.linalg.norm(expected)
        # the torch NUFFT carries autograd; the wavelet's numpy boundary does not (documented)
        assert (op @ x_grad).requires_grad is graph


def test_numpy_stays_numpy_once_torch_is_imported() -> None:
    x = np.ones((1, 4, 6), dtype=np.complex64)
    for op in (FFTOp((1, 4, 6)), FFTOp((1, 4, 6)).normal(), 2.0 * FFTOp((1, 4, 6))):
        out = op @ x
        assert type(out) is np.ndarray and out.dtype == np.complex64


def test_tensor_constants_cached_per_device_and_dtype() -> None:
    op = SensitivityOp(_maps(1, 2, (1, 4, 4)))
    x64 = _crandn(op.ishape, torch.complex64)
    op @ x64
    op @ x64
    op @ x64.to(torch.complex128)
    assert len(op._tensors._store) == 2
    # pickling drops the tensor copies (rebuilt on demand), so a pickled operator stays numpy-only
    clone = pickle.loads(pickle.dumps(op))
    assert len(clone._tensors._store) == 0
    torch.testing.assert_close(clone @ x64, op @ x64)


@pytest.mark.gpu
def test_cuda_tensors_stay_on_the_device() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    maps = _maps(1, 3, (1, 8, 6))
    mask = np.random.default_rng(3).random((1, 8, 6)) > 0.5
    k = (np.random.default_rng(6).random((20, 3)) - 0.5) * np.array([0.0, 80.0, 80.0])
    for op in (
        _encoding(maps, mask).normal(),
        CartesianSenseNormalOp(maps, mask),
        FiniteDifferenceOp((1, 1, 8, 6)),
        NUFFTOp(k, (1, 8, 6), (0.005, 0.01, 0.01)),
        WaveletOp((1, 1, 8, 8), level=1),
    ):
        x = _crandn(op.ishape, torch.complex64).cuda()
        out = op @ x
        assert out.device == x.device and out.dtype == torch.complex64
        np.testing.assert_allclose(out.cpu().numpy(), op @ x.cpu().numpy(), rtol=1e-4, atol=1e-5)


def test_import_hifield_ops_does_not_import_torch() -> None:
    code = (
        "import sys, hifield.ops, numpy as np; hifield.ops.FFTOp((2,), axes=(-1,)) @ np.ones(2); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.strip() == "False"
