"""Sampling mask operator: keeps acquired k-space positions and zeroes the rest (self-adjoint)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hifield.backend import TensorCache, is_tensor, torch_module
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


class MaskOp(LinearOperator):
    """Multiply by a boolean (or real weight) mask broadcast to ``shape``; output on the same full grid.

    Parameters
    ----------
    mask
        Mask broadcastable to ``shape``, e.g. ``(k2, k1, k0)`` for k-space ``(coil, k2, k1, k0)``.
    shape
        Shape of the input (and output) array.

    Notes
    -----
    Torch tensors are masked natively in torch on their device (``torch.where`` for a boolean mask, a product for
    weights); the mask is copied to that device on first use and kept for later calls.

    Examples
    --------
    >>> import numpy as np
    >>> op = MaskOp(np.array([True, False]), (2,))
    >>> op @ np.array([1 + 1j, 2 + 0j], dtype=np.complex64)
    array([1.+1.j, 0.+0.j], dtype=complex64)
    """

    def __init__(self, mask: NDArray[np.bool_] | NDArray[np.floating], shape: Sequence[int]) -> None:
        mask = np.asarray(mask)
        try:
            np.broadcast_shapes(mask.shape, tuple(shape))
        except ValueError:
            raise ConfigError(
                f"sampling mask of shape {mask.shape} does not broadcast to the data shape {tuple(shape)}; "
                "pass a (k2, k1, k0) mask matching the k-space grid"
            ) from None
        if np.iscomplexobj(mask):
            raise ConfigError("sampling mask must be boolean or real; got a complex mask")
        self.mask = mask
        self._tensors = TensorCache()
        super().__init__(shape, shape, name="Mask")

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):
            torch = torch_module()
            mask = self._tensors.get("mask", self.mask, x)
            if self.mask.dtype == np.bool_:
                return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
            return (mask * x).to(x.dtype)
        if self.mask.dtype == np.bool_:
            return np.where(self.mask, x, np.zeros((), dtype=x.dtype))
        return (self.mask * x).astype(x.dtype, copy=False)

    def _adjoint(self, y: Array) -> Array:
        return self._apply(y)
