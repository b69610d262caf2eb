"""The one array backend: the input's array namespace, numpy/torch crossings, device moves and BLAS-thread control.

Operators (`hifield.ops`) and solvers (`hifield.solvers`) take numpy arrays or torch tensors (CPU or CUDA) and
answer in the kind of their input. The namespace and device of an input come from ``array_api_compat``
(:func:`array_namespace`, :func:`device`, :func:`to_device`); what it does not offer (recognising a tensor
without importing torch, crossing to numpy and back, dtype mapping, per-device constant caches, a norm and an
inner product as Python numbers) lives here. torch is never imported by this module: a tensor can only exist
once its caller has imported torch. This module imports nothing of hifield's, so any package may use it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_torch_array, to_device

__all__ = [
    "TensorCache",
    "array_namespace",
    "as_complex",
    "copy",
    "copy_input",
    "copy_like",
    "device",
    "from_numpy",
    "is_tensor",
    "norm",
    "numpy_dtype",
    "promoted",
    "single_threaded_blas",
    "to_device",
    "to_numpy",
    "torch_dtype",
    "torch_module",
    "vdot",
    "zeros_like",
]


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
    return bool(is_torch_array(x))


def to_numpy(x: Any) -> np.ndarray[Any, Any]:
    """A numpy copy (or view, on the CPU) of a tensor: detached, on the host, conjugation and negation resolved."""
    return x.detach().cpu().resolve_conj().resolve_neg().numpy()


def from_numpy(a: np.ndarray[Any, Any], like: Any) -> Any:
    """A tensor holding ``a`` on the device of the tensor ``like`` (numpy dtype kept)."""
    torch = sys.modules["torch"]
    a = np.require(a, requirements=("C", "W"))  # torch.from_numpy warns on read-only arrays
    return to_device(torch.from_numpy(a), device(like))


def torch_dtype(dtype: np.dtype[Any]) -> Any:
    """The torch dtype matching a numpy dtype (e.g. complex64 -> ``torch.complex64``)."""
    torch = sys.modules["torch"]
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def numpy_dtype(dtype: Any) -> np.dtype[Any]:
    """The numpy dtype matching a torch dtype (e.g. ``torch.float32`` -> float32)."""
    return sys.modules["torch"].empty(0, dtype=dtype).numpy().dtype


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
    """Zeros of the shape, dtype, kind and device of ``x``.

    Examples
    --------
    >>> zeros_like(np.ones(2, np.complex64))
    array([0.+0.j, 0.+0.j], dtype=complex64)
    """
    return array_namespace(x).zeros_like(x)


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
        torch = sys.modules["torch"]
        if not is_tensor(x0):
            x0 = torch.tensor(np.asarray(x0))
        return x0.to(device=device(like), dtype=like.dtype, copy=True)
    if is_tensor(x0):
        x0 = to_numpy(x0)
    return np.array(x0, dtype=like.dtype, copy=True)


def vdot(a: Any, b: Any) -> complex:
    """``sum(conj(a) * b)`` over all elements as a Python complex, for numpy arrays or tensors.

    Examples
    --------
    >>> vdot(np.array([1j, 2.0]), np.array([1j, 1.0]))
    (3+0j)
    """
    if is_tensor(a):
        return complex(sys.modules["torch"].vdot(a.reshape(-1), b.reshape(-1)).item())
    return complex(np.vdot(a.ravel(), b.ravel()))


def norm(x: Any) -> float:
    """Euclidean norm over all elements as a Python float; numpy arrays exactly as ``np.linalg.norm(x)``.

    Examples
    --------
    >>> norm(np.array([[3.0], [4.0]]))
    5.0
    """
    if is_tensor(x):
        return float(sys.modules["torch"].linalg.vector_norm(x).item())
    return float(np.linalg.norm(x))


class TensorCache:
    """Tensor copies of an operator's numpy constants (maps, masks), one per name, device and dtype.

    Built lazily on first use with a tensor, so an operator that only ever sees numpy arrays holds no tensors.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, Any], Any] = {}

    def get(self, name: str, array: np.ndarray[Any, Any], like: Any, dtype: Any = None) -> Any:
        """``array`` as a tensor on ``like``'s device, converted to the torch ``dtype`` (None: numpy's dtype kept)."""
        key = (name, str(device(like)), dtype)
        tensor = self._store.get(key)
        if tensor is None:
            tensor = from_numpy(array, like)
            if dtype is not None:
                tensor = tensor.to(dtype)
            self._store[key] = tensor
        return tensor

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": {}}  # tensors are rebuilt on demand; pickled operators stay numpy-only


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed BLAS/LAPACK calls on one thread when threadpoolctl is installed (else leave BLAS as it is).

    Small dense products, solves and eigensolvers (a few-hundred-square matrix, a handful of channels) gain
    nothing from threads, and on a machine shared with other jobs a threaded BLAS's spinning threads can slow
    them by one to two orders of magnitude. Usable as ``with single_threaded_blas():`` or as a decorator
    ``@single_threaded_blas()``.

    Examples
    --------
    >>> with single_threaded_blas():
    ...     float(np.linalg.norm(np.ones(4) @ np.eye(4)))
    2.0
    """
    controller = _blas_controller()
    if controller is None:  # pragma: no cover - optional: without it the call uses BLAS's own threading
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


_CONTROLLER: dict[int, Any] = {}


def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, made once per process and per number of loaded modules.

    ``threadpool_limits`` rescans ``/proc/self/maps`` and every loaded library on each call (about 1 ms, several
    times per coil-map estimate); the controller is rebuilt only when modules were imported since (a BLAS that
    came with them is then seen too). None without threadpoolctl.
    """
    key = len(sys.modules)
    if key not in _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover
            return None
        _CONTROLLER.clear()
        _CONTROLLER[key] = ThreadpoolController()
    return _CONTROLLER[key]
