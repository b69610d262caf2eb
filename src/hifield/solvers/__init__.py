"""Iterative solvers that take callables and know nothing of MRI: CG, FISTA, ADMM, PDHG (numpy or torch arrays)."""

from hifield.solvers.admm import admm
from hifield.solvers.cg import conjugate_gradient
from hifield.solvers.fista import fista
from hifield.solvers.history import History
from hifield.solvers.pdhg import pdhg
from hifield.solvers.prox import prox_tv, soft_threshold

__all__ = ["History", "admm", "conjugate_gradient", "fista", "pdhg", "prox_tv", "soft_threshold"]
