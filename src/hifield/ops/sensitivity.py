"""Coil sensitivity operator: image(s) -> coil images, adjoint = conjugate-weighted sum over coils."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.backend import TensorCache, is_tensor, promoted, torch_module
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


class SensitivityOp(LinearOperator):
    """Multiply by coil sensitivities: ``(maps, z, y, x) -> (coil, z, y, x)``, summing over the maps.

    Parameters
    ----------
    maps
        Sensitivities of shape ``(maps, coil, z, y, x)`` (one or more ESPIRiT sets), or ``(coil, z, y, x)`` for one
        set. The forward operator computes ``y_c = sum_m S_{m,c} x_m``; the adjoint ``x_m = sum_c conj(S_{m,c}) y_c``.

    Notes
    -----
    Torch tensors are multiplied natively in torch on their device; the maps are copied to that device (in the
    promoted dtype of maps and data) on first use and kept for later calls.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.ones((1, 2, 1, 2, 2), dtype=np.complex64)
    >>> op = SensitivityOp(s)
    >>> op.ishape, op.oshape
    ((1, 1, 2, 2), (2, 1, 2, 2))
    """

    def __init__(self, maps: NDArray[np.complexfloating]) -> None:
        maps = np.asarray(maps)
        if maps.ndim == 4:
            maps = maps[None]
        if maps.ndim != 5:
            raise ConfigError(
                f"coil maps must have shape (maps, coil, z, y, x); got {maps.shape}; add the missing axes"
            )
        self.maps = maps
        self._maps_conj = np.conj(maps)
        self._tensors = TensorCache()
        n_maps, n_coils = maps.shape[:2]
        spatial = maps.shape[2:]
        super().__init__((n_maps, *spatial), (n_coils, *spatial), name="Sensitivity")

    def _maps_like(self, x: Any) -> tuple[Any, Any]:
        """The maps as a tensor on ``x``'s device, and ``x``, both in their promoted dtype."""
        dtype = promoted(self.maps, x)
        return self._tensors.get("maps", self.maps, x, dtype), x.to(dtype)

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):
            maps, x = self._maps_like(x)
            if maps.shape[0] == 1:
                return maps[0] * x[0][None]
            return torch_module().einsum("mc...,m...->c...", maps, x)
        if self.maps.shape[0] == 1:
            return self.maps[0] * x[0][None]
        return np.einsum("mc...,m...->c...", self.maps, x)

    def _adjoint(self, y: Array) -> Array:
        if is_tensor(y):
            maps, y = self._maps_like(y)
            if maps.shape[0] == 1:
                return (maps[0].conj() * y).sum(dim=0)[None]
            return torch_module().einsum("mc...,c...->m...", maps.conj(), y)
        if self.maps.shape[0] == 1:
            return np.sum(self._maps_conj[0] * y, axis=0)[None]
        return np.einsum("mc...,c...->m...", self._maps_conj, y)
