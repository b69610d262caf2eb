"""Typed, validated protocol parameters (SI inside): the ``ImagingProtocol`` base shared by every sequence family."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

from hifield.errors import ConfigError

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence


GRADIENT_MODES: tuple[str, ...] = ("normal", "fast")
"""Allowed values of :attr:`Protocol.gradient_mode`."""

MATRIX_MIN: int = 8
"""Smallest in-plane matrix any protocol (and ``hifield scan --matrix``) accepts."""
MATRIX_MAX: int = 1024
"""Largest in-plane matrix any protocol (and ``hifield scan --matrix``) accepts."""


@dataclass(frozen=True)
class FieldSpec:
    """How one protocol field appears at the file boundary and which values it may take.

    ``file_value = si_value * scale``; ``low`` and ``high`` are in file units (inclusive).
    """

    key: str
    """Key in a protocol file, with its unit suffix (``te_ms``)."""
    scale: float
    """Factor from the SI value to the file value."""
    low: float
    """Smallest allowed value, in file units."""
    high: float
    """Largest allowed value, in file units."""
    integer: bool = False
    """Whether the value must be a whole number."""
    description: str = ""
    """Human-readable name (``echo time``)."""


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """Base of every protocol: a named, frozen set of validated acquisition parameters in SI units.

    Subclasses declare ``KIND`` (the ``kind`` written in protocol files) and ``SPECS`` (one :class:`FieldSpec` per
    numeric field) and implement :meth:`build`.
    """

    KIND: ClassVar[str] = ""
    SPECS: ClassVar[dict[str, FieldSpec]] = {}

    name: str = "protocol"
    """Protocol name."""
    partial_fourier: float = 1.0
    """Fraction of the phase-encode lines acquired when no explicit lines are given (0.5 to 1; 1 = full), the
    centre and the upper half always included (Cartesian families only)."""
    gradient_mode: str = "normal"
    """``"normal"``: gradients slew no faster than a full-amplitude ramp on two axes at once allows within the PNS
    limit of the IEC normal mode (77 T/m/s on the 3 T preset, see ``docs/safety/pns.md``); ``"fast"``: the
    scanner's full slew rate (may need first-level mode)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"protocol name must be a non-empty string; got {self.name!r}")
        pf = self.partial_fourier
        if isinstance(pf, bool) or not isinstance(pf, (int, float)) or not 0.5 <= pf <= 1.0:
            raise ConfigError(f"partial_fourier = {pf!r} is outside the allowed range 0.5 to 1")
        if self.gradient_mode not in GRADIENT_MODES:
            raise ConfigError(
                f"gradient_mode = {self.gradient_mode!r} is not allowed; choose one of {', '.join(GRADIENT_MODES)}"
            )
        for attr, spec in self.SPECS.items():
            self._validate_field(attr, spec)
        self._validate_relations()

    def _validate_field(self, attr: str, spec: FieldSpec) -> None:
        value = getattr(self, attr)
        label = f"{spec.description} {attr}" if spec.description else attr
        allowed = f"{_fmt(spec.low)} to {_fmt(spec.high)} ({spec.key})"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number; got {value!r}; allowed {allowed}")
        if spec.integer and (not float(value).is_integer()):
            raise ConfigError(f"{label} must be a whole number; got {value!r}; allowed {allowed}")
        file_value = float(value) * spec.scale
        if not math.isfinite(file_value) or not (spec.low <= file_value <= spec.high):
            shown = f"{label} = {_fmt(float(value))} ({spec.key} = {_fmt(file_value)})"
            raise ConfigError(f"{shown} is outside the allowed range {allowed}")

    def _validate_relations(self) -> None:
        """Checks between fields (override in subclasses)."""

    def with_changes(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again).

        Raises
        ------
        ConfigError
            For an unknown field or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"unknown {type(self).__name__} field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the pypulseq sequence for ``scanner`` (implemented by each protocol family)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build()")


COMMON_SPECS: dict[str, FieldSpec] = {
    "fov_m": FieldSpec("fov_mm", 1e3, 10.0, 600.0, description="field of view"),
    "matrix": FieldSpec("matrix", 1.0, MATRIX_MIN, MATRIX_MAX, integer=True, description="matrix size"),
    "tr_s": FieldSpec("tr_ms", 1e3, 1.0, 20000.0, description="repetition time"),
    "te_s": FieldSpec("te_ms", 1e3, 0.5, 1000.0, description="echo time"),
    "flip_angle_rad": FieldSpec("flip_angle_deg", 180.0 / math.pi, 0.1, 180.0, description="flip angle"),
    "readout_bandwidth_hz_per_pixel": FieldSpec(
        "readout_bandwidth_hz_per_pixel", 1.0, 20.0, 5000.0, description="receiver bandwidth"
    ),
    "n_averages": FieldSpec("n_averages", 1.0, 1, 64, integer=True, description="number of averages"),
    "rf_duration_s": FieldSpec("rf_duration_ms", 1e3, 0.1, 20.0, description="RF pulse duration"),
    "rf_time_bandwidth": FieldSpec("rf_time_bandwidth", 1.0, 1.0, 20.0, description="RF time-bandwidth product"),
}
"""Field specs of the :class:`ImagingProtocol` fields (file key, unit scale, allowed range)."""

