"""Learned reconstruction (extra ``dl``): unrolled networks trained on hifield's own simulations, with uncertainty.

This package imports no torch itself; :func:`require_torch` imports it where a learned method runs and refuses with
one line naming ``pip install "hifield[dl]"`` where torch is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INSTALL_HINT = 'pip install "hifield[dl]"'
MODELS = ("varnet", "modl")


def require_torch() -> Any:
    """The ``torch`` module, imported now.

    Raises
    ------
    ConfigError
        One line naming ``pip install "hifield[dl]"`` when torch is not installed.
    """
    try:
        import torch
    except ImportError:
        from hifield.errors import ConfigError

        raise ConfigError(f"learned reconstruction needs torch, which is not installed; run {INSTALL_HINT}") from None
    return torch


@dataclass(frozen=True)
class LearnedConfig:
    """A shipped learned model applied slice by slice, with its uncertainty maps.

    The coils are compressed by SVD to the model's virtual channels, the data divided by the 99th percentile of
    the zero-filled RSS image and the result multiplied back, so the image is in the units of the input.
    """

    weights: str = ""
    """Path of a checkpoint; empty uses the model shipped in ``hifield/recon/learned/weights/``."""
    uncertainty: bool = True
    """Also compute the data-consistency residual, null-space (hallucination) map and conformal interval."""
    null_space_iter: int = 30
    """CG iterations of the null-space projection."""
    correction_iter: int = 5
    """CG iterations of the data-consistency correction ``E^+ (y - E x)`` (more resolve finer detail of what the
    image lacks but amplify noise: at 16 coils and R = 4, 5 flagged every small lesion varnet lost with under 3 %
    false alarms, 20 with up to 35 %)."""

    def __post_init__(self) -> None:
        for name in ("null_space_iter", "correction_iter"):
            if getattr(self, name) < 1:
                from hifield.errors import ConfigError

                raise ConfigError(f"{name} must be at least 1 CG iteration, got {getattr(self, name)}")
