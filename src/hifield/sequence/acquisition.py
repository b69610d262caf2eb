"""From a protocol and a sampling request to built sequences that carry their sampling pattern and slice geometry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hifield.errors import ConfigError
from hifield.sequence.built import BuiltSequence
from hifield.sequence.protocol import MATRIX_MAX, MATRIX_MIN

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.sampling import SamplingPattern
    from hifield.sequence.protocol import ImagingProtocol

MATRIX_LIMITS: tuple[int, int] = (MATRIX_MIN, MATRIX_MAX)
"""Smallest and largest in-plane matrix, from the protocols' own field spec (the one constant)."""

CALIBRATION_PRESCAN_LINES = 24
"""Central phase-encode lines of the coil-calibration prescan."""


def check_matrix(value: object) -> int:
    """An in-plane matrix: a whole number within :data:`MATRIX_LIMITS` (text from the command line accepted).

    Examples
    --------
    >>> check_matrix("96")
    96
    """
    low, high = MATRIX_LIMITS
    try:
        number = int(str(value)) if isinstance(value, str) else value
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise ConfigError(f"matrix must be an integer between {low} and {high}; got {value!r}")
    return number


def with_pattern(built: BuiltSequence, pattern: SamplingPattern, *, axis: str = "k1") -> BuiltSequence:
    """``built`` carrying the sampling ``pattern`` it plays and its slice geometry: the one place they are attached.

    Parameters
    ----------
    built
        A sequence built with the pattern's lines (``protocol.build(scanner, phase_encode_lines=pattern.order)``,
        or ``partition_lines=`` for ``axis="k2"``).
    pattern
        The pattern; the simulator writes its mask and calibration region into the raw data.
    axis
        ``"k1"``, ``"k2"`` (partitions), ``"plane"`` (the (k2, k1) points of a 3D pattern, built with
        ``plane_points=``) or ``"readouts"`` (non-Cartesian spokes or interleaves).

    Raises
    ------
    ConfigError
        If the sequence does not play exactly the pattern's lines.
    """
    if axis == "plane":
        points = built.plane_points
        played = None if points is None else points[:, 0] * int(pattern.mask.shape[1]) + points[:, 1]
    else:
        played = built.partition_lines if axis == "k2" else built.phase_encode_lines
    if played is None or sorted(int(i) for i in set(played.tolist())) != sorted(int(i) for i in pattern.order):
        raise ConfigError(
            f"sequence {built.protocol.name!r} does not play the {axis} lines of its {pattern.name} pattern"
        )
    thickness = getattr(built.protocol, "slice_thickness_m", None)
    return dataclasses.replace(
        built,
        pattern=pattern,
        pattern_axis=axis,
        slice_thickness_m=float(thickness) if thickness is not None and built.partition_lines is None else None,
    )


def with_own_pattern(built: BuiltSequence) -> BuiltSequence:
    """``built`` (made by ``protocol.build`` without a pattern) carrying the pattern of the lines it plays.

    Cartesian 2D: its k1 lines; 3D: its partitions (it must play every k1 line); radial and spiral: its readouts.
    """
    from hifield.sampling import played_lines

    protocol: Any = built.protocol
    if built.trajectory != "cartesian":
        full = int(getattr(protocol, "n_spokes", 0) or getattr(protocol, "n_interleaves", 0) or built.n_lines)
        return with_pattern(built, played_lines(full, built.phase_encode_lines), axis="readouts")
    if built.partition_lines is not None:
        if len(set(built.phase_encode_lines.tolist())) != int(protocol.matrix):
            raise ConfigError(f"sequence {protocol.name!r} skips k1 lines of its partitions; give it a pattern")
        pattern = played_lines(int(protocol.n_partitions), built.partition_lines)
        return with_pattern(built, pattern, axis="k2")
    return with_pattern(built, played_lines(int(protocol.matrix), built.phase_encode_lines), axis="k1")


def build_with_pattern(protocol: Any, scanner: Scanner, pattern: SamplingPattern, *, axis: str = "k1") -> BuiltSequence:
    """Build ``protocol`` playing ``pattern`` along ``axis`` and attach the pattern (see :func:`with_pattern`)."""
    if axis == "plane":
        from hifield.sampling import SamplingPattern2D

        assert isinstance(pattern, SamplingPattern2D)
        built = protocol.build(scanner, plane_points=pattern.order_2d.tolist())
        return with_pattern(built, pattern, axis=axis)
    lines = [int(i) for i in pattern.order]
    built = (
        protocol.build(scanner, partition_lines=lines)
        if axis == "k2"
        else protocol.build(scanner, phase_encode_lines=lines)
    )
    return with_pattern(built, pattern, axis=axis)


PLANE_PATTERNS: dict[str, str] = {"variable-density": "poisson", "poisson": "poisson", "caipirinha": "caipirinha"}
"""Patterns a 3D protocol plays over its (k2, k1) plane, and the plane generator each maps to: variable density
means the variable-density Poisson disc there. The other line patterns (equispaced, partial Fourier) run along the
partitions."""


