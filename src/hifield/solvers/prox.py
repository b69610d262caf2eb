"""Proximal maps used with the solvers: complex soft thresholding and isotropic total variation (FGP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


def soft_threshold(v: Array, threshold: float | Array) -> Array:
    """Proximal map of ``threshold * |.|_1`` for real or complex ``v``: ``v * max(0, 1 - threshold / |v|)``.

    Examples
    --------
    >>> import numpy as np
    >>> soft_threshold(np.array([3.0, -0.5, 4j]), 1.0)
    array([ 2.+0.j, -0.+0.j,  0.+3.j])
    """
    mag = np.abs(v)
    scale = np.maximum(mag - threshold, 0.0) / np.maximum(mag, np.finfo(np.float32).tiny)
    return (v * scale.astype(mag.dtype, copy=False)).astype(np.result_type(v, np.complex64), copy=False)


def _grad(x: Array, axes: Sequence[int], out: Array) -> Array:
    for i, axis in enumerate(axes):
        out[i] = np.roll(x, -1, axis=axis)
        out[i] -= x
    return out


def _div(p: Array, axes: Sequence[int]) -> Array:
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
    dual: Array | None = None,
) -> tuple[Array, Array]:
    """Proximal map of isotropic total variation by fast gradient projection on the dual (Beck & Teboulle 2009).

    Approximately solves ``argmin_x 0.5 ||x - v||^2 + weight * sum_i ||(grad x)_i||_2`` with circular forward
    differences along ``axes``. Warm-starting from the previous ``dual`` makes a few iterations enough inside an
    outer proximal-gradient loop.

    Parameters
    ----------
    v
        Input image (real or complex), any shape.
    weight
        TV weight (units of ``v``).
    axes
        Axes along which TV is measured.
    n_iter
        Dual iterations.
    dual
        Starting dual variable, shape ``(len(axes), *v.shape)`` (None: zeros).

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
    axes = tuple(int(a) % v.ndim for a in axes)
    shape = (len(axes), *v.shape)
    if weight <= 0 or not axes:
        return v.copy(), np.zeros(shape, dtype=v.dtype) if dual is None else dual
    p = np.zeros(shape, dtype=v.dtype) if dual is None else dual.astype(v.dtype, copy=True)
    r = p.copy()
    g = np.empty(shape, dtype=v.dtype)
    step = 1.0 / (4.0 * len(axes) * weight)
    t = 1.0
    for _ in range(n_iter):
        x = v + weight * _div(r, axes)
        q = r + step * _grad(x, axes, g)
        norm = np.sqrt(np.sum(q.real**2 + q.imag**2, axis=0)) if np.iscomplexobj(q) else np.sqrt(np.sum(q**2, axis=0))
        q /= np.maximum(norm, 1.0).astype(q.real.dtype, copy=False)
        t_new = 0.5 * (1.0 + float(np.sqrt(1.0 + 4.0 * t * t)))
        r = q + ((t - 1.0) / t_new) * (q - p)
        p = q
        t = t_new
    return v + weight * _div(p, axes), p
