"""Conjugate gradient for Hermitian positive (semi-)definite systems given as a callable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.solvers.history import History

Array = NDArray[Any]


def _dot(a: Array, b: Array) -> complex:
    return complex(np.vdot(a.ravel(), b.ravel()))


def conjugate_gradient(
    normal: Callable[[Array], Array],
    rhs: Array,
    *,
    x0: Array | None = None,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> tuple[Array, History]:
    """Solve ``normal(x) = rhs`` for a Hermitian positive semi-definite linear map by conjugate gradients.

    Parameters
    ----------
    normal
        The linear map ``x -> A x`` (Hermitian, positive semi-definite), e.g. ``E^H E + lambda I``.
    rhs
        Right-hand side ``b``, any shape; the solution has the same shape and dtype.
    x0
        Starting point (default zeros).
    max_iter
        Maximum number of iterations.
    tol
        Stop when the relative residual ``||b - A x|| / ||b||`` falls below ``tol``.

    Returns
    -------
    x
        The approximate solution.
    history
        Relative residual per iteration and whether ``tol`` was reached.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x, hist = conjugate_gradient(lambda v: a @ v, np.array([1.0, 2.0]), max_iter=10, tol=1e-12)
    >>> np.round(x, 6).tolist(), hist.converged
    ([0.090909, 0.636364], True)
    """
    if max_iter < 0 or tol < 0:
        raise ConfigError(f"conjugate gradient needs max_iter >= 0 and tol >= 0; got {max_iter}, {tol}")
    history = History()
    b_norm = float(np.linalg.norm(rhs))
    if x0 is None:
        x = np.zeros_like(rhs)
        r = rhs.copy()
    else:
        x = np.array(x0, dtype=rhs.dtype, copy=True)
        r = rhs - normal(x)
    if b_norm == 0.0:
        history.converged = True
        return np.zeros_like(rhs), history
    p = r.copy()
    rr = _dot(r, r).real
    if np.sqrt(rr) / b_norm <= tol:
        history.converged = True
        return x, history
    for _ in range(max_iter):
        ap = normal(p)
        pap = _dot(p, ap).real
        if pap <= 0.0:  # direction in the null space: nothing more to gain
            break
        alpha = rr / pap
        x += alpha * p
        r -= alpha * ap
        rr_new = _dot(r, r).real
        rel = float(np.sqrt(rr_new) / b_norm)
        history.residual.append(rel)
        if rel <= tol:
            history.converged = True
            break
        p *= rr_new / rr
        p += r
        rr = rr_new
    return x, history
