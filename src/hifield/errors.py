"""hifield's exception types: each message is one line saying what is wrong and what to do."""

from __future__ import annotations


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
