"""Proximal maps used with the solvers: complex soft thresholding and isotropic total variation (FGP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from hifield.backend import copy, from_numpy, is_tensor, numpy_dtype, to_numpy, torch_dtype, torch_module

Array = TypeVar("Array")
"""A numpy array or a ``torch.Tensor``: results are of the kind (and device) of the input."""


def soft_threshold(v: Array, threshold: Any) -> Array:
    """Proximal map of ``threshold * |.|_1`` for real or complex ``v``: ``v * max(0, 1 - threshold / |v|)``.

    ``v`` is a numpy array or a ``torch.Tensor`` (the result is of the same kind and device); ``threshold`` is a
    number or an array (numpy or torch) broadcastable to ``v``. The result is complex: complex64 for complex64 or
    float32 input, complex128 for double precision.

    Examples
    --------
    >>> import numpy as np
    >>> soft_threshold(np.array([3.0, -0.5, 4j]), 1.0)
    array([ 2.+0.j, -0.+0.j,  0.+3.j])
    """
    a: Any = v
    if is_tensor(a):
        return _soft_threshold_torch(a, threshold)
    mag = np.abs(a)
    scale = np.maximum(mag - threshold, 0.0) / np.maximum(mag, np.finfo(np.float32).tiny)
    real = mag.dtype if mag.dtype.kind == "f" else np.float64  # integers: the scale must not round to 0 or 1
    return (a * scale.astype(real, copy=False)).astype(np.result_type(a, np.complex64), copy=False)


def _soft_threshold_torch(v: Any, threshold: Any) -> Any:
    """:func:`soft_threshold` of a tensor, promoting types as numpy does (a Python number takes the tensor's type)."""
    torch = torch_module()
    if not (v.is_floating_point() or v.is_complex()):
        v = v.to(torch.float64)  # numpy: |int| - threshold is float64
    mag = v.abs()
    thr: Any = threshold
    if is_tensor(threshold):
        thr = threshold.to(mag.device)
        work = torch.promote_types(mag.dtype, thr.dtype)
    elif isinstance(threshold, int | float) and not isinstance(threshold, np.generic):
        work = mag.dtype
    else:
        thr_np = np.asarray(threshold)
        work = torch_dtype(np.result_type(numpy_dtype(mag.dtype), thr_np))
        thr = from_numpy(thr_np, mag)
    mag_w = mag.to(work)
    scale = torch.clamp_min(mag_w - thr, 0.0) / torch.clamp_min(mag_w, float(np.finfo(np.float32).tiny))
    out = v * scale.to(mag.dtype)
    return out.to(torch.promote_types(out.dtype, torch.complex64))


def _grad(x: NDArray[Any], axes: Sequence[int], out: NDArray[Any]) -> NDArray[Any]:
    for i, axis in enumerate(axes):
        out[i] = np.roll(x, -1, axis=axis)
        out[i] -= x
    return out


def _div(p: NDArray[Any], axes: Sequence[int]) -> NDArray[Any]:
    """Negative adjoint of the forward difference: ``-grad^H p``."""
    out = np.zeros(p.shape[1:], dtype=p.dtype)
    for i, axis in enumerate(axes):
        out += p[i]
        out -= np.roll(p[i], 1, axis=axis)
    return out


def prox_tv(
    v: Array,
    weight: float,
    *,
    axes: Sequence[int] = (-2, -1),
    n_iter: int = 10,
    dual: Any = None,
) -> tuple[Array, Array]:
    """Proximal map of isotropic total variation by fast gradient projection on the dual (Beck & Teboulle 2009).

    Approximately solves ``argmin_x 0.5 ||x - v||^2 + weight * sum_i ||(grad x)_i||_2`` with circular forward
    differences along ``axes``. Warm-starting from the previous ``dual`` makes a few iterations enough inside an
    outer proximal-gradient loop.

    Parameters
    ----------
    v
        Input image (real or complex), any shape: a numpy array or a ``torch.Tensor`` (the results are then
        tensors of its dtype and device).
    weight
        TV weight (units of ``v``).
    axes
        Axes along which TV is measured.
    n_iter
        Dual iterations.
    dual
        Starting dual variable, shape ``(len(axes), *v.shape)`` (None: zeros), numpy or torch: it is converted to
        the kind of ``v``.

    Returns
    -------
    x
        The denoised image.
    dual
        The final dual variable (pass it back in next time).

    Examples
    --------
    A constant image is left unchanged:

    >>> import numpy as np
    >>> x, _ = prox_tv(np.ones((4, 4)), 0.5)
    >>> bool(np.allclose(x, 1.0))
    True
    """
    u: Any = v
    axes = tuple(int(a) % u.ndim for a in axes)
    if is_tensor(u):
        return _prox_tv_torch(v, weight, axes, n_iter, dual)
    shape = (len(axes), *u.shape)
    if is_tensor(dual):
        dual = to_numpy(dual)
    p: Any
    if weight <= 0 or not axes:
        p = np.zeros(shape, dtype=u.dtype) if dual is None else dual
        return u.copy(), p
    p = np.zeros(shape, dtype=u.dtype) if dual is None else dual.astype(u.dtype, copy=True)
    r = p.copy()
    g = np.empty(shape, dtype=u.dtype)
    step = 1.0 / (4.0 * len(axes) * weight)
    t = 1.0
    for _ in range(n_iter):
        x = u + weight * _div(r, axes)
        q = r + step * _grad(x, axes, g)
        norm = np.sqrt(np.sum(q.real**2 + q.imag**2, axis=0)) if np.iscomplexobj(q) else np.sqrt(np.sum(q**2, axis=0))
        q /= np.maximum(norm, 1.0).astype(q.real.dtype, copy=False)
        t_new = 0.5 * (1.0 + float(np.sqrt(1.0 + 4.0 * t * t)))
        r = q + ((t - 1.0) / t_new) * (q - p)
        p = q
        t = t_new
    x_out: Any = u + weight * _div(p, axes)
    return x_out, p


def _prox_tv_torch(v: Any, weight: float, axes: tuple[int, ...], n_iter: int, dual: Any) -> tuple[Any, Any]:
    """:func:`prox_tv` of a tensor: the same iterations with ``torch.roll`` on ``v``'s device and dtype."""
    torch = torch_module()
    shape = (len(axes), *v.shape)
    if dual is not None and not is_tensor(dual):
        dual = from_numpy(np.asarray(dual), v)
    if weight <= 0 or not axes:
        return copy(v), v.new_zeros(shape) if dual is None else dual
    p = v.new_zeros(shape) if dual is None else dual.to(device=v.device, dtype=v.dtype, copy=True)

    def grad(x: Any) -> Any:
        return torch.stack([torch.roll(x, -1, dims=axis) - x for axis in axes])

    def div(q: Any) -> Any:
        out = torch.zeros_like(q[0])
        for i, axis in enumerate(axes):
            out += q[i]
            out -= torch.roll(q[i], 1, dims=axis)
        return out

    r = p.clone()
    step = 1.0 / (4.0 * len(axes) * weight)
    t = 1.0
    for _ in range(n_iter):
        x = v + weight * div(r)
        q = r + step * grad(x)
        norm = (
            torch.sqrt(torch.sum(q.real**2 + q.imag**2, dim=0))
            if q.is_complex()
            else torch.sqrt(torch.sum(q**2, dim=0))
        )
        q /= torch.clamp_min(norm, 1.0)
        t_new = 0.5 * (1.0 + float(np.sqrt(1.0 + 4.0 * t * t)))
        r = q + ((t - 1.0) / t_new) * (q - p)
        p = q
        t = t_new
    return v + weight * div(p), p
