"""Where the iterative reconstructions compute: numpy on the CPU, or torch tensors on a CUDA (or CPU) device.

``hifield recon --device cuda`` and ``hifield scan --device cuda`` run CG-SENSE, L1-wavelet CS and TV with their
operators, solvers and NUFFT on torch tensors on the GPU (:mod:`hifield.backend` gives every operator and solver
both kinds). ``--device torch`` runs the same torch path on the CPU: that is how the GPU code path is tested on
machines without one. The data cross to the device once (``E^H y``, the maps, the mask, the trajectory's
interpolation matrix) and the image comes back once. Direct methods (zero-filled FFT, GRAPPA, partial Fourier)
and coil-map estimation stay on the CPU with numpy; they cost far less than an iterative solve.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator
from typing import Any

from hifield.errors import ConfigError

__all__ = ["DEVICE_HELP", "current_device", "torch_device", "use_device", "validate_device"]

DEVICE_HELP = (
    "Where CG-SENSE, CS and TV compute: cpu (numpy), cuda or cuda:N (torch on a GPU), torch (torch on the CPU)."
)
"""The ``--device`` option's help text, shared by the commands that take it."""

_DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("hifield_device", default="cpu")
_PATTERN = re.compile(r"^(cpu|torch|torch:cpu|cuda|cuda:\d+)$")


def validate_device(spec: str) -> str:
    """Check a device name and that it can be used here; return it normalised (lower case, no spaces).

    ``"cpu"`` always works. ``"torch"`` needs torch installed; ``"cuda"``/``"cuda:N"`` need torch and a visible CUDA
    device. A :class:`~hifield.errors.ConfigError` says in one line what is missing and what to do.

    Examples
    --------
    >>> validate_device(" CPU ")
    'cpu'
    """
    name = spec.strip().lower()
    if not _PATTERN.match(name):
        raise ConfigError(f"unknown --device {spec!r}; choose cpu, cuda, cuda:N or torch (torch on the CPU)")
    if name == "cpu":
        return name
    try:
        import torch
    except ImportError:
        raise ConfigError(f'--device {name} needs torch; install it with: pip install "hifield[gpu]"') from None
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {name}: torch sees no CUDA device (torch.cuda.is_available() is False); use --device cpu"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ...); pick one of them"
            )
    return name


def current_device() -> str:
    """The device the iterative reconstructions use now (``"cpu"`` unless inside :func:`use_device`)."""
    return _DEVICE.get()


@contextlib.contextmanager
def use_device(spec: str | None) -> Iterator[str]:
    """Run the reconstructions inside the block on device ``spec`` (None keeps the current one).

    Examples
    --------
    >>> with use_device("cpu") as name:
    ...     current_device() == name
    True
    """
    name = current_device() if spec is None else validate_device(spec)
    token = _DEVICE.set(name)
    try:
        yield name
    finally:
        _DEVICE.reset(token)


def torch_device(spec: str) -> Any:
    """The ``torch.device`` of a validated device name other than ``"cpu"`` (``"torch"`` is torch's CPU)."""
    import torch

    return torch.device("cpu" if spec in ("torch", "torch:cpu") else spec)
