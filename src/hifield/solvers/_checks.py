"""Checks shared by the solvers: the caller's callables must answer in the kind (numpy or torch) of the start."""

from __future__ import annotations

from typing import Any

from hifield.backend import is_tensor
from hifield.errors import ConfigError


def check_same_kind(solver: str, x0: Any, result: Any, source: str) -> None:
    """Raise :class:`~hifield.errors.ConfigError` when a callable answers a numpy start with a tensor or vice versa.

    Examples
    --------
    >>> import numpy as np
    >>> check_same_kind("FISTA", np.zeros(2), np.ones(2), "prox")
    """
    if is_tensor(x0) != is_tensor(result):
        kinds = ("torch tensor", "numpy array") if is_tensor(x0) else ("numpy array", "torch tensor")
        raise ConfigError(
            f"{solver}: x0 is a {kinds[0]} but {source} returned a {kinds[1]}; pass x0 of the kind the callables use"
        )
