"""Coil sensitivity operator: image(s) -> coil images, adjoint = conjugate-weighted sum over coils."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


class SensitivityOp(LinearOperator):
    """Multiply by coil sensitivities: ``(maps, z, y, x) -> (coil, z, y, x)``, summing over the maps.

    Parameters
    ----------
    maps
        Sensitivities of shape ``(maps, coil, z, y, x)`` (one or more ESPIRiT sets), or ``(coil, z, y, x)`` for one
        set. The forward operator computes ``y_c = sum_m S_{m,c} x_m``; the adjoint ``x_m = sum_c conj(S_{m,c}) y_c``.

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
        n_maps, n_coils = maps.shape[:2]
        spatial = maps.shape[2:]
        super().__init__((n_maps, *spatial), (n_coils, *spatial), name="Sensitivity")

    def _apply(self, x: Array) -> Array:
        if self.maps.shape[0] == 1:
            return self.maps[0] * x[0][None]
        return np.einsum("mc...,m...->c...", self.maps, x)

    def _adjoint(self, y: Array) -> Array:
        if self.maps.shape[0] == 1:
            return np.sum(self._maps_conj[0] * y, axis=0)[None]
        return np.einsum("mc...,c...->m...", self._maps_conj, y)
