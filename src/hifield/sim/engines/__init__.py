"""Simulation engines: a registry of functions with the same inputs (phantom, sequence, scanner) and output."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from hifield.data import RawData
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence


class Engine(Protocol):
    """Signature every engine implements."""

    def __call__(
        self,
        phantom: Phantom,
        sequence: BuiltSequence,
        scanner: Scanner,
        *,
        noise: bool,
        rng: np.random.Generator,
    ) -> RawData: ...


def _fast() -> Engine:
    from hifield.sim.engines.fast import simulate_fast

    return simulate_fast


def _bloch() -> Engine:
    from hifield.sim.engines.bloch import simulate_bloch

    return simulate_bloch


_REGISTRY: dict[str, Callable[[], Engine]] = {"fast": _fast, "bloch": _bloch}


def engine_names() -> tuple[str, ...]:
    """Names of the registered engines."""
    return tuple(_REGISTRY)


def get_engine(name: str) -> Engine:
    """The engine registered under ``name``.

    Raises
    ------
    ConfigError
        For an unknown name, listing the registered ones.
    """
    from hifield.errors import ConfigError

    loader = _REGISTRY.get(name)
    if loader is None:
        raise ConfigError(f"unknown simulation engine {name!r}; choose one of {', '.join(_REGISTRY)}")
    return loader()


def register_engine(name: str, loader: Callable[[], Engine]) -> None:
    """Register an engine under ``name``; ``loader`` returns the engine function (imported lazily)."""
    _REGISTRY[name] = loader
