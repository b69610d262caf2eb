"""ADMM (scaled form) for ``min_x f(x) + g(z)`` subject to ``A x = z``, given the two proximal-type steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hifield.backend import copy, copy_input, norm, zeros_like
from hifield.errors import ConfigError
from hifield.solvers._checks import check_same_kind
from hifield.solvers.history import History

Array = TypeVar("Array")
"""A numpy array or a ``torch.Tensor``: the result is of the kind, dtype (and device) of ``x0``."""


def admm(
    solve_x: Callable[[Array, float], Array],
    prox_g: Callable[[Array, float], Array],
    op: Callable[[Array], Array],
    x0: Array,
    *,
    rho: float,
    max_iter: int = 100,
    tol: float = 1e-6,
    objective: Callable[[Array], float] | None = None,
) -> tuple[Array, History]:
    """Scaled-form ADMM (Boyd et al. 2011) for ``min f(x) + g(A x)``.

    ``x+ = argmin_x f(x) + rho/2 ||A x - z + u||^2`` (``solve_x(z - u, rho)``),
    ``z+ = prox_{g/rho}(A x+ + u)`` (``prox_g(A x+ + u, 1/rho)``), ``u+ = u + A x+ - z+``.

    Parameters
    ----------
    solve_x
        ``solve_x(v, rho) = argmin_x f(x) + rho/2 ||A x - v||^2`` (e.g. a few CG iterations).
    prox_g
        ``prox_g(v, t) = argmin_z g(z) + ||z - v||^2 / (2 t)``.
    op
        ``A``.
    x0
        Starting point, a numpy array or a ``torch.Tensor``; the result has its shape, dtype, kind and device, and
        the callables must take and return that kind.
    rho
        Penalty parameter (> 0).
    max_iter
        Maximum number of iterations.
    tol
        Stop when both the primal residual ``||A x - z||`` and the dual change ``rho ||z_k - z_{k-1}||`` are below
        ``tol`` times ``max(||A x||, ||z||)`` (relative).
    objective
        Optional objective, recorded per iteration.

    Returns
    -------
    x
        The approximate minimiser.
    history
        Relative primal residual per iteration.

    Examples
    --------
    LASSO in one variable, ``min 0.5 (x - 3)^2 + |x|`` with ``A = 1``: the minimiser is 2.

    >>> import numpy as np
    >>> soft = lambda v, t: np.sign(v) * np.maximum(np.abs(v) - t, 0)
    >>> solve = lambda v, rho: (3.0 + rho * v) / (1.0 + rho)
    >>> x, h = admm(solve, soft, lambda x: x, np.zeros(1), rho=1.0, max_iter=200, tol=1e-10)
    >>> round(float(x[0]), 6)
    2.0
    """
    if rho <= 0 or max_iter < 0 or tol < 0:
        raise ConfigError(f"ADMM needs rho > 0, max_iter >= 0, tol >= 0; got {rho}, {max_iter}, {tol}")
    history = History()
    x: Any = copy_input(x0)
    ax: Any = op(x)
    check_same_kind("ADMM", x, ax, "op")
    z: Any = copy(ax)
    u = zeros_like(z)
    for _ in range(max_iter):
        x = solve_x(z - u, rho)
        ax = op(x)
        z_old = z
        z = prox_g(ax + u, 1.0 / rho)
        if not history.residual:
            check_same_kind("ADMM", ax, x, "solve_x")
            check_same_kind("ADMM", ax, z, "prox_g")
        u = u + ax - z
        scale = max(norm(ax), norm(z), 1e-30)
        primal = norm(ax - z) / scale
        dual = rho * norm(z - z_old) / scale
        if history.record(primal, x, objective, converged=primal <= tol and dual <= tol):
            break
    return x, history
