"""hifield's exception types: each message is one line saying what is wrong and what to do."""

from __future__ import annotations


def check_memory(n_bytes: float, *, what: str, hint: str = "use a smaller grid") -> None:
    """Refuse an allocation larger than half the machine's physical memory, before it is attempted.

    Raises
    ------
    ConfigError
        One line naming what needs the memory, how much, the machine's total and ``hint``.

    Examples
    --------
    >>> check_memory(1e6, what="a small grid")
    >>> check_memory(1e18, what="a huge grid")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hifield.errors.ConfigError: a huge grid needs about ... GiB, more than half of this machine's ...
    """
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 1024**3
    if n_bytes > 0.5 * total:
        raise ConfigError(
            f"{what} needs about {n_bytes / 1024**3:.1f} GiB, more than half of this machine's "
            f"{total / 1024**3:.1f} GiB; {hint}"
        )


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
