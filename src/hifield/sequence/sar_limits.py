"""SAR that limits a protocol: refuse a stack over the SAR limit, naming what would pass, or adapt it (``--adapt``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hifield.errors import SafetyLimitError
from hifield.sequence.safety import rf_energy_and_peak

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence
    from hifield.sequence.protocol import ImagingProtocol
    from hifield.sequence.safety import SafetyReport

P = TypeVar("P", bound="ImagingProtocol")

_SAR_QUANTITIES: tuple[tuple[str, str], ...] = (
    ("head SAR (6 min)", "sar_head_6min_w_per_kg"),
    ("head SAR (10 s)", "sar_head_10s_w_per_kg"),
    ("whole-body SAR (6 min)", "sar_whole_body_6min_w_per_kg"),
    ("whole-body SAR (10 s)", "sar_whole_body_10s_w_per_kg"),
)
_TOL = 1e-6


@dataclass(frozen=True)
class SarExcess:
    """The SAR quantity furthest over (or closest to) its limit."""

    quantity: str
    """``head SAR (6 min)``, ``whole-body SAR (10 s)``, ..."""
    value_w_per_kg: float
    limit_w_per_kg: float

    @property
    def ratio(self) -> float:
        """Value over limit (> 1: refused)."""
        return self.value_w_per_kg / self.limit_w_per_kg


@dataclass(frozen=True)
class SarSuggestion:
    """One protocol change that brings the SAR within its limit, solved from SAR's scaling law."""

    field: str
    """Protocol field to change (``tr_s``, ``refocusing_angle_rad``, ``flip_angle_rad``, ``n_slices``)."""
    value: float
    """New value of the field (SI units, as the protocol holds it)."""
    change: float
    """Relative size of the change (0.2 = 20 %), used to pick the least change."""
    text: str
    """What a console says: ``raise TR to 6.8 s``."""


def worst_sar(report: SafetyReport) -> SarExcess:
    """The SAR quantity (head / whole body, 10 s / 6 min) with the largest value-to-limit ratio."""
    excesses = [
        SarExcess(label, float(getattr(report, key)), float(report.limits[key])) for label, key in _SAR_QUANTITIES
    ]
    return max(excesses, key=lambda e: e.ratio)


def rf_energy_by_use(seq: Any) -> dict[str, float]:
    """Integral of B1^2 [T^2 s] of every RF pulse of ``seq``, summed by the pulse's ``use`` (``excitation``,
    ``refocusing``, ``inversion``; ``other`` where pypulseq records none)."""
    out: dict[str, float] = {}
    cache: dict[int, tuple[str, float]] = {}
    for block_id, events in seq.block_events.items():
        rf_id = int(events[1])
        if rf_id == 0:
            continue
        if rf_id not in cache:
            rf = seq.get_block(block_id).rf
            use = str(getattr(rf, "use", "") or "other")
            cache[rf_id] = (use, rf_energy_and_peak(rf)[0])  # as the SAR it splits
        use, energy = cache[rf_id]
        out[use] = out.get(use, 0.0) + energy
    return out


def _round_up_tr(tr_s: float) -> float:
    step = 0.1 if tr_s >= 1.0 else 0.001
    return math.ceil(tr_s / step - 1e-9) * step


