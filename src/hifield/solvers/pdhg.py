"""Primal-dual hybrid gradient (Chambolle-Pock, with the Condat-Vu gradient step for a smooth term)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hifield.backend import copy_input, norm, zeros_like
from hifield.errors import ConfigError
from hifield.solvers._checks import check_same_kind
from hifield.solvers.history import History

Array = TypeVar("Array")
"""A numpy array or a ``torch.Tensor``: the result is of the kind, dtype (and device) of ``x0``."""


def pdhg(
    op: Callable[[Array], Any],
    op_adjoint: Callable[[Any], Any],
    prox_dual: Callable[[Any, float], Any],
    x0: Array,
    *,
    op_norm: float,
    grad_f: Callable[[Array], Any] | None = None,
    lipschitz: float = 0.0,
    prox_g: Callable[[Any, float], Array] | None = None,
    tau: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    objective: Callable[[Array], float] | None = None,
) -> tuple[Array, History]:
    """Minimise ``f(x) + g(x) + h(K x)`` by primal-dual iterations (Condat 2013, Vu 2013; Chambolle-Pock for f = 0).

    ``x+ = prox_{tau g}(x - tau (grad f(x) + K^H z))``, ``z+ = prox_{sigma h*}(z + sigma K (2 x+ - x))``, with
    step sizes satisfying ``1/tau - sigma ||K||^2 >= L/2``: by default ``sigma = 1 / ||K||`` and
    ``tau = 1 / (L/2 + ||K||)``.

    Parameters
    ----------
    op, op_adjoint
        ``K`` and ``K^H``.
    prox_dual
        ``prox_dual(v, sigma)``: proximal map of ``sigma h*`` (the convex conjugate of ``h``); for
        ``h = lam ||.||_1`` it is the projection onto ``|v| <= lam``.
    x0
        Starting point, a numpy array or a ``torch.Tensor``; the result has its shape, dtype, kind and device, and
        the callables must take and return that kind.
    op_norm
        An upper bound of ``||K||``.
    grad_f
        Gradient of the smooth term (None: ``f = 0``).
    lipschitz
        Lipschitz constant ``L`` of ``grad_f``.
    prox_g
        ``prox_g(v, tau)``: proximal map of ``tau g`` (None: ``g = 0``).
    tau
        Primal step (default as above); ``sigma`` follows from the step condition.
    max_iter
        Maximum number of iterations.
    tol
        Stop when ``||x_k - x_{k-1}|| / ||x_k||`` falls below ``tol``.
    objective
        Optional objective, recorded per iteration.

    Returns
    -------
    x
        The approximate minimiser.
    history
        Relative change per iteration.

    Examples
    --------
    ``min_x 0.5 (x - 3)^2 + |x|`` (K = identity, h = |.|): the minimiser is 2.

    >>> import numpy as np
    >>> proj = lambda v, s: np.clip(v, -1.0, 1.0)
    >>> x, h = pdhg(lambda x: x, lambda z: z, proj, np.zeros(1), op_norm=1.0,
    ...             grad_f=lambda x: x - 3.0, lipschitz=1.0, max_iter=500, tol=1e-12)
    >>> round(float(x[0]), 6)
    2.0
    """
    if op_norm <= 0 or max_iter < 0 or tol < 0 or lipschitz < 0:
        raise ConfigError(
            f"PDHG needs op_norm > 0, lipschitz >= 0, max_iter >= 0, tol >= 0; "
            f"got {op_norm}, {lipschitz}, {max_iter}, {tol}"
        )
    if tau is None:
        sigma = 1.0 / op_norm
        tau = 1.0 / (0.5 * lipschitz + op_norm)
    else:
        sigma = (1.0 / tau - 0.5 * lipschitz) / op_norm**2
        if sigma <= 0:
            raise ConfigError(f"PDHG step tau={tau} is too large for L={lipschitz}; use tau < {2 / lipschitz}")
    tau = float(tau)
    sigma = float(sigma)
    history = History()
    x: Any = copy_input(x0)
    kx: Any = op(x)
    check_same_kind("PDHG", x, kx, "op")
    z = zeros_like(kx)
    for _ in range(max_iter):
        step = op_adjoint(z)
        if grad_f is not None:
            step = step + grad_f(x)
        x_new = x - tau * step
        if prox_g is not None:
            x_new = prox_g(x_new, tau)
        z = prox_dual(z + sigma * op(2 * x_new - x), sigma)
        if not history.residual:
            check_same_kind("PDHG", x, x_new, "op_adjoint, grad_f or prox_g")
            check_same_kind("PDHG", x, z, "prox_dual")
        norm_new = norm(x_new)
        rel = norm(x_new - x) / norm_new if norm_new > 0 else 0.0
        x = x_new
        if history.record(rel, x, objective, converged=rel <= tol):
            break
    return x, history
