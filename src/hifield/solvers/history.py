"""Convergence record shared by the iterative solvers."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    @property
    def n_iter(self) -> int:
        """Number of iterations run."""
        return len(self.residual)
