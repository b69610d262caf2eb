"""Convergence record shared by the iterative solvers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What an iterative solver did, one entry per iteration.

    ``residual`` is the solver's stopping quantity: the relative residual ``||b - A x|| / ||b||`` for conjugate
    gradient, the relative change ``||x_k - x_{k-1}|| / ||x_k||`` for the proximal methods.
    """

    residual: list[float] = field(default_factory=list)
    """Stopping quantity per iteration (dimensionless)."""
    objective: list[float] = field(default_factory=list)
    """Objective value per iteration, when the caller supplied an objective (units of the objective)."""
    converged: bool = False
    """True when the tolerance was reached before ``max_iter``."""

    def record(self, residual: float, x: Any, objective: Callable[[Any], float] | None, *, converged: bool) -> bool:
        """Append one iteration (its stopping quantity, and ``objective(x)`` when given); returns ``converged``,
        marking the run converged when it is.

        Examples
        --------
        >>> h = History()
        >>> h.record(0.5, 2.0, lambda x: x * x, converged=False), h.record(1e-9, 1.0, None, converged=True)
        (False, True)
        >>> h.residual, h.objective, h.converged
        ([0.5, 1e-09], [4.0], True)
        """
        self.residual.append(residual)
        if objective is not None:
            self.objective.append(float(objective(x)))
        if converged:
            self.converged = True
        return converged

    @property
    def n_iter(self) -> int:
        """Number of iterations run."""
        return len(self.residual)
