"""Private helpers that let the solvers run on numpy arrays or torch tensors alike (torch is never imported here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hifield.errors import ConfigError
from hifield.ops._backend import is_tensor, to_numpy, torch_module


def norm(x: Any) -> float:
    """Euclidean norm over all elements as a Python float; numpy arrays exactly as ``np.linalg.norm(x)``.

    Examples
    --------
    >>> norm(np.array([[3.0], [4.0]]))
    5.0
    """
    if is_tensor(x):
        return float(torch_module().linalg.vector_norm(x).item())
    return float(np.linalg.norm(x))


def copy_input(x0: Any) -> Any:
    """A private copy of a starting point: a tensor stays a tensor (same dtype and device), anything else numpy.

    Examples
    --------
    >>> copy_input([1.0, 2.0])
    array([1., 2.])
    """
    if is_tensor(x0):
        return x0.clone()
    return np.array(x0, copy=True)


def copy_like(x0: Any, like: Any) -> Any:
    """A copy of ``x0`` of the kind, dtype (and device) of ``like``.

    Examples
    --------
    >>> copy_like([1, 2], np.zeros(2, np.complex64))
    array([1.+0.j, 2.+0.j], dtype=complex64)
    """
    if is_tensor(like):
        torch = torch_module()
        if not is_tensor(x0):
            x0 = torch.tensor(np.asarray(x0))
        return x0.to(device=like.device, dtype=like.dtype, copy=True)
    if is_tensor(x0):
        x0 = to_numpy(x0)
    return np.array(x0, dtype=like.dtype, copy=True)


def check_same_kind(solver: str, x0: Any, result: Any, source: str) -> None:
    """Raise :class:`~hifield.errors.ConfigError` when a callable answers a numpy start with a tensor or vice versa.

    Examples
    --------
    >>> check_same_kind("FISTA", np.zeros(2), np.ones(2), "prox")
    """
    if is_tensor(x0) != is_tensor(result):
        kinds = ("torch tensor", "numpy array") if is_tensor(x0) else ("numpy array", "torch tensor")
        raise ConfigError(
            f"{solver}: x0 is a {kinds[0]} but {source} returned a {kinds[1]}; pass x0 of the kind the callables use"
        )
