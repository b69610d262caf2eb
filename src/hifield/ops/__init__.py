"""Linear operators for MR reconstruction: FFT, coil sensitivities, sampling masks, wavelets, finite differences."""

from hifield.ops.base import AdjointOp, ComposeOp, IdentityOp, LinearOperator, ScaleOp, SumOp
from hifield.ops.fft import FFTOp, fftc, ifftc
from hifield.ops.finite_difference import FiniteDifferenceOp
from hifield.ops.mask import MaskOp
from hifield.ops.sense import CartesianSenseNormalOp
from hifield.ops.sensitivity import SensitivityOp
from hifield.ops.wavelet import WaveletOp

__all__ = [
    "AdjointOp",
    "CartesianSenseNormalOp",
    "ComposeOp",
    "FFTOp",
    "FiniteDifferenceOp",
    "IdentityOp",
    "LinearOperator",
    "MaskOp",
    "ScaleOp",
    "SensitivityOp",
    "SumOp",
    "WaveletOp",
    "fftc",
    "ifftc",
]