@dataclass(frozen=True)
class Acquisition:
    """The fully sampled reference and the accelerated sequence of one exam; the latter carries its pattern."""

    full: BuiltSequence
    """Every line the protocol plays (the reference), carrying the pattern of those lines."""
    accelerated: BuiltSequence
    """The lines of the sampling pattern, which it carries (``accelerated.pattern``)."""
    n_calibration_requested: int
    """Calibration lines asked for: a 3D (k2, k1) pattern gets an ``n x n`` block clipped to the grid and to three
    quarters of its points (:func:`hifield.sampling.registry.plane_calibration`); a slab sampled along its
    partitions at most a quarter of them (:func:`hifield.sampling.partition_calibration`)."""

    @property
    def pattern(self) -> SamplingPattern:
        """The sampling pattern the accelerated sequence plays."""
        assert self.accelerated.pattern is not None
        return self.accelerated.pattern


def choose_pattern(
    protocol: Any,
    full: BuiltSequence,
    *,
    pattern: str = "variable-density",
    acceleration: float,
    n_calibration: int = 24,
    seed: int = 0,
) -> tuple[SamplingPattern, str]:
    """The sampling pattern of a request for ``protocol`` whose fully sampled sequence is ``full``, and its axis.

    The axis is ``"k1"`` (2D Cartesian), ``"plane"`` (3D with a pattern of :data:`PLANE_PATTERNS`, the default:
    a variable-density Poisson disc or CAIPIRINHA over (k2, k1) with a fully sampled central ``n x n`` calibration
    block, clipped to the grid), ``"k2"`` (3D with a line pattern: the partitions, with at most a quarter of them as
    calibration) or ``"readouts"`` (radial spokes, spiral interleaves: the table's trajectory entry, whatever
    ``pattern`` says). :func:`plan_acquisition` builds the accelerated sequence from it; the console shows it.

    Raises
    ------
    ConfigError
        For a bad request (see :func:`hifield.sampling.make_pattern`).
    """
    from hifield.sampling import check_request, make_pattern, partition_calibration

    if full.trajectory != "cartesian":
        chosen = make_pattern(
            full.trajectory, full.n_lines, acceleration=acceleration, seed=seed, trajectory=full.trajectory
        )
        return chosen, "readouts"
    if full.partition_lines is not None:
        n_partitions = int(protocol.n_partitions)
        request = check_request(pattern, acceleration=acceleration, n_calibration=n_calibration)
        if request.pattern in PLANE_PATTERNS and request.acceleration > 1:
            plane = (n_partitions, int(protocol.matrix))
            chosen = make_pattern(
                PLANE_PATTERNS[request.pattern],
                plane,
                acceleration=acceleration,
                n_calibration=n_calibration,
                seed=seed,
            )
            return chosen, "plane"
        chosen = make_pattern(
            pattern,
            n_partitions,
            acceleration=acceleration,
            n_calibration=partition_calibration(n_calibration, n_partitions),
            seed=seed,
        )
        return chosen, "k2"
    chosen = make_pattern(
        pattern, int(protocol.matrix), acceleration=acceleration, n_calibration=n_calibration, seed=seed
    )
    return chosen, "k1"


def plan_acquisition(
    protocol: Any,
    scanner: Scanner,
    *,
    pattern: str = "variable-density",
    acceleration: float,
    n_calibration: int = 24,
    seed: int = 0,
    full: BuiltSequence | None = None,
) -> Acquisition:
    """Build the reference and the accelerated sequence of ``protocol`` for a sampling request.

    Cartesian 2D protocols are accelerated along k1 with ``pattern``; 3D protocols over their (k2, k1) plane
    (Poisson disc or CAIPIRINHA, see :func:`choose_pattern`; an MPRAGE regroups the points into full trains, so it
    plays fewer inversions) or, with a line pattern, along their partitions; radial and spiral protocols
    play a subset of their spokes or interleaves (the table's ``"radial"`` or ``"spiral"`` entry, whatever
    ``pattern`` says, with no calibration region).

    ``full``, when given, is ``protocol``'s fully sampled sequence already built (it is reused, not built again).

    Raises
    ------
    ConfigError
        For a bad request (see :func:`hifield.sampling.make_pattern`).
    """
    full = with_own_pattern(full if full is not None else protocol.build(scanner))
    chosen, axis = choose_pattern(
        protocol, full, pattern=pattern, acceleration=acceleration, n_calibration=n_calibration, seed=seed
    )
    accelerated = build_with_pattern(protocol, scanner, chosen, axis=axis)
    return Acquisition(full=full, accelerated=accelerated, n_calibration_requested=n_calibration)


def calibration_prescan(protocol: ImagingProtocol, scanner: Scanner) -> BuiltSequence:
    """A short Cartesian coil-calibration prescan of ``protocol``'s slice, carrying its calibration pattern.

    A low-flip, short-TR 2D spoiled GRE of the same field of view, matrix and slice that plays only the
    :data:`CALIBRATION_PRESCAN_LINES` central phase-encode lines (about 0.3 s at 3 T), all of them calibration, as
    scanners do before accelerated spiral scans.
    """
    from hifield.sampling import centre_lines
    from hifield.sequence.library.gre import GreProtocol

    n = int(protocol.matrix)
    prescan = GreProtocol(
        name="coil_calibration",
        fov_m=float(protocol.fov_m),
        matrix=n,
        slice_thickness_m=float(protocol.slice_thickness_m or 0.005),
        tr_s=0.012,
        te_s=0.005,
        flip_angle_rad=float(np.radians(10.0)),
        readout_bandwidth_hz_per_pixel=400.0,
    )
    return build_with_pattern(prescan, scanner, centre_lines(n, CALIBRATION_PRESCAN_LINES), axis="k1")
