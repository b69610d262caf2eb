"""Centred orthonormal FFT operator and the helper functions behind it (image <-> k-space)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from hifield.backend import as_complex, is_tensor, torch_module
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


def _fftc_torch(x: Array, axes: tuple[int, ...], *, inverse: bool) -> Array:
    """The centred orthonormal FFT of a tensor with ``torch.fft`` (on the tensor's device)."""
    fft = torch_module().fft
    transform = fft.ifftn if inverse else fft.fftn
    return fft.fftshift(transform(fft.ifftshift(as_complex(x), dim=axes), dim=axes, norm="ortho"), dim=axes)


def fftc(x: Array, *, axes: Sequence[int] = (-3, -2, -1)) -> Array:
    """Centred orthonormal forward FFT (image -> k-space): ``fftshift(fftn(ifftshift(x), norm="ortho"))``.

    Parameters
    ----------
    x
        Array or ``torch.Tensor`` (transformed with ``torch.fft`` on its device), any shape; complex64 stays
        complex64.
    axes
        Axes to transform (default: the last three, ``(z, y, x)``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((1, 4, 4), dtype=np.complex64); x[0, 2, 2] = 1
    >>> bool(np.allclose(fftc(x), 0.25))
    True
    """
    axes = tuple(axes)
    if is_tensor(x):
        return _fftc_torch(x, axes, inverse=False)
    y = scipy.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho", workers=-1)
    return np.fft.fftshift(y, axes=axes)


def ifftc(k: Array, *, axes: Sequence[int] = (-3, -2, -1)) -> Array:
    """Centred orthonormal inverse FFT (k-space -> image): ``fftshift(ifftn(ifftshift(k), norm="ortho"))``.

    Parameters
    ----------
    k
        Array or ``torch.Tensor`` (transformed with ``torch.fft`` on its device), any shape; complex64 stays
        complex64.
    axes
        Axes to transform (default: the last three, ``(k2, k1, k0)``).
    """
    axes = tuple(axes)
    if is_tensor(k):
        return _fftc_torch(k, axes, inverse=True)
    y = scipy.fft.ifftn(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho", workers=-1)
    return np.fft.fftshift(y, axes=axes)


class FFTOp(LinearOperator):
    """Centred orthonormal FFT over ``axes`` (unitary: the adjoint is the inverse FFT).

    Torch tensors are transformed natively with ``torch.fft`` (GPU tensors stay on the GPU); real input is
    promoted to complex (float32 -> complex64, float64 -> complex128).

    Parameters
    ----------
    shape
        Shape of the input (and output) array.
    axes
        Axes to transform (default: the last three).
    """

    def __init__(self, shape: Sequence[int], *, axes: Sequence[int] = (-3, -2, -1)) -> None:
        super().__init__(shape, shape, name="FFT")
        ndim = len(self.ishape)
        if any(not -ndim <= int(a) < ndim for a in axes):
            raise ConfigError(f"FFT axes {tuple(axes)} do not exist in a {ndim}-axis array {self.ishape}")
        self.axes = tuple(int(a) for a in axes)

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):
            return _fftc_torch(x, self.axes, inverse=False)
        if not np.iscomplexobj(x):
            x = x.astype(np.result_type(x.dtype, np.complex64))
        return fftc(x, axes=self.axes)

    def _adjoint(self, y: Array) -> Array:
        if is_tensor(y):
            return _fftc_torch(y, self.axes, inverse=True)
        if not np.iscomplexobj(y):
            y = y.astype(np.result_type(y.dtype, np.complex64))
        return ifftc(y, axes=self.axes)
