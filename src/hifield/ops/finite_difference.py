"""Finite-difference (discrete gradient) operator with circular boundaries, the sparsifying transform of TV."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hifield.backend import is_tensor, torch_module
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

    Notes
    -----
    Torch tensors are differenced natively with ``torch.roll`` on their device.

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
        if is_tensor(x):
            torch = torch_module()
            if not self.axes:
                return torch.zeros(self.oshape, dtype=x.dtype, device=x.device)
            return torch.stack([torch.roll(x, -1, dims=axis) - x for axis in self.axes])
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
        if is_tensor(y):
            torch = torch_module()
            out = torch.zeros(self.ishape, dtype=y.dtype, device=y.device)
            for i, axis in enumerate(self.axes):
                # (roll(y, 1) - y)[j] = y[j-1] - y[j]
                out = out + (torch.roll(y[i], 1, dims=axis) - y[i])
            return out
        out = np.zeros(self.ishape, dtype=y.dtype)
        nd = out.ndim
        for i, axis in enumerate(self.axes):
            yi = y[i]
            # (roll(y, 1) - y)[j] = y[j-1] - y[j]
            out[_sl(nd, axis, slice(1, None))] += yi[_sl(nd, axis, slice(None, -1))]
            out[_sl(nd, axis, slice(0, 1))] += yi[_sl(nd, axis, slice(-1, None))]
            out -= yi
        return out