def suggest_sar_changes(protocol: ImagingProtocol, built: BuiltSequence, excess: SarExcess) -> list[SarSuggestion]:
    """Changes that each alone bring the SAR to its limit: a longer TR (SAR ~ 1/TR), a lower flip angle
    (SAR ~ flip^2 for the pulses it scales, the others unchanged) and, for interleaved 2D stacks, fewer slices
    (SAR ~ number of slices at a fixed TR). Values are rounded to what a console shows, in the safe direction.

    Examples
    --------
    >>> from hifield.sequence import get_protocol
    >>> from hifield.hardware.scanner import Scanner
    >>> p = get_protocol("tse_t2_2d").with_changes(matrix=32, echo_train_length=8, te_s=0.048, n_slices=20)
    >>> built = p.build(Scanner.preset("7T"))
    >>> [s.text for s in suggest_sar_changes(p, built, SarExcess("head SAR (6 min)", 6.4, 3.2))]
    ['raise TR to 8.0 s', 'lower the refocusing flip angle to 123 deg', 'scan 10 slices']
    """
    ratio = excess.ratio
    out: list[SarSuggestion] = []
    specs = type(protocol).SPECS
    tr_new = _round_up_tr(protocol.tr_s * ratio)
    if tr_new * 1e3 <= specs["tr_s"].high:
        shown = f"{tr_new:.1f} s" if tr_new >= 1.0 else f"{tr_new * 1e3:.0f} ms"
        out.append(SarSuggestion("tr_s", tr_new, tr_new / protocol.tr_s - 1.0, f"raise TR to {shown}"))
    energy = rf_energy_by_use(built.seq)
    total = sum(energy.values())
    if hasattr(protocol, "refocusing_angle_rad"):
        field_name, what, scaled = "refocusing_angle_rad", "refocusing flip angle", energy.get("refocusing", 0.0)
    else:
        field_name, what, scaled = "flip_angle_rad", "flip angle", energy.get("excitation", 0.0)
    fraction = scaled / total if total > 0 else 0.0
    if fraction > 0:
        x2 = (1.0 / ratio - (1.0 - fraction)) / fraction
        angle = float(getattr(protocol, field_name))
        if x2 > 0:
            deg = math.floor(math.degrees(angle * math.sqrt(min(x2, 1.0))) + 1e-9)
            if deg >= specs[field_name].low:
                out.append(
                    SarSuggestion(
                        field_name, math.radians(deg), 1.0 - math.radians(deg) / angle, f"lower the {what} to {deg} deg"
                    )
                )
    n_slices = int(protocol.n_slices)
    if n_slices > 1 and protocol.KIND != "bssfp_2d":  # bSSFP plays its slices one after another
        n_new = math.floor(n_slices / ratio + 1e-9)
        if n_new >= 1:
            out.append(SarSuggestion("n_slices", n_new, 1.0 - n_new / n_slices, f"scan {n_new} slices"))
    return out


def sar_refusal_message(excess: SarExcess, suggestions: list[SarSuggestion]) -> str:
    """A console's refusal: ``head SAR (6 min) 5.1 W/kg > 3.2 W/kg: raise TR to 6.8 s, ... or scan 14 slices``."""
    head = f"{excess.quantity} {excess.value_w_per_kg:.1f} W/kg > {excess.limit_w_per_kg:.1f} W/kg"
    texts = [s.text for s in suggestions]
    if not texts:
        return f"{head}: no single change of TR, flip angle or slice count brings it within the limit"
    hint = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + f", or {texts[-1]}"
    return f"{head}: {hint} (or use --adapt)"


def limit_sar(
    protocol: P,
    built: BuiltSequence,
    scanner: Scanner,
    *,
    adapt: bool = False,
    mode: str = "normal",
) -> tuple[P, BuiltSequence, dict[str, Any] | None]:
    """Refuse a protocol whose whole sequence (every slice) exceeds a SAR limit, or adapt it.

    Parameters
    ----------
    protocol, built
        The protocol and its built sequence on ``scanner``.
    scanner
        The scanner (its field sets the SAR model).
    adapt
        Apply the suggestion with the least relative change instead of refusing.
    mode
        IEC operating mode.

    Returns
    -------
    tuple
        The protocol and sequence to scan (unchanged when within the limits) and, when adapted, a record of the
        change for summary.json (``None`` otherwise).

    Raises
    ------
    SafetyLimitError
        When over the limit and ``adapt`` is false (or no change passes), naming the limit and what would pass.
    """
    from hifield.sequence.safety import assess

    excess = worst_sar(assess(built, scanner, mode=mode))
    if excess.ratio <= 1 + _TOL:
        return protocol, built, None
    suggestions = suggest_sar_changes(protocol, built, excess)
    message = sar_refusal_message(excess, suggestions)
    if not adapt or not suggestions:
        raise SafetyLimitError(f"refused: {message}")
    choice = min(suggestions, key=lambda s: s.change)
    before = float(getattr(protocol, choice.field))
    adapted = protocol.with_changes(**{choice.field: choice.value})
    new_built = adapted.build(scanner)
    after = worst_sar(assess(new_built, scanner, mode=mode))
    if after.ratio > 1 + _TOL:
        raise SafetyLimitError(f"refused: {message}; {choice.text} still gives {after.value_w_per_kg:.1f} W/kg")
    spec = type(protocol).SPECS[choice.field]
    record = {
        "limit": excess.quantity,
        "value_w_per_kg": round(excess.value_w_per_kg, 4),
        "limit_w_per_kg": excess.limit_w_per_kg,
        "applied": choice.text,
        "parameter": spec.key,
        "from": round(before * spec.scale, 6),
        "to": round(float(choice.value) * spec.scale, 6),
        "sar_after_w_per_kg": round(after.value_w_per_kg, 4),
        "suggestions": [s.text for s in suggestions],
    }
    return adapted, new_built, record