SLICE_SPECS: dict[str, FieldSpec] = {
    **COMMON_SPECS,
    "slice_thickness_m": FieldSpec("slice_thickness_mm", 1e3, 0.5, 50.0, description="slice thickness"),
    "n_slices": FieldSpec("n_slices", 1.0, 1, 256, integer=True, description="number of slices"),
    "slice_gap_m": FieldSpec("slice_gap_mm", 1e3, 0.0, 100.0, description="gap between slices"),
}
"""Field specs of a :class:`SliceProtocol` (2D families)."""

SLAB_SPECS: dict[str, FieldSpec] = {
    **COMMON_SPECS,
    "n_partitions": FieldSpec("n_partitions", 1.0, 4, 512, integer=True, description="partitions (k2)"),
    "slab_thickness_m": FieldSpec("slab_thickness_mm", 1e3, 2.0, 300.0, description="slab thickness"),
}
"""Field specs of a :class:`SlabProtocol` (3D families)."""

RF_SPOILING_SPEC: dict[str, FieldSpec] = {
    "rf_spoiling_increment_deg": FieldSpec(
        "rf_spoiling_increment_deg", 1.0, 0.0, 360.0, description="RF spoiling phase increment"
    ),
}
"""Field spec of the quadratic RF-spoiling increment [degree], shared by the spoiled gradient-echo families."""

DUMMY_SCANS_SPEC: dict[str, FieldSpec] = {
    "n_dummy_scans": FieldSpec("n_dummy_scans", 1.0, 0, 1000, integer=True, description="dummy scans"),
}
"""Field spec of the number of dummy (steady-state preparation) scans."""

REFOCUSING_DURATION_SPEC: dict[str, FieldSpec] = {
    "refocusing_duration_s": FieldSpec("refocusing_duration_ms", 1e3, 0.5, 20.0, description="refocusing pulse"),
}
"""Field spec of the refocusing pulse duration of the spin-echo families (SE, TSE, spin-echo EPI)."""


@dataclass(frozen=True, kw_only=True)
class ImagingProtocol(Protocol):
    """The geometry and timing every sequence family shares, typed and validated once (SI units inside).

    Families derive from :class:`SliceProtocol` (2D: an excited slice) or :class:`SlabProtocol` (3D: an excited
    slab phase-encoded in partitions) and set their own defaults; the defaults here are a routine T1-weighted 2D
    spoiled GRE at 3 T. Every protocol answers the slice geometry questions the same way: ``slice_thickness_m``
    (``None`` for a slab), ``slab_thickness_m`` (``None`` for slices), ``n_partitions`` (1 for 2D) and ``n_slices``.
    A family whose sequence fixes one of the shared values (bSSFP: TE = TR/2) declares it ``init=False`` and
    derives it; such fields are neither arguments nor protocol-file keys.

    Examples
    --------
    >>> from hifield.sequence import get_protocol
    >>> p = get_protocol("mprage_3d")
    >>> isinstance(p, ImagingProtocol), p.slice_thickness_m, p.n_partitions, round(p.slab_thickness_m, 3)
    (True, None, 64, 0.16)
    """

    SPECS: ClassVar[dict[str, FieldSpec]] = COMMON_SPECS

    fov_m: float = 0.24
    """Square in-plane field of view [m]."""
    matrix: int = 256
    """In-plane matrix (readout x phase encode), square."""
    tr_s: float = 0.250
    """Repetition time [s]."""
    te_s: float = 0.0046
    """Echo time, centre of the excitation to the k-space centre of the readout [s]."""
    flip_angle_rad: float = math.radians(70.0)
    """Excitation flip angle [rad]."""
    readout_bandwidth_hz_per_pixel: float = 260.0
    """Receiver bandwidth per pixel [Hz] (rounded so the dwell time falls on the ADC raster)."""
    n_averages: int = 1
    """Number of averages (each repeats all phase-encode lines)."""
    rf_duration_s: float = 0.002
    """Duration of the excitation pulse [s] (rounded to the 10 us gradient raster)."""
    rf_time_bandwidth: float = 4.0
    """Time-bandwidth product of the excitation pulse."""

    @property
    def slice_thickness_m(self) -> float | None:
        """Excited slice thickness [m]; ``None`` for a 3D slab."""
        return None

    @property
    def slab_thickness_m(self) -> float | None:
        """Excited slab thickness, the field of view along k2 [m]; ``None`` for 2D slices."""
        return None

    @property
    def n_partitions(self) -> int:
        """Partitions (k2 lines) across the slab; 1 for 2D."""
        return 1

    @property
    def n_slices(self) -> int:
        """Slices excited one after another (2D multi-slice); 1 for a single slice or a 3D slab."""
        return 1

    @property
    def nyquist_readouts(self) -> float:
        """Readouts (radial spokes, spiral interleaves) that sample k-space at the Nyquist rate: pi/2 x matrix
        spokes unless the family says otherwise (the reference of a non-Cartesian acceleration)."""
        return math.pi / 2 * self.matrix


