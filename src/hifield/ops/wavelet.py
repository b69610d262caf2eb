"""Orthonormal discrete wavelet transform operator (PyWavelets, periodised) with optional circular shifts."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.backend import from_numpy, is_tensor, to_numpy
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


class WaveletOp(LinearOperator):
    """Orthonormal wavelet transform over the spatial ``axes``; coefficients packed into one array.

    Axes of size 1 are not transformed. Each transformed axis is zero-padded to a multiple of ``2**level`` so that
    the periodised transform of an orthogonal wavelet (Daubechies, Symlets, Haar) is unitary on the padded grid;
    the adjoint is the inverse transform followed by cropping. A circular ``shift`` applied before the transform
    (``WaveletOp.with_random_shift``) makes an L1 penalty shift-invariant on average (cycle spinning), as BART's
    ``pics -R W`` does with its random shifts.

    Parameters
    ----------
    shape
        Input shape, e.g. ``(maps, z, y, x)``.
    axes
        Candidate axes to transform (default the last three); those of size 1 are skipped.
    wavelet
        PyWavelets name of an orthogonal wavelet (default ``"db4"``).
    level
        Decomposition levels (capped at what the smallest transformed axis allows; at least 1).
    shift
        Circular shift applied along ``axes`` before the transform (one integer per entry of ``axes``).

    Notes
    -----
    PyWavelets works on numpy arrays only: a ``torch.Tensor`` is copied to the host (``detach().cpu().numpy()``),
    transformed there and copied back to its device with the same dtype; no autograd graph passes through.

    Examples
    --------
    >>> import numpy as np
    >>> op = WaveletOp((1, 1, 16, 16), level=2)
    >>> x = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.complex64)
    >>> w = op @ x
    >>> w.shape, w.dtype, bool(np.allclose(op.H @ w, x, atol=1e-5))
    ((1, 1, 16, 16), dtype('complex64'), True)
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        axes: Sequence[int] = (-3, -2, -1),
        wavelet: str = "db4",
        level: int = 4,
        shift: Sequence[int] | None = None,
    ) -> None:
        import pywt

        shape = tuple(int(n) for n in shape)
        ndim = len(shape)
        all_axes = tuple(int(a) % ndim for a in axes)
        if shift is None:
            shift = (0,) * len(all_axes)
        if len(shift) != len(all_axes):
            raise ConfigError(f"wavelet shift needs one value per axis {all_axes}; got {tuple(shift)}")
        self.shift = tuple(int(s) for s, a in zip(shift, all_axes, strict=True) if shape[a] > 1)
        self.wavelet_axes = tuple(a for a in all_axes if shape[a] > 1)
        self._candidate_axes = all_axes
        try:
            self._wavelet = pywt.Wavelet(wavelet)
        except ValueError:
            raise ConfigError(f"unknown wavelet {wavelet!r}; use a PyWavelets name such as 'db4' or 'haar'") from None
        if not self._wavelet.orthogonal:
            raise ConfigError(f"wavelet {wavelet!r} is not orthogonal; use 'db4', 'sym4' or 'haar'")
        self.wavelet = wavelet
        if self.wavelet_axes:
            max_level = min(pywt.dwt_max_level(shape[a], self._wavelet.dec_len) for a in self.wavelet_axes)
        else:
            max_level = 1
        self.level = max(1, min(int(level), max_level))
        block = 2**self.level
        padded = list(shape)
        for a in self.wavelet_axes:
            padded[a] = -(-shape[a] // block) * block
        self.padded_shape = tuple(padded)
        self._pad = [(0, p - n) for p, n in zip(padded, shape, strict=True)]
        self._needs_pad = self.padded_shape != shape
        super().__init__(shape, self.padded_shape, name=f"Wavelet[{wavelet}]")
        self._slices: Any = None
        self.detail_mask: NDArray[np.bool_] = np.ones(self.oshape, dtype=bool)
        if self.wavelet_axes:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Level value", category=UserWarning)
                coeffs = pywt.wavedecn(
                    np.zeros(self.padded_shape, dtype=np.float32),
                    self._wavelet,
                    mode="periodization",
                    level=self.level,
                    axes=self.wavelet_axes,
                )
            _, self._slices = pywt.coeffs_to_array(coeffs, axes=self.wavelet_axes)
            self.detail_mask[self._slices[0]] = False
        else:
            self.detail_mask[...] = False

    def with_shift(self, shift: Sequence[int]) -> WaveletOp:
        """The same transform with another circular ``shift`` (one value per candidate axis)."""
        return WaveletOp(self.ishape, axes=self._candidate_axes, wavelet=self.wavelet, level=self.level, shift=shift)

    def with_random_shift(self, rng: np.random.Generator) -> WaveletOp:
        """The same transform after a random circular shift in ``[0, 2**level)`` along each axis."""
        shift = rng.integers(0, 2**self.level, size=len(self._candidate_axes))
        return self.with_shift(tuple(int(s) for s in shift))

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):
            return from_numpy(self._apply(to_numpy(x)), x)
        import pywt

        if not self.wavelet_axes:
            return x.copy()
        if any(self.shift):
            x = np.roll(x, self.shift, axis=self.wavelet_axes)
        if self._needs_pad:
            x = np.pad(x, self._pad)
        with warnings.catch_warnings():
            # short axes: "level too high ... boundary effects" is harmless for the periodised (unitary) transform
            warnings.filterwarnings("ignore", message="Level value", category=UserWarning)
            coeffs = pywt.wavedecn(x, self._wavelet, mode="periodization", level=self.level, axes=self.wavelet_axes)
        arr, _ = pywt.coeffs_to_array(coeffs, axes=self.wavelet_axes)
        return arr.astype(x.dtype, copy=False)

    def _adjoint(self, y: Array) -> Array:
        if is_tensor(y):
            return from_numpy(self._adjoint(to_numpy(y)), y)
        import pywt

        if not self.wavelet_axes:
            return y.copy()
        coeffs = pywt.array_to_coeffs(y, self._slices, output_format="wavedecn")
        x = pywt.waverecn(coeffs, self._wavelet, mode="periodization", axes=self.wavelet_axes)
        if self._needs_pad:
            x = x[tuple(slice(0, n) for n in self.ishape)]
        if any(self.shift):
            x = np.roll(x, tuple(-s for s in self.shift), axis=self.wavelet_axes)
        return x.astype(y.dtype, copy=False)
