"""Finite-difference (discrete gradient) operator with circular boundaries, the sparsifying transform of TV."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hifield.ops.base import Array, LinearOperator


class FiniteDifferenceOp(LinearOperator):
    """Forward differences ``x[i+1] - x[i]`` (circular) along ``axes``, stacked on a new leading axis.

    Parameters
    ----------
    shape
        Input shape.
    axes
        Axes to differentiate (default: the last two; axes of size 1 give zeros).

    Examples
    --------
    >>> import numpy as np
    >>> op = FiniteDifferenceOp((4,), axes=(-1,))
    >>> op @ np.array([0.0, 1.0, 3.0, 6.0])
    array([[ 1.,  2.,  3., -6.]])
    """

    def __init__(self, shape: Sequence[int], *, axes: Sequence[int] = (-2, -1)) -> None:
        shape = tuple(int(n) for n in shape)
        self.axes = tuple(int(a) % len(shape) for a in axes)
        super().__init__(shape, (len(self.axes), *shape), name="FiniteDifference")

    def _apply(self, x: Array) -> Array:
        out = np.empty(self.oshape, dtype=x.dtype)
        for i, axis in enumerate(self.axes):
            out[i] = np.roll(x, -1, axis=axis) - x
        return out

    def _adjoint(self, y: Array) -> Array:
        out = np.zeros(self.ishape, dtype=y.dtype)
        for i, axis in enumerate(self.axes):
            out += np.roll(y[i], 1, axis=axis) - y[i]
        return out