@dataclass(frozen=True, kw_only=True)
class SliceProtocol(ImagingProtocol):
    """A 2D family: a stack of ``n_slices`` parallel slices, each excited in turn within every TR.

    Slices are centred on z = 0, ``slice_thickness_m + slice_gap_m`` apart, and played in interleaved order
    (even-numbered slices first, then odd: :func:`interleaved_order`) as scanners do, so neighbouring slices are
    excited half a TR apart and their imperfect slice profiles do not saturate each other.
    """

    SPECS: ClassVar[dict[str, FieldSpec]] = SLICE_SPECS

    slice_thickness_m: float = 0.005
    """Slice thickness [m]."""
    n_slices: int = 1
    """Slices excited one after another within each TR (interleaved order), centred on z = 0."""
    slice_gap_m: float = 0.0
    """Gap between neighbouring slices [m] (slice spacing = thickness + gap)."""

    @property
    def slice_spacing_m(self) -> float:
        """Centre-to-centre distance of neighbouring slices [m]."""
        return self.slice_thickness_m + self.slice_gap_m

    @property
    def slice_positions_m(self) -> list[float]:
        """Centre z of each slice, in slice-index order (inferior to superior), centred on z = 0 [m].

        Examples
        --------
        >>> SliceProtocol(n_slices=3, slice_thickness_m=0.004, slice_gap_m=0.001).slice_positions_m
        [-0.005, 0.0, 0.005]
        """
        spacing = self.slice_spacing_m
        return [(s - (self.n_slices - 1) / 2) * spacing for s in range(self.n_slices)]


def interleaved_order(n_slices: int) -> list[int]:
    """Acquisition order of ``n_slices`` slices within a TR: even indices, then odd (scanners' interleaved mode).

    Examples
    --------
    >>> interleaved_order(5)
    [0, 2, 4, 1, 3]
    """
    return list(range(0, n_slices, 2)) + list(range(1, n_slices, 2))


@dataclass(frozen=True, kw_only=True)
class SlabProtocol(ImagingProtocol):
    """A 3D family: one excited slab, phase encoded in ``n_partitions`` along k2 (z)."""

    SPECS: ClassVar[dict[str, FieldSpec]] = SLAB_SPECS

    n_partitions: int = 48
    """Partitions (k2 lines) across the slab."""
    slab_thickness_m: float = 0.096
    """Slab thickness, the field of view along k2 [m]."""


def check_lines(lines: Sequence[int] | None, n_lines: int, *, partial_fourier: float = 1.0) -> list[int]:
    """Validate phase-encode line indices (0..n_lines-1); ``None`` means all lines in linear order.

    With ``partial_fourier`` < 1 and no explicit lines, only the last ``ceil(partial_fourier * n_lines)`` lines
    are acquired (the k-space centre ``n_lines // 2`` and everything above it, plus the lines below it that fit).

    Examples
    --------
    >>> check_lines(None, 8, partial_fourier=0.75)
    [2, 3, 4, 5, 6, 7]
    """
    if lines is None:
        n_acquired = math.ceil(partial_fourier * n_lines - 1e-9)
        return list(range(n_lines - n_acquired, n_lines))
    out: list[int] = []
    for line in lines:
        if isinstance(line, bool) or not float(line).is_integer():
            raise ConfigError(f"phase-encode line index {line!r} must be an integer in 0..{n_lines - 1}")
        index = int(line)
        if not 0 <= index < n_lines:
            raise ConfigError(f"phase-encode line index {index} is outside 0..{n_lines - 1}; pass k1 indices")
        out.append(index)
    if not out:
        raise ConfigError("phase_encode_lines is empty; pass at least one k1 index or None for all lines")
    return out
