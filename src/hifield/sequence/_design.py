"""Shared sequence-design helpers: system limits for design, raster rounding, pypulseq error translation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hifield.errors import HifieldError, SequenceError

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence
    from hifield.sequence.protocol import ImagingProtocol

DESIGN_SAFETY_MARGIN: float = 0.05
"""Fraction by which sequence design stays below the scanner's gradient amplitude and slew limits."""

_RELAXED_GRADIENT_FACTOR: float = 50.0
"""How far gradient amplitude limits are lifted to measure what an infeasible protocol would demand."""


def design_slew_t_per_m_per_s(scanner: Scanner, gradient_mode: str) -> float:
    """Slew rate [T/m/s] a design may use: 95 % of the hardware's, and in ``"normal"`` gradient mode at most the slew
    at which a ramp to the design's full gradient amplitude on two axes at once stays within the normal-mode PNS
    limit (:func:`~hifield.sequence.safety_models.normal_mode_slew_t_per_m_per_s`)."""
    from hifield.sequence.safety_models import PNS_LIMIT_PERCENT, normal_mode_slew_t_per_m_per_s, pns_coil_for

    hardware = scanner.gradients.max_slew_t_per_m_per_s * (1.0 - DESIGN_SAFETY_MARGIN)
    if gradient_mode == "fast":
        return hardware
    excursion = scanner.gradients.max_grad_t_per_m * (1.0 - DESIGN_SAFETY_MARGIN)
    pns = normal_mode_slew_t_per_m_per_s(
        pns_coil_for(scanner.b0_t), excursion, limit_percent=PNS_LIMIT_PERCENT["normal"]
    )
    return min(hardware, pns)


def design_opts(
    scanner: Scanner, *, gradient_mode: str = "normal", relaxed: bool = False, slew_scale: float = 1.0
) -> Any:
    """pypulseq ``Opts`` for sequence design: the scanner's limits less :data:`DESIGN_SAFETY_MARGIN`.

    In ``"normal"`` gradient mode the slew rate is also kept low enough for the IEC normal-mode PNS limit
    (:func:`design_slew_t_per_m_per_s`), times ``slew_scale``. With ``relaxed=True`` the gradient amplitude limit
    is lifted so that a protocol asking for too much can still be built, its actual demand measured and reported as
    a violation.
    """
    opts = scanner.pypulseq_opts(safety_margin=DESIGN_SAFETY_MARGIN)
    opts.max_slew = design_slew_t_per_m_per_s(scanner, gradient_mode) * slew_scale * opts.gamma
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
        # the minimum is shown rounded UP to 4 significant digits, so that the value the message names passes
        minimum_ms = minimum_s * 1e3
        step = 10.0 ** (math.floor(math.log10(minimum_ms)) - 3) if minimum_ms > 0 else 1.0
        shown = math.ceil(minimum_ms / step - 1e-9) * step
        raise SequenceError(
            f"{what} = {requested_s * 1e3:.4g} ms is below the minimum {shown:.4g} ms for this design: {hint}"
        )
    return requested_s


def delay_to_reach(
    what: str, requested_s: float, minimum_s: float, hint: str, raster_s: float, *, strict: bool = True
) -> float:
    """The delay [s], on ``raster_s``, that stretches ``minimum_s`` to the requested time (see :func:`require_time`).

    Examples
    --------
    >>> round(delay_to_reach("echo time te_ms", 5e-3, 3.2e-3, "raise te_ms", 1e-5) * 1e3, 6)
    1.8
    """
    return ceil_to(require_time(what, requested_s, minimum_s, hint, strict=strict) - minimum_s, raster_s)


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
        built = design(design_opts(scanner, gradient_mode=gradient_mode), True)
        if gradient_mode == "normal":
            built = _within_normal_mode_pns(design, scanner, built)
        return _with_definitions(built)
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


NORMAL_MODE_PNS_TARGET: float = 0.97
"""A normal-mode design whose PNS exceeds the normal-mode limit is rebuilt with a lower slew rate aiming at this
fraction of the limit."""

_NORMAL_MODE_RETRIES: int = 4


def _within_normal_mode_pns(design: Design, scanner: Scanner, built: BuiltSequence) -> BuiltSequence:
    """``built``, or the design rebuilt at lower slew rates until its PNS is within the normal-mode limit.

    The normal-mode slew rate (:func:`design_slew_t_per_m_per_s`) assumes a full-amplitude ramp on two axes at once;
    a design with three such ramps together, or with lobes of opposite sign back to back, can exceed the limit, and is
    then rebuilt with the slew rate scaled by the ratio of the limit to its PNS (a few times at most, as the scanner's
    own PNS monitor would make the user do). What is still over the limit after that is refused by the safety check.
    """
    from hifield.sequence.safety import pns_percent
    from hifield.sequence.safety_models import PNS_LIMIT_PERCENT, pns_coil_for

    limit = PNS_LIMIT_PERCENT["normal"]
    coil = pns_coil_for(scanner.b0_t)
    scale = 1.0
    for _ in range(_NORMAL_MODE_RETRIES):
        pns, _axes = pns_percent(built.seq, coil)
        if pns <= limit:
            return built
        scale *= NORMAL_MODE_PNS_TARGET * limit / pns
        built = design(design_opts(scanner, gradient_mode="normal", slew_scale=scale), True)
    return built


_PYPULSEQ_ERRORS = (ValueError, NotImplementedError, AssertionError, ZeroDivisionError, IndexError, RuntimeError)


def _with_definitions(built: BuiltSequence) -> BuiltSequence:
    """Record TE and TR [s] in the sequence's definitions so a ``.seq`` file carries them."""
    built.seq.set_definition("TE", float(built.te_s))
    built.seq.set_definition("TR", float(built.tr_s))
    return built


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def build_protocol(
    design: Callable[..., BuiltSequence], p: ImagingProtocol, scanner: Scanner, *args: Any
) -> BuiltSequence:
    """Build protocol ``p`` on ``scanner`` within its limits (:func:`build_within_limits`) by calling
    ``design(p, scanner, *args, system, strict=strict)``, the family's sequence design."""

    def attempt(system: Any, strict: bool) -> BuiltSequence:
        return design(p, scanner, *args, system, strict=strict)

    return build_within_limits(attempt, scanner, what=f"protocol {p.name!r}", gradient_mode=p.gradient_mode)
