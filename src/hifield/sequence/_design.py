"""Shared sequence-design helpers: system limits for design, raster rounding, pypulseq error translation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hifield.errors import HifieldError, SequenceError

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence

DESIGN_SAFETY_MARGIN: float = 0.05
"""Fraction by which sequence design stays below the scanner's gradient amplitude and slew limits."""

_RELAXED_GRADIENT_FACTOR: float = 50.0
"""How far gradient amplitude limits are lifted to measure what an infeasible protocol would demand."""


def design_slew_t_per_m_per_s(scanner: Scanner, gradient_mode: str) -> float:
    """Slew rate [T/m/s] a design may use: 95 % of the hardware's, and in ``"normal"`` gradient mode at most
    :data:`~hifield.sequence.safety_models.NORMAL_MODE_SLEW_FRACTION` of the PNS rheobase slew rate (a ramp at that
    slew stays below that fraction of the stimulation threshold whatever its duration)."""
    from hifield.sequence.safety_models import NORMAL_MODE_SLEW_FRACTION, pns_coil_for

    hardware = scanner.gradients.max_slew_t_per_m_per_s * (1.0 - DESIGN_SAFETY_MARGIN)
    if gradient_mode == "fast":
        return hardware
    return min(hardware, NORMAL_MODE_SLEW_FRACTION * pns_coil_for(scanner.b0_t).min_slew_t_per_m_per_s)


def design_opts(scanner: Scanner, *, gradient_mode: str = "normal", relaxed: bool = False) -> Any:
    """pypulseq ``Opts`` for sequence design: the scanner's limits less :data:`DESIGN_SAFETY_MARGIN`.

    In ``"normal"`` gradient mode the slew rate is also kept low enough for the IEC normal-mode PNS limit
    (:func:`design_slew_t_per_m_per_s`). With ``relaxed=True`` the gradient amplitude limit is lifted so that a
    protocol asking for too much can still be built, its actual demand measured and reported as a violation.
    """
    opts = scanner.pypulseq_opts(safety_margin=DESIGN_SAFETY_MARGIN)
    opts.max_slew = design_slew_t_per_m_per_s(scanner, gradient_mode) * opts.gamma
    # Gradients whose duration is free (prephasers, spoilers) keep the real design limit in both cases.
    opts.hifield_free_max_grad = opts.max_grad
    if relaxed:
        opts.max_grad = opts.max_grad * _RELAXED_GRADIENT_FACTOR
    return opts


def ceil_to(value: float, raster: float) -> float:
    """Round ``value`` up to a whole number of ``raster`` steps (tolerant of float noise)."""
    steps = math.ceil(value / raster - 1e-6)
    return steps * raster


def round_to(value: float, raster: float) -> float:
    """Round ``value`` to the nearest whole number of ``raster`` steps."""
    return round(value / raster) * raster


def require_time(what: str, requested_s: float, minimum_s: float, hint: str, *, strict: bool = True) -> float:
    """The time to use: ``requested_s``, or raise :class:`SequenceError` when it is below ``minimum_s``.

    With ``strict=False`` a too-short time is replaced by the minimum (used only to measure the gradient demand of a
    protocol that is refused anyway).

    Examples
    --------
    >>> require_time("echo time te_ms", 2e-3, 3e-3, "lower the matrix or raise the bandwidth")
    Traceback (most recent call last):
    ...
    hifield.errors.SequenceError: echo time te_ms = 2 ms is below the minimum 3 ms for this design: lower the matrix \
or raise the bandwidth
    """
    if requested_s < minimum_s - 1e-9:
        if not strict:
            return minimum_s
        raise SequenceError(
            f"{what} = {requested_s * 1e3:.4g} ms is below the minimum {minimum_s * 1e3:.4g} ms for this design: {hint}"
        )
    return requested_s


Design = Callable[[Any, bool], "BuiltSequence"]
"""A design function ``design(opts, strict_timing) -> BuiltSequence``."""


def build_within_limits(design: Design, scanner: Scanner, *, what: str, gradient_mode: str = "normal") -> BuiltSequence:
    """Run ``design(opts, True)`` with the scanner's design limits; turn pypulseq failures into hifield errors.

    If pypulseq refuses (typically a gradient over the amplitude limit), the design is repeated with lifted gradient
    limits (and, for this measurement only, the shortest feasible timing) to measure the demand, and the hardware
    check of that sequence is raised as :class:`HardwareLimitError` naming every violated limit.

    Raises
    ------
    HardwareLimitError
        When the protocol needs more than the scanner has.
    SequenceError
        When TE/TR are too short, or pypulseq cannot build the sequence for another reason.
    """
    from hifield.sequence.checks import check_hardware, raise_for_violations

    try:
        return _with_definitions(design(design_opts(scanner, gradient_mode=gradient_mode), True))
    except HifieldError:
        raise
    except _PYPULSEQ_ERRORS as error:
        first_error = error
    relaxed = design_opts(scanner, gradient_mode=gradient_mode, relaxed=True)
    try:
        measured = design(relaxed, False)
    except HifieldError:
        raise
    except _PYPULSEQ_ERRORS:
        raise SequenceError(
            f"pypulseq could not build {what}: {_one_line(first_error)}; check the protocol parameters"
        ) from None
    raise_for_violations(check_hardware(measured, scanner))
    # Over the design margin but within the real limits: playable as designed with the lifted limits.
    try:
        return _with_definitions(design(relaxed, True))
    except HifieldError:  # e.g. TE too short: our own one-line error (SequenceError is also a ValueError)
        raise
    except _PYPULSEQ_ERRORS:
        raise SequenceError(
            f"pypulseq could not build {what}: {_one_line(first_error)}; check the protocol parameters"
        ) from None


_PYPULSEQ_ERRORS = (ValueError, NotImplementedError, AssertionError, ZeroDivisionError, IndexError, RuntimeError)


def _with_definitions(built: BuiltSequence) -> BuiltSequence:
    """Record TE and TR [s] in the sequence's definitions so a ``.seq`` file carries them."""
    built.seq.set_definition("TE", float(built.te_s))
    built.seq.set_definition("TR", float(built.tr_s))
    return built


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
