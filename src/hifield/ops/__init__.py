"""Linear operators for MR reconstruction: FFT, NUFFT, coil sensitivities, sampling masks, wavelets, differences."""

from hifield.ops.base import AdjointOp, ComposeOp, IdentityOp, LinearOperator, ScaleOp, SumOp
from hifield.ops.fft import FFTOp, fftc, ifftc
from hifield.ops.finite_difference import FiniteDifferenceOp
from hifield.ops.mask import MaskOp
from hifield.ops.nufft import NUFFTOp, pipe_menon_density
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
    "NUFFTOp",
    "ScaleOp",
    "SensitivityOp",
    "SumOp",
    "WaveletOp",
    "fftc",
    "ifftc",
    "pipe_menon_density",
]
