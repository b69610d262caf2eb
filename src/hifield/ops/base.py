"""Linear operator algebra: composition with ``@``, sums, scalar multiples, adjoints and normal operators."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from hifield.backend import copy, is_tensor
from hifield.errors import ConfigError, ReconstructionError

Shape = tuple[int, ...]
Array = NDArray[Any]


def _as_shape(shape: Sequence[int]) -> Shape:
    return tuple(int(n) for n in shape)


def _checked(x: Array, shape: tuple[int, ...], name: str, side: str) -> Array:
    """``x`` as an array (numpy unless it is a tensor), refused unless its shape is the operator's ``side`` shape."""
    if not isinstance(x, np.ndarray) and not is_tensor(x):
        x = np.asarray(x)
    if tuple(x.shape) != shape:
        raise ReconstructionError(
            f"{name}: input shape {tuple(x.shape)} does not match the operator's {side} shape "
            f"{shape}; reshape the data or build the operator for this shape"
        )
    return x


class LinearOperator:
    """A linear map from arrays of shape :attr:`ishape` to arrays of shape :attr:`oshape`.

    Subclasses implement :meth:`_apply` and :meth:`_adjoint`; the public :meth:`apply` (also ``op @ x`` and
    ``op(x)``) checks the input shape and raises :class:`~hifield.errors.ReconstructionError` naming the operator.
    Operators combine: ``a @ b`` (apply ``b`` then ``a``), ``a + b``, ``a - b``, ``2.0 * a``, ``a.H`` (adjoint),
    ``a.normal()`` (``a.H @ a``). The dtype of the input is kept: complex64 in gives complex64 out.

    Every operator of :mod:`hifield.ops` also takes a ``torch.Tensor`` (where torch is installed) and returns a
    tensor of the same dtype on the same device; numpy in gives numpy out. Operators with a torch equivalent
    compute natively in torch (so on a GPU tensor they run on the GPU); the others say in their docstring that they
    go through numpy on the host. torch is never imported by :mod:`hifield.ops` itself.

    Parameters
    ----------
    ishape
        Shape of the input array.
    oshape
        Shape of the output array.
    name
        Short name used in error messages and ``repr``.

    Examples
    --------
    >>> import numpy as np
    >>> from hifield.ops import FFTOp
    >>> f = FFTOp((4, 4), axes=(-2, -1))
    >>> x = np.ones((4, 4), dtype=np.complex64)
    >>> y = (f.H @ f) @ x
    >>> bool(np.allclose(y, x)), y.dtype
    (True, dtype('complex64'))
    """

    def __init__(self, ishape: Sequence[int], oshape: Sequence[int], *, name: str | None = None) -> None:
        self.ishape: Shape = _as_shape(ishape)
        self.oshape: Shape = _as_shape(oshape)
        self.name: str = name or type(self).__name__

    # -- to implement -------------------------------------------------------------------------------------------
    def _apply(self, x: Array) -> Array:
        raise NotImplementedError

    def _adjoint(self, y: Array) -> Array:
        raise NotImplementedError

    # -- public -------------------------------------------------------------------------------------------------
    def apply(self, x: Array) -> Array:
        """Apply the operator to ``x`` of shape :attr:`ishape`; returns shape :attr:`oshape`.

        ``x`` is a numpy array (or anything :func:`numpy.asarray` takes) or a ``torch.Tensor``; the result is of
        the same kind, dtype and device.
        """
        return self._apply(_checked(x, self.ishape, self.name, "input"))

    def apply_adjoint(self, y: Array) -> Array:
        """Apply the adjoint to ``y`` of shape :attr:`oshape`; returns shape :attr:`ishape` (numpy or torch)."""
        return self._adjoint(_checked(y, self.oshape, f"{self.name}^H", "output"))

    def __call__(self, x: Array) -> Array:
        return self.apply(x)

    @property
    def H(self) -> LinearOperator:
        """The adjoint operator."""
        return AdjointOp(self)

    def normal(self) -> LinearOperator:
        """The normal operator ``A^H A`` (subclasses may return a cheaper equivalent)."""
        return ComposeOp(self.H, self)

    @overload
    def __matmul__(self, other: LinearOperator) -> LinearOperator: ...

    @overload
    def __matmul__(self, other: Array) -> Array: ...

    def __matmul__(self, other: LinearOperator | Array) -> LinearOperator | Array:
        if isinstance(other, LinearOperator):
            return ComposeOp(self, other)
        return self.apply(other)

    def __add__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumOp(self, other)

    def __sub__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return SumOp(self, ScaleOp(other, -1.0))

    def __mul__(self, scalar: complex) -> LinearOperator:
        if not isinstance(scalar, numbers.Number):
            return NotImplemented
        return ScaleOp(self, scalar)  # type: ignore[arg-type]

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return ScaleOp(self, -1.0)

    def __repr__(self) -> str:
        return f"{self.name}({self.ishape} -> {self.oshape})"


