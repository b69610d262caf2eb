"""Centred orthonormal FFT operator and the helper functions behind it (image <-> k-space)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


def fftc(x: Array, *, axes: Sequence[int] = (-3, -2, -1)) -> Array:
    """Centred orthonormal forward FFT (image -> k-space): ``fftshift(fftn(ifftshift(x), norm="ortho"))``.

    Parameters
    ----------
    x
        Array, any shape; complex64 stays complex64.
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
    y = scipy.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho", workers=-1)
    return np.fft.fftshift(y, axes=axes)


def ifftc(k: Array, *, axes: Sequence[int] = (-3, -2, -1)) -> Array:
    """Centred orthonormal inverse FFT (k-space -> image): ``fftshift(ifftn(ifftshift(k), norm="ortho"))``.

    Parameters
    ----------
    k
        Array, any shape; complex64 stays complex64.
    axes
        Axes to transform (default: the last three, ``(k2, k1, k0)``).
    """
    axes = tuple(axes)
    y = scipy.fft.ifftn(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho", workers=-1)
    return np.fft.fftshift(y, axes=axes)


class FFTOp(LinearOperator):
    """Centred orthonormal FFT over ``axes`` (unitary: the adjoint is the inverse FFT).

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
        if not np.iscomplexobj(x):
            x = x.astype(np.result_type(x.dtype, np.complex64))
        return fftc(x, axes=self.axes)

    def _adjoint(self, y: Array) -> Array:
        if not np.iscomplexobj(y):
            y = y.astype(np.result_type(y.dtype, np.complex64))
        return ifftc(y, axes=self.axes)
