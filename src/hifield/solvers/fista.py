"""FISTA: accelerated proximal gradient for ``min_x f(x) + g(x)`` with smooth ``f`` and a cheap prox of ``g``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from hifield.backend import copy, copy_input, norm, vdot
from hifield.errors import ConfigError
from hifield.solvers._checks import check_same_kind
from hifield.solvers.history import History

Array = TypeVar("Array")
"""A numpy array or a ``torch.Tensor``: the result is of the kind, dtype (and device) of ``x0``."""


def fista(
    grad: Callable[[Array], Any],
    prox: Callable[[Any, float], Array],
    x0: Array,
    *,
    step: float,
    max_iter: int = 100,
    tol: float = 1e-6,
    objective: Callable[[Array], float] | None = None,
    restart: bool = True,
) -> tuple[Array, History]:
    """Minimise ``f(x) + g(x)`` by FISTA (Beck & Teboulle 2009) with optional adaptive restart.

    Parameters
    ----------
    grad
        Gradient of the smooth term, ``x -> grad f(x)``.
    prox
        Proximal map of the non-smooth term: ``prox(v, t) = argmin_x g(x) + ||x - v||^2 / (2 t)``.
    x0
        Starting point, a numpy array or a ``torch.Tensor``; the result has its shape, dtype, kind and device, and
        the callables must take and return that kind.
    step
        Step size ``t``, at most ``1 / L`` with ``L`` the Lipschitz constant of ``grad``.
    max_iter
        Maximum number of iterations.
    tol
        Stop when the relative change ``||x_k - x_{k-1}|| / ||x_k||`` falls below ``tol``.
    objective
        Optional ``x -> f(x) + g(x)``, recorded per iteration in the history.
    restart
        Reset the momentum when the update goes against the previous step (O'Donoghue & Candes 2015).

    Returns
    -------
    x
        The approximate minimiser.
    history
        Relative change per iteration (and objective values if given).

    Examples
    --------
    Soft thresholding: ``min_x 0.5 (x - 3)^2 + |x|`` is solved by ``x = 2``.

    >>> import numpy as np
    >>> soft = lambda v, t: np.sign(v) * np.maximum(np.abs(v) - t, 0)
    >>> x, h = fista(lambda x: x - 3.0, soft, np.zeros(1), step=1.0, max_iter=20)
    >>> x.tolist()
    [2.0]
    """
    if step <= 0 or max_iter < 0 or tol < 0:
        raise ConfigError(f"FISTA needs step > 0, max_iter >= 0, tol >= 0; got {step}, {max_iter}, {tol}")
    history = History()
    x: Any = copy_input(x0)
    z = copy(x)
    t_k = 1.0
    for _ in range(max_iter):
        g = grad(z)
        if not history.residual:
            check_same_kind("FISTA", x, g, "grad")
        x_new: Any = prox(z - step * g, step)
        if not history.residual:
            check_same_kind("FISTA", x, x_new, "prox")
        diff = x_new - x
        norm_new = norm(x_new)
        rel = norm(diff) / norm_new if norm_new > 0 else 0.0
        t_new = 0.5 * (1.0 + float(np.sqrt(1.0 + 4.0 * t_k * t_k)))
        if restart and vdot(z - x_new, diff).real > 0:
            t_k, t_new = 1.0, 1.0
        z = x_new + ((t_k - 1.0) / t_new) * diff
        x = x_new
        t_k = t_new
        if history.record(rel, x, objective, converged=rel <= tol):
            break
    return x, history
