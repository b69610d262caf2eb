"""hifield's exception types: each message is one line saying what is wrong and what to do."""

from __future__ import annotations

_memory_limit_bytes: float | None = None


def parse_size(text: str) -> float:
    """A memory size such as ``"4G"``, ``"512M"``, ``"2.5GiB"`` or ``"1000000"`` (bytes) in bytes.

    Raises
    ------
    ConfigError
        If the text is not a positive size.

    Examples
    --------
    >>> parse_size("4G"), parse_size("512m"), parse_size("1000")
    (4294967296.0, 536870912.0, 1000.0)
    """
    import math
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    if match is None:
        raise ConfigError(f"memory size {text!r} is not a size such as 4G, 512M or 1000000 (bytes)")
    value = float(match.group(1)) * 1024 ** "_KMGT".index((match.group(2) or "_").upper())
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"memory size {text!r} must be positive")
    return value


def format_size(n_bytes: float) -> str:
    """``n_bytes`` in GiB, MiB or KiB, whichever reads best.

    Examples
    --------
    >>> format_size(3 * 1024**3), format_size(1536 * 1024), format_size(10)
    ('3.0 GiB', '1.5 MiB', '0.0 KiB')
    """
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1024:.1f} KiB"


def set_memory_limit(n_bytes: float | None) -> None:
    """Set (or, with None, clear) the limit :func:`check_memory` enforces besides half the physical memory."""
    global _memory_limit_bytes
    _memory_limit_bytes = n_bytes


def memory_limit() -> tuple[float, str]:
    """The allocation limit in bytes and what it is: ``--max-memory`` (or ``HIFIELD_MAX_MEMORY``) or half the RAM."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 1024**3
    limit, what = 0.5 * total, f"half of this machine's {format_size(total)}"
    configured = _memory_limit_bytes
    if configured is None and os.environ.get("HIFIELD_MAX_MEMORY"):
        configured = parse_size(os.environ["HIFIELD_MAX_MEMORY"])
    if configured is not None and configured < limit:
        limit, what = configured, f"the --max-memory limit of {format_size(configured)}"
    return limit, what


def check_memory(n_bytes: float, *, what: str, hint: str = "use a smaller grid") -> None:
    """Refuse an allocation larger than the memory limit (see :func:`memory_limit`), before it is attempted.

    Raises
    ------
    ConfigError
        One line naming what needs the memory, how much, the limit and ``hint``.

    Examples
    --------
    >>> check_memory(1e6, what="a small grid")
    >>> check_memory(1e18, what="a huge grid")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hifield.errors.ConfigError: a huge grid needs about ... GiB, more than half of this machine's ...
    """
    limit, described = memory_limit()
    if n_bytes > limit:
        raise ConfigError(f"{what} needs about {format_size(n_bytes)}, more than {described}; {hint}")


class HifieldError(Exception):
    """Base class of every error hifield raises on purpose.

    The CLI prints ``str(error)`` on one line and exits with :attr:`exit_code`.
    """

    exit_code: int = 1


class ConfigError(HifieldError, ValueError):
    """A parameter, option or configuration value is invalid (unknown name, out of range)."""


class FileFormatError(HifieldError, ValueError):
    """A file is malformed, truncated or not of the expected kind."""


class SequenceError(HifieldError, ValueError):
    """A sequence cannot be built or played (timing, missing ADC, unsupported block)."""


class HardwareLimitError(HifieldError):
    """A sequence exceeds a hardware limit of the scanner (gradient amplitude, slew, RF peak)."""

    exit_code = 2


class SafetyLimitError(HifieldError):
    """A sequence exceeds a patient safety limit (SAR, PNS)."""

    exit_code = 2


class ReconstructionError(HifieldError, ValueError):
    """Data cannot be reconstructed with the requested method (missing calibration, bad shapes, NaN)."""


class ExternalServiceError(HifieldError):
    """An external service (a PACS, a reference tool) failed or could not be reached."""

    exit_code = 3
