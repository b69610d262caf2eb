"""Every operator through one contract: adjointness, linearity, shapes, dtype kept, shape errors naming the operator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from hifield.errors import ReconstructionError
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
)


def _crandn(rng: np.random.Generator, shape: tuple[int, ...], dtype: type = np.complex128) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _maps(n_maps: int, n_coils: int, spatial: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    return _crandn(rng, (n_maps, n_coils, *spatial), np.complex64)


def _encoding() -> LinearOperator:
    sens = SensitivityOp(_maps(1, 3, (1, 8, 6)))
    mask = np.random.default_rng(3).random((1, 8, 6)) > 0.5
    return MaskOp(mask, sens.oshape) @ FFTOp(sens.oshape) @ sens


OPERATORS: dict[str, Callable[[], LinearOperator]] = {
    "fft3d": lambda: FFTOp((2, 4, 6, 8)),
    "fft2d_axes": lambda: FFTOp((3, 5, 6), axes=(-2, -1)),
    "sensitivity_1map": lambda: SensitivityOp(_maps(1, 4, (2, 5, 6))),
    "sensitivity_2maps": lambda: SensitivityOp(_maps(2, 4, (1, 5, 6))),
    "mask_bool": lambda: MaskOp(np.random.default_rng(1).random((1, 6, 8)) > 0.4, (3, 1, 6, 8)),
    "mask_weights": lambda: MaskOp(np.random.default_rng(2).random((6, 8)), (2, 6, 8)),
    "wavelet_db4": lambda: WaveletOp((1, 1, 32, 32), level=2),
    "wavelet_padded_3d": lambda: WaveletOp((1, 10, 12, 14), wavelet="haar", level=2),
    "wavelet_shifted": lambda: WaveletOp((1, 1, 16, 24), level=2, shift=(0, 3, 5)),
    "finite_difference": lambda: FiniteDifferenceOp((1, 2, 5, 6), axes=(-3, -2, -1)),
    "identity": lambda: IdentityOp((4, 3)),
    "encoding_composite": _encoding,
    "adjoint_of_fft": lambda: FFTOp((1, 4, 4)).H,
    "normal_of_encoding": lambda: _encoding().normal(),
    "sense_normal_even": lambda: CartesianSenseNormalOp(
        _maps(2, 3, (2, 6, 8)), np.random.default_rng(4).random((2, 6, 8)) > 0.5
    ),
    "sense_normal_odd_lines": lambda: CartesianSenseNormalOp(
        _maps(1, 3, (1, 7, 6)), np.broadcast_to(np.random.default_rng(5).random((1, 7, 1)) > 0.5, (1, 7, 6))
    ),
    "nufft_2d_batched": lambda: NUFFTOp(
        (np.random.default_rng(6).random((5, 7, 3)) - 0.5) * np.array([0.0, 80.0, 80.0]),
        (1, 12, 10),
        (0.005, 0.01, 0.01),
        batch_shape=(3,),
    ),
    "nufft_3d": lambda: NUFFTOp(
        (np.random.default_rng(7).random((40, 3)) - 0.5) * np.array([100.0, 80.0, 80.0]), (4, 8, 6), (0.01, 0.01, 0.01)
    ),
    "sum_scale": lambda: (2.0 - 1.5j) * FFTOp((1, 4, 6)) + FFTOp((1, 4, 6)).H,
    "difference": lambda: FFTOp((2, 3), axes=(-2, -1)) - IdentityOp((2, 3)),
}


@pytest.fixture(params=sorted(OPERATORS))
def op(request: pytest.FixtureRequest) -> LinearOperator:
    return OPERATORS[request.param]()


def test_adjointness_complex128(op: LinearOperator) -> None:
    rng = np.random.default_rng(0)
    x = _crandn(rng, op.ishape)
    y = _crandn(rng, op.oshape)
    lhs = np.vdot(op @ x, y)
    rhs = np.vdot(x, op.H @ y)
    scale = np.linalg.norm(op @ x) * np.linalg.norm(y)
    assert abs(lhs - rhs) <= 1e-10 * scale


def test_linearity(op: LinearOperator) -> None:
    rng = np.random.default_rng(1)
    x = _crandn(rng, op.ishape)
    z = _crandn(rng, op.ishape)
    a, b = 0.7 - 0.2j, -1.3 + 0.4j
    lhs = op @ (a * x + b * z)
    rhs = a * (op @ x) + b * (op @ z)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10 * np.linalg.norm(rhs))


def test_shapes_and_dtype_kept(op: LinearOperator) -> None:
    rng = np.random.default_rng(2)
    x = _crandn(rng, op.ishape, np.complex64)
    y = _crandn(rng, op.oshape, np.complex64)
    fx = op @ x
    hy = op.H @ y
    assert fx.shape == op.oshape and hy.shape == op.ishape
    assert fx.dtype == np.complex64 and hy.dtype == np.complex64
    # complex64 results agree with the complex128 computation to single precision
    ref = op @ x.astype(np.complex128)
    assert np.linalg.norm(fx - ref) <= 1e-5 * max(np.linalg.norm(ref), 1e-30)


def test_wrong_input_shape_names_operator(op: LinearOperator) -> None:
    bad = np.zeros((*op.ishape, 2), dtype=np.complex64)
    with pytest.raises(ReconstructionError, match="input shape"):
        op @ bad
    try:
        op @ bad
    except ReconstructionError as err:
        assert op.name.split(" ")[0].split("^")[0].strip("(") in str(err)
        assert "\n" not in str(err)


def test_deterministic(op: LinearOperator) -> None:
    x = _crandn(np.random.default_rng(3), op.ishape)
    np.testing.assert_array_equal(op @ x, op @ x)


# -- torch tensors through the same operators (skipped where torch is not installed) ---------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_torch_in_torch_out_matches_numpy(op: LinearOperator, dtype: type) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = _crandn(rng, op.ishape, dtype)
    y = _crandn(rng, op.oshape, dtype)
    fx = op @ torch.from_numpy(x)
    hy = op.H @ torch.from_numpy(y)
    assert isinstance(fx, torch.Tensor) and isinstance(hy, torch.Tensor)
    expected_dtype = torch.complex64 if dtype == np.complex64 else torch.complex128
    assert fx.dtype == expected_dtype and hy.dtype == expected_dtype
    assert tuple(fx.shape) == op.oshape and tuple(hy.shape) == op.ishape
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    if isinstance(op, NUFFTOp):  # two approximate transforms (finufft, torch gridding), each accurate to its eps
        tol = 5e-4 if dtype == np.complex64 else 10 * op.eps
    ref_f, ref_h = op @ x, op.H @ y
    assert isinstance(ref_f, np.ndarray) and isinstance(ref_h, np.ndarray)  # numpy in stays numpy out
    assert np.linalg.norm(fx.numpy() - ref_f) <= tol * np.linalg.norm(ref_f)
    assert np.linalg.norm(hy.numpy() - ref_h) <= tol * np.linalg.norm(ref_h)


@pytest.mark.torch
def test_torch_adjointness_complex128(op: LinearOperator) -> None:
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(op.ishape, dtype=torch.complex128, generator=gen)
    y = torch.randn(op.oshape, dtype=torch.complex128, generator=gen)
    ax = op @ x
    lhs = torch.vdot(ax.flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), (op.H @ y).flatten())
    assert abs(complex(lhs - rhs)) <= 1e-10 * float(torch.linalg.norm(ax) * torch.linalg.norm(y))


@pytest.mark.torch
def test_torch_linearity(op: LinearOperator) -> None:
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(op.ishape, dtype=torch.complex128, generator=gen)
    z = torch.randn(op.ishape, dtype=torch.complex128, generator=gen)
    a, b = 0.7 - 0.2j, -1.3 + 0.4j
    rhs = a * (op @ x) + b * (op @ z)
    assert float(torch.linalg.norm(op @ (a * x + b * z) - rhs)) <= 1e-10 * float(torch.linalg.norm(rhs))


@pytest.mark.torch
def test_torch_wrong_input_shape_names_operator(op: LinearOperator) -> None:
    torch = pytest.importorskip("torch")
    bad = torch.zeros((*op.ishape, 2), dtype=torch.complex64)
    with pytest.raises(ReconstructionError, match="input shape") as err:
        op @ bad
    assert "torch.Size" not in str(err.value) and "\n" not in str(err.value)
