"""Private array-backend helpers: recognise torch tensors without importing torch, cross the numpy boundary."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def torch_module() -> Any:
    """The already-imported ``torch`` module, or None (torch is never imported here)."""
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a ``torch.Tensor``; False (without importing torch) when torch has not been imported.

    Examples
    --------
    >>> import numpy as np
    >>> is_tensor(np.zeros(2))
    False
    """
    if isinstance(x, np.ndarray):  # the numpy fast path: no dictionary look-up
        return False
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> np.ndarray[Any, Any]:
    """A numpy copy (or view, on the CPU) of a tensor: detached, on the host, conjugation and negation resolved."""
    return x.detach().cpu().resolve_conj().resolve_neg().numpy()


def from_numpy(a: np.ndarray[Any, Any], like: Any) -> Any:
    """A tensor holding ``a`` on the device of the tensor ``like`` (numpy dtype kept)."""
    torch = sys.modules["torch"]
    a = np.require(a, requirements=("C", "W"))  # torch.from_numpy warns on read-only arrays
    return torch.from_numpy(a).to(like.device)


def torch_dtype(dtype: np.dtype[Any]) -> Any:
    """The torch dtype matching a numpy dtype (e.g. complex64 -> ``torch.complex64``)."""
    torch = sys.modules["torch"]
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def promoted(array: np.ndarray[Any, Any], x: Any) -> Any:
    """The torch dtype of ``array * x`` for a numpy ``array`` and a tensor ``x`` (NumPy's rule for array pairs)."""
    torch = sys.modules["torch"]
    return torch.promote_types(torch_dtype(array.dtype), x.dtype)


def as_complex(x: Any) -> Any:
    """A complex tensor: real floating tensors promoted (float32 -> complex64, float64 -> complex128)."""
    if x.is_complex():
        return x
    torch = sys.modules["torch"]
    return x.to(torch.promote_types(x.dtype, torch.complex64))


def copy(x: Any) -> Any:
    """A copy of a numpy array or tensor (same kind, dtype and device)."""
    return x.clone() if is_tensor(x) else x.copy()


def zeros_like(x: Any) -> Any:
    """Zeros of the shape, dtype, kind and device of ``x``."""
    if is_tensor(x):
        return sys.modules["torch"].zeros_like(x)
    return np.zeros_like(x)


def vdot(a: Any, b: Any) -> complex:
    """``sum(conj(a) * b)`` over all elements as a Python complex, for numpy arrays or tensors.

    Examples
    --------
    >>> import numpy as np
    >>> vdot(np.array([1j, 2.0]), np.array([1j, 1.0]))
    (3+0j)
    """
    if is_tensor(a):
        return complex(sys.modules["torch"].vdot(a.reshape(-1), b.reshape(-1)).item())
    return complex(np.vdot(a.ravel(), b.ravel()))


def norm(x: Any) -> float:
    """Euclidean norm over all elements as a Python float, for numpy arrays or tensors."""
    if is_tensor(x):
        return float(sys.modules["torch"].linalg.vector_norm(x).item())
    return float(np.linalg.norm(x.ravel()))


class TensorCache:
    """Tensor copies of an operator's numpy constants (maps, masks), one per name, device and dtype.

    Built lazily on first use with a tensor, so an operator that only ever sees numpy arrays holds no tensors.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, Any], Any] = {}

    def get(self, name: str, array: np.ndarray[Any, Any], like: Any, dtype: Any = None) -> Any:
        """``array`` as a tensor on ``like``'s device, converted to the torch ``dtype`` (None: numpy's dtype kept)."""
        key = (name, str(like.device), dtype)
        tensor = self._store.get(key)
        if tensor is None:
            tensor = from_numpy(array, like)
            if dtype is not None:
                tensor = tensor.to(dtype)
            self._store[key] = tensor
        return tensor

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": {}}  # tensors are rebuilt on demand; pickled operators stay numpy-only
