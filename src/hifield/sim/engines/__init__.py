"""Simulation engines: a registry of functions with the same inputs (phantom, sequence, scanner) and output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


class BatchEngine(Protocol):
    """Signature of an engine's joint simulation of several sequences on one phantom (one result per sequence)."""

    def __call__(
        self,
        phantom: Phantom,
        sequences: Sequence[BuiltSequence],
        scanner: Scanner,
        *,
        noise: Sequence[bool],
        rngs: Sequence[np.random.Generator],
    ) -> list[RawData]: ...


def _fast_many() -> BatchEngine:
    from hifield.sim.engines.fast import simulate_fast_many

    return simulate_fast_many


def _bloch() -> Engine:
    from hifield.sim.engines.bloch import simulate_bloch

    return simulate_bloch


_REGISTRY: dict[str, Callable[[], Engine]] = {"fast": _fast, "bloch": _bloch}
_BATCH: dict[str, Callable[[], BatchEngine]] = {"fast": _fast_many}


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


def get_batch_engine(name: str) -> BatchEngine | None:
    """The joint (several sequences at once) form of engine ``name``, or None when it has none (simulate one by
    one). Raises :class:`~hifield.errors.ConfigError` for an unknown name, as :func:`get_engine` does."""
    get_engine(name)
    loader = _BATCH.get(name)
    return loader() if loader is not None else None


def register_engine(name: str, loader: Callable[[], Engine]) -> None:
    """Register an engine under ``name``; ``loader`` returns the engine function (imported lazily)."""
    _REGISTRY[name] = loader
