"""The one array backend: numpy paths without torch, tensor crossings, BLAS-thread control."""

from __future__ import annotations

import numpy as np
import pytest

from hifield import backend


def test_numpy_inputs_get_numpy_answers() -> None:
    x = np.arange(6, dtype=np.complex64).reshape(2, 3)
    assert backend.array_namespace(x).__name__.endswith("numpy")
    assert backend.device(x) == "cpu"
    assert not backend.is_tensor(x)
    assert backend.norm(x) == float(np.linalg.norm(x))
    assert backend.vdot(x, 1j * x) == complex(np.vdot(x, 1j * x))
    z = backend.zeros_like(x)
    assert type(z) is np.ndarray and z.dtype == np.complex64 and z.shape == x.shape and not z.any()
    c = backend.copy_like([1, 2], np.zeros(2, np.float32))
    assert c.dtype == np.float32 and c.tolist() == [1.0, 2.0]


def test_tensor_crossings_keep_kind_dtype_and_device() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(4, dtype=torch.float32)
    assert backend.is_tensor(t) and backend.torch_module() is torch
    a = backend.to_numpy(t * 2)
    assert type(a) is np.ndarray and a.tolist() == [0.0, 2.0, 4.0, 6.0]
    back = backend.from_numpy(a, t)
    assert isinstance(back, torch.Tensor) and back.device == t.device and back.dtype == torch.float32
    assert backend.torch_dtype(np.dtype(np.complex64)) == torch.complex64
    assert backend.numpy_dtype(torch.complex128) == np.complex128
    assert backend.promoted(np.zeros(1, np.complex64), torch.zeros(1, dtype=torch.float64)) == torch.complex128
    like = backend.copy_like(np.array([1.0, 2.0]), torch.zeros(2, dtype=torch.complex64))
    assert isinstance(like, torch.Tensor) and like.dtype == torch.complex64
    assert backend.norm(torch.tensor([[3.0], [4.0]])) == 5.0
    cache = backend.TensorCache()
    first = cache.get("m", np.ones(3), t, torch.complex64)
    assert cache.get("m", np.ones(3), t, torch.complex64) is first and first.dtype == torch.complex64


def test_single_threaded_blas_limits_blas_to_one_thread() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with backend.single_threaded_blas():
            inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        outside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    assert inside and set(inside) == {1}
    assert outside == [min(2, n) for n in outside]


def test_single_threaded_blas_works_as_a_decorator() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    @backend.single_threaded_blas()
    def threads() -> list[int]:
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    assert set(threads()) == {1}


def test_blas_controller_is_reused_until_modules_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    pytest.importorskip("threadpoolctl")
    first = backend._blas_controller()
    assert backend._blas_controller() is first  # no rescan of the loaded libraries per call
    monkeypatch.setitem(sys.modules, "hifield_test_new_module", types.ModuleType("hifield_test_new_module"))
    assert backend._blas_controller() is not first  # an import may have brought a BLAS: scan again
