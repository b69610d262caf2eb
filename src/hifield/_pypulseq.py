"""Imports pypulseq without loading matplotlib and scipy's signal/interpolate packages until pypulseq uses them.

pypulseq 1.5 imports ``matplotlib.pyplot``, ``scipy.signal`` and ``scipy.interpolate`` at module level for its
plots, gradient spectrum and ``get_gradients``; together they are about 1.3 s of the 1.4 s that ``import pypulseq``
takes, and reading or building a sequence needs none of them. :func:`import_pypulseq` runs the first import with
those names bound, inside pypulseq's own modules only, to stand-ins that load the real module on first use. Other
code, in this thread or another, imports the real modules as usual (nothing is put in ``sys.modules``).
"""

from __future__ import annotations

import builtins
import importlib
import sys
import threading
import types
from collections.abc import Mapping
from typing import Any

DEFERRED: tuple[str, ...] = (
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.colors",
    "scipy.signal",
    "scipy.interpolate",
)
"""Modules that pypulseq imports at load time but only uses in plotting, spectra and ``get_gradients``."""

_LOCK = threading.Lock()


class _Deferred(types.ModuleType):
    """Stand-in for a module: attribute access loads the real module (after pypulseq's import has finished).

    While pypulseq's modules are being imported, ``from <module> import name`` receives a :class:`_Forward` that
    loads the real module when ``name`` is called or read (pypulseq imports ``spectrogram``, ``PPoly`` and
    ``LinearSegmentedColormap`` this way and only calls them or their class methods).
    """

    def __init__(self, name: str, importing: list[bool]) -> None:
        super().__init__(name)
        self._importing = importing

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in {"_importing"}:
            raise AttributeError(attr)
        child = f"{self.__name__}.{attr}"
        if child in DEFERRED:  # ``import matplotlib.pyplot as plt`` resolves the child through its parent
            return _Deferred(child, self._importing)
        if not self._importing[0]:
            return getattr(importlib.import_module(self.__name__), attr)
        return _Forward(self.__name__, attr)


class _Forward:
    """A name imported from a deferred module: calls and attribute reads go to the real object, loaded then."""

    def __init__(self, module_name: str, attr: str) -> None:
        self._where = (module_name, attr)
        self.__doc__ = f"{module_name}.{attr}, loaded on first use."

    def _real(self) -> Any:
        module_name, attr = self._where
        return getattr(importlib.import_module(module_name), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr == "_where":
            raise AttributeError(attr)
        return getattr(self._real(), attr)

    def __repr__(self) -> str:
        return f"<deferred {'.'.join(self._where)}>"


def import_pypulseq() -> types.ModuleType:
    """The ``pypulseq`` module, imported the first time without its plotting and signal-processing dependencies.

    Examples
    --------
    >>> pp = import_pypulseq()
    >>> pp.Opts().grad_raster_time
    1e-05
    """
    module = sys.modules.get("pypulseq")
    if module is not None:
        return module
    with _LOCK:
        module = sys.modules.get("pypulseq")
        if module is not None:
            return module
        importing = [True]
        original = builtins.__import__

        def deferring_import(
            name: str,
            globals: Mapping[str, object] | None = None,
            locals: Any = None,
            fromlist: Any = (),
            level: int = 0,
        ) -> Any:
            importer = (globals or {}).get("__name__", "")
            if (
                level == 0
                and name in DEFERRED
                and name not in sys.modules
                and isinstance(importer, str)
                and importer.split(".")[0] == "pypulseq"
            ):
                top = name if fromlist else name.split(".")[0]
                return _Deferred(top, importing)
            return original(name, globals, locals, fromlist, level)

        builtins.__import__ = deferring_import
        try:
            module = importlib.import_module("pypulseq")
        finally:
            builtins.__import__ = original
            importing[0] = False
        return module