class IdentityOp(LinearOperator):
    """The identity on arrays of a given shape.

    Examples
    --------
    >>> import numpy as np
    >>> IdentityOp((3,)) @ np.arange(3.0)
    array([0., 1., 2.])
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__(shape, shape, name="Identity")

    def _apply(self, x: Array) -> Array:
        return copy(x)

    def _adjoint(self, y: Array) -> Array:
        return self._apply(y)

    def normal(self) -> LinearOperator:
        return self


class AdjointOp(LinearOperator):
    """The adjoint of an operator (``op.H``)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.oshape, op.ishape, name=f"{op.name}^H")
        self.op = op

    def _apply(self, x: Array) -> Array:
        return self.op._adjoint(x)

    def _adjoint(self, y: Array) -> Array:
        return self.op._apply(y)

    @property
    def H(self) -> LinearOperator:
        return self.op


class ComposeOp(LinearOperator):
    """``outer @ inner``: apply ``inner`` first, then ``outer``; shapes checked when built."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if outer.ishape != inner.oshape:
            raise ConfigError(
                f"cannot compose {outer.name} (input shape {outer.ishape}) after {inner.name} "
                f"(output shape {inner.oshape}); the shapes must agree"
            )
        super().__init__(inner.ishape, outer.oshape, name=f"{outer.name} @ {inner.name}")
        self.outer = outer
        self.inner = inner

    def _apply(self, x: Array) -> Array:
        return self.outer._apply(self.inner._apply(x))

    def _adjoint(self, y: Array) -> Array:
        return self.inner._adjoint(self.outer._adjoint(y))


class SumOp(LinearOperator):
    """``a + b`` for operators with equal input and output shapes."""

    def __init__(self, a: LinearOperator, b: LinearOperator) -> None:
        if a.ishape != b.ishape or a.oshape != b.oshape:
            raise ConfigError(
                f"cannot add {a.name} ({a.ishape} -> {a.oshape}) and {b.name} ({b.ishape} -> {b.oshape}); "
                "both must map the same shapes"
            )
        super().__init__(a.ishape, a.oshape, name=f"({a.name} + {b.name})")
        self.a = a
        self.b = b

    def _apply(self, x: Array) -> Array:
        return self.a._apply(x) + self.b._apply(x)

    def _adjoint(self, y: Array) -> Array:
        return self.a._adjoint(y) + self.b._adjoint(y)


class ScaleOp(LinearOperator):
    """``scalar * op`` (the adjoint uses the complex conjugate of the scalar)."""

    def __init__(self, op: LinearOperator, scalar: complex) -> None:
        # Python scalars are "weak" in NumPy's promotion rules, so complex64 data stays complex64.
        value: complex = complex(scalar)
        self.scalar: complex | float = value.real if value.imag == 0 else value
        super().__init__(op.ishape, op.oshape, name=f"{self.scalar!r}*{op.name}")
        self.op = op

    def _apply(self, x: Array) -> Array:
        return self.scalar * self.op._apply(x)

    def _adjoint(self, y: Array) -> Array:
        return self.scalar.conjugate() * self.op._adjoint(y)
