"""Finite-difference (discrete gradient) operator with circular boundaries, the sparsifying transform of TV."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hifield.ops.base import Array, LinearOperator


def _sl(ndim: int, axis: int, s: slice | int) -> tuple[slice | int, ...]:
    index: list[slice | int] = [slice(None)] * ndim
    index[axis] = s
    return tuple(index)


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
        nd = x.ndim
        for i, axis in enumerate(self.axes):
            o = out[i]
            np.subtract(
                x[_sl(nd, axis, slice(1, None))],
                x[_sl(nd, axis, slice(None, -1))],
                out=o[_sl(nd, axis, slice(None, -1))],
            )
            np.subtract(
                x[_sl(nd, axis, slice(0, 1))], x[_sl(nd, axis, slice(-1, None))], out=o[_sl(nd, axis, slice(-1, None))]
            )
        return out

    def _adjoint(self, y: Array) -> Array:
        out = np.zeros(self.ishape, dtype=y.dtype)
        nd = out.ndim
        for i, axis in enumerate(self.axes):
            yi = y[i]
            # (roll(y, 1) - y)[j] = y[j-1] - y[j]
            out[_sl(nd, axis, slice(1, None))] += yi[_sl(nd, axis, slice(None, -1))]
            out[_sl(nd, axis, slice(0, 1))] += yi[_sl(nd, axis, slice(-1, None))]
            out -= yi
        return out
