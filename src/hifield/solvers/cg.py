"""Conjugate gradient for Hermitian positive (semi-)definite systems given as a callable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from hifield.backend import copy, copy_like, norm, vdot, zeros_like
from hifield.errors import ConfigError
from hifield.solvers._checks import check_same_kind
from hifield.solvers.history import History

Array = TypeVar("Array")
"""A numpy array or a ``torch.Tensor``: the solution is of the kind, dtype (and device) of ``rhs``."""


def conjugate_gradient(
    normal: Callable[[Array], Array],
    rhs: Array,
    *,
    x0: Any = None,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> tuple[Array, History]:
    """Solve ``normal(x) = rhs`` for a Hermitian positive semi-definite linear map by conjugate gradients.

    Parameters
    ----------
    normal
        The linear map ``x -> A x`` (Hermitian, positive semi-definite), e.g. ``E^H E + lambda I``.
    rhs
        Right-hand side ``b``, any shape: a numpy array or a ``torch.Tensor``. The solution has its shape, dtype,
        kind and device; ``normal`` must map that kind to itself.
    x0
        Starting point (default zeros), converted to the kind, dtype and device of ``rhs``.
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
    b: Any = rhs
    b_norm = norm(b)
    x: Any
    if x0 is None:
        x = zeros_like(b)
        r = copy(b)
    else:
        x = copy_like(x0, b)
        r = b - normal(x)
    if b_norm == 0.0:
        history.converged = True
        return zeros_like(b), history
    p = copy(r)
    rr = vdot(r, r).real
    if np.sqrt(rr) / b_norm <= tol:
        history.converged = True
        return x, history
    for _ in range(max_iter):
        ap: Any = normal(p)
        if not history.residual:
            check_same_kind("conjugate gradient", b, ap, "normal")
        pap = vdot(p, ap).real
        if pap <= 0.0:  # direction in the null space: nothing more to gain
            break
        alpha = rr / pap
        x += alpha * p
        r -= alpha * ap
        rr_new = vdot(r, r).real
        rel = float(np.sqrt(rr_new) / b_norm)
        history.residual.append(rel)
        if rel <= tol:
            history.converged = True
            break
        p *= rr_new / rr
        p += r
        rr = rr_new
    return x, history
