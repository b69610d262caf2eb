"""Every sampling pattern by name, in one table: 1D lines, (k2, k1) planes and non-Cartesian readout subsets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hifield.errors import ConfigError
from hifield.sampling.caipi import caipirinha
from hifield.sampling.partial_fourier import partial_fourier_lines
from hifield.sampling.pattern import SamplingPattern, equispaced_lines, full_lines, variable_density_lines
from hifield.sampling.poisson import poisson_disc


@dataclass(frozen=True)
class PatternRequest:
    """What a generator of the table receives (already validated by :func:`check_request`)."""

    n2: int
    """k2 lines (1 for a pattern over the k1 lines of a 2D scan, or over readouts)."""
    n1: int
    """k1 lines (or readouts: spokes, interleaves)."""
    acceleration: float
    """Acceleration R > 1 (R = 1 never reaches a generator: it is the full pattern)."""
    n_calibration: int
    """Calibration lines (a ``n x n`` block in a plane, clipped to ``n2``)."""
    seed: int
    """Seed of the random patterns."""
    partial_fourier: float
    """Fraction of k1 acquired by ``"partial-fourier"``."""
    corner_cut: bool
    """Elliptical corner cut of the plane patterns."""
    order: str
    """``"linear"`` or ``"centre-out"``."""


@dataclass(frozen=True)
class PatternKind:
    """One entry of the table: the generator and the encoding it samples."""

    generate: Callable[[PatternRequest], SamplingPattern]
    """Makes the pattern."""
    encoding: str
    """``"lines"`` (k1 of a 2D scan), ``"any"`` (k1 lines or a (k2, k1) plane) or ``"readouts"`` (non-Cartesian)."""
    description: str
    """One line for ``--help`` and the docs."""


def caipi_factors(acceleration: int) -> tuple[int, int]:
    """Split an integer R into ``(ry, rz)`` with ``ry >= rz`` as close to square as possible.

    Examples
    --------
    >>> caipi_factors(6), caipi_factors(4), caipi_factors(7)
    ((3, 2), (2, 2), (7, 1))
    """
    rz = max(d for d in range(1, math.isqrt(acceleration) + 1) if acceleration % d == 0)
    return acceleration // rz, rz


def readout_subset(n_readouts: int, *, acceleration: float, golden: bool) -> SamplingPattern:
    """The readouts (radial spokes, spiral interleaves) played at ``acceleration``, as a pattern over readouts.

    Golden-angle designs play their first ``round(n / R)`` readouts (each prefix covers k-space almost uniformly);
    others play evenly spaced indices. The mask has shape ``(1, n_readouts, 1)``; there is no calibration region.

    Examples
    --------
    >>> readout_subset(16, acceleration=4.0, golden=False).order.tolist()
    [0, 4, 8, 12]
    >>> readout_subset(402, acceleration=4.0, golden=True).n_acquired
    100
    """
    keep = max(1, min(n_readouts, round(n_readouts / acceleration)))
    if golden:
        chosen = np.arange(keep, dtype=np.int64)
    else:
        chosen = np.array(sorted({int(i) for i in np.floor(np.arange(keep) * n_readouts / keep)}), dtype=np.int64)
    mask = np.zeros((1, n_readouts, 1), dtype=bool)
    mask[0, chosen, 0] = True
    name = "radial subset" if golden else "spiral subset"
    return SamplingPattern(mask=mask, calibration=np.zeros_like(mask), order=chosen, name=name)


def _variable_density(r: PatternRequest) -> SamplingPattern:
    return variable_density_lines(r.n1, acceleration=r.acceleration, n_calibration=r.n_calibration, seed=r.seed)


def _equispaced(r: PatternRequest) -> SamplingPattern:
    return equispaced_lines(r.n1, acceleration=int(r.acceleration), n_calibration=r.n_calibration)


def _partial_fourier(r: PatternRequest) -> SamplingPattern:
    fraction = r.partial_fourier
    if r.acceleration * fraction < 1.0 - 1e-9:
        raise ConfigError(
            f"partial Fourier {fraction:g} alone gives R = {1 / fraction:.3g}; ask for an acceleration >= "
            f"{1 / fraction:.3g}"
        )
    inner = max(1.0, r.acceleration * fraction)
    return partial_fourier_lines(
        r.n1,
        fraction=fraction,
        acceleration=inner,
        n_calibration=r.n_calibration,
        seed=r.seed,
        order=r.order,
        kind="full" if inner == 1.0 else "variable-density",
    )


PLANE_CALIBRATION_SHARE = 0.75
"""Most of a (k2, k1) pattern's points its calibration block may take (the rest samples the periphery)."""


def plane_calibration(n_calibration: int, shape: tuple[int, int], acceleration: float) -> tuple[int, int]:
    """The square ``n x n`` calibration block of a (k2, k1) plane: clipped to the partitions (k2), then shrunk
    until it takes at most :data:`PLANE_CALIBRATION_SHARE` of the ``round(k2 * k1 / R)`` points acquired. A block
    wider than the k1 lines is returned as asked, for the generator to refuse (as a 2D pattern does).

    Examples
    --------
    >>> plane_calibration(24, (64, 48), 4.0), plane_calibration(24, (16, 48), 4.0), plane_calibration(24, (64, 48), 8)
    ((24, 24), (12, 12), (16, 16))
    """
    n2, n1 = shape
    if n_calibration > n1:
        return min(n_calibration, n2), n_calibration
    budget = PLANE_CALIBRATION_SHARE * round(n2 * n1 / max(acceleration, 1.0))
    size = n_calibration
    while size > 0 and min(size, n2) * min(size, n1) > budget:
        size -= 1
    return min(size, n2), min(size, n1)


def _plane_calibration(r: PatternRequest) -> tuple[int, int]:
    return plane_calibration(r.n_calibration, (r.n2, r.n1), r.acceleration)


def _poisson(r: PatternRequest) -> SamplingPattern:
    calibration = _plane_calibration(r)
    return poisson_disc(
        (r.n2, r.n1),
        acceleration=r.acceleration,
        calibration=calibration,
        corner_cut=r.corner_cut,
        seed=r.seed,
        order=r.order,
    )


def _caipirinha(r: PatternRequest) -> SamplingPattern:
    ry, rz = caipi_factors(int(r.acceleration)) if r.n2 > 1 else (int(r.acceleration), 1)
    return caipirinha(
        (r.n2, r.n1),
        ry=ry,
        rz=rz,
        shift=1 if (rz > 1 and ry > 1) else 0,
        calibration=_plane_calibration(r),
        corner_cut=r.corner_cut,
        order=r.order,
    )


def _radial(r: PatternRequest) -> SamplingPattern:
    return readout_subset(r.n1, acceleration=r.acceleration, golden=True)


def _spiral(r: PatternRequest) -> SamplingPattern:
    return readout_subset(r.n1, acceleration=r.acceleration, golden=False)


TABLE: dict[str, PatternKind] = {
    "variable-density": PatternKind(_variable_density, "lines", "random k1 lines, denser at the centre, with ACS"),
    "equispaced": PatternKind(_equispaced, "lines", "every R-th k1 line plus ACS (integer R)"),
    "partial-fourier": PatternKind(_partial_fourier, "lines", "5/8 of k1, variable density inside it"),
    "poisson": PatternKind(_poisson, "any", "variable-density Poisson disc (k2, k1 for 3D)"),
    "caipirinha": PatternKind(_caipirinha, "any", "shifted ry x rz lattice (integer R)"),
    "radial": PatternKind(_radial, "readouts", "the first N/R golden-angle spokes"),
    "spiral": PatternKind(_spiral, "readouts", "N/R evenly spaced interleaves"),
}
"""The name -> generator table of every sampling pattern."""

ALIASES: dict[str, str] = {"vd": "variable-density", "random": "variable-density", "caipi": "caipirinha"}
"""Other accepted spellings."""

PATTERNS: tuple[str, ...] = tuple(TABLE)
"""Every pattern name :func:`make_pattern` accepts."""

CARTESIAN_PATTERNS: tuple[str, ...] = tuple(k for k, v in TABLE.items() if v.encoding != "readouts")
"""Patterns of Cartesian phase encoding."""

NON_CARTESIAN_PATTERNS: tuple[str, ...] = tuple(k for k, v in TABLE.items() if v.encoding == "readouts")
"""Patterns of non-Cartesian readouts (spokes, interleaves)."""

INTEGER_PATTERNS: tuple[str, ...] = ("equispaced", "caipirinha")
"""Regular lattices: their acceleration must be a whole number."""


def canonical_name(name: str) -> str:
    """The table's name for ``name`` (aliases resolved); a one-line ConfigError for an unknown one."""
    key = ALIASES.get(name, name)
    if key not in TABLE:
        raise ConfigError(f"unknown sampling pattern {name!r}; choose one of {', '.join(PATTERNS)}")
    return key


def make_pattern(
    name: str,
    shape: int | tuple[int, int],
    *,
    acceleration: float,
    n_calibration: int = 24,
    seed: int = 0,
    trajectory: str = "cartesian",
    partial_fourier: float = 5 / 8,
    corner_cut: bool = False,
    order: str = "linear",
) -> SamplingPattern:
    """Build any sampling pattern by name: the one way into :mod:`hifield.sampling`.

    ``acceleration`` is always the effective one (grid lines / acquired lines, the factor the scan time falls by):
    for ``"partial-fourier"`` the lines inside the ``partial_fourier`` window are undersampled by
    ``acceleration * partial_fourier``; for ``"caipirinha"`` it is split by :func:`caipi_factors` with a shift of 1
    (the calibration block lowers the achieved R a little). R = 1 gives the fully sampled pattern for every name.

    Parameters
    ----------
    name
        One of :data:`PATTERNS` (aliases in :data:`ALIASES`).
    shape
        k1 lines of a 2D scan (``n``), ``(n_k2, n_k1)`` of a 3D scan, or the readouts of a non-Cartesian design.
    acceleration
        Effective acceleration R >= 1.
    n_calibration
        Fully sampled central lines (2D) or a ``n x n`` block (3D: clipped to the grid and to at most three
        quarters of the acquired points, see :func:`plane_calibration`); unused for readouts.
    seed
        Seed of the random patterns.
    trajectory
        ``"cartesian"`` or the non-Cartesian kind (``"radial"``, ``"spiral"``) of the sequence to be sampled.
    partial_fourier
        Fraction of k1 acquired by ``"partial-fourier"``.
    corner_cut
        Elliptical corner cut of the (k2, k1) patterns.
    order
        ``"linear"`` or ``"centre-out"``.

    Raises
    ------
    ConfigError
        For an unknown name, a pattern that does not suit the trajectory or the grid, and every rule of
        :func:`check_request` and of the generators.

    Examples
    --------
    >>> make_pattern("partial-fourier", 256, acceleration=4, n_calibration=16).acceleration
    4.0
    >>> make_pattern("poisson", (64, 48), acceleration=4, n_calibration=12).mask.shape
    (64, 48, 1)
    >>> make_pattern("radial", 402, acceleration=4, trajectory="radial").n_acquired
    100
    """
    from hifield.sampling.validation import check_request

    n2, n1 = (1, int(shape)) if isinstance(shape, (int, np.integer)) else (int(shape[0]), int(shape[1]))
    request = check_request(name, acceleration=acceleration, n_calibration=n_calibration)
    key = request.pattern
    kind = TABLE[key]
    if (kind.encoding == "readouts") != (trajectory != "cartesian"):
        if trajectory == "cartesian":
            raise ConfigError(
                f"{key} is a non-Cartesian pattern and this protocol is Cartesian; use a radial or spiral protocol "
                f"or one of {', '.join(CARTESIAN_PATTERNS)}"
            )
        raise ConfigError(f"a {trajectory} protocol plays a subset of its readouts; use the pattern {trajectory!r}")
    if kind.encoding == "lines" and n2 != 1:
        raise ConfigError(f"{key} lines are a 2D-scan pattern; use poisson or caipirinha for a {n2}x{n1} plane")
    if request.acceleration == 1 and kind.encoding != "readouts":
        if n2 == 1:
            return full_lines(n1)
        return poisson_disc((n2, n1), acceleration=1.0, calibration=(0, 0), corner_cut=False, order=order)
    return kind.generate(
        PatternRequest(
            n2=n2,
            n1=n1,
            acceleration=request.acceleration,
            n_calibration=request.n_calibration,
            seed=seed,
            partial_fourier=partial_fourier,
            corner_cut=corner_cut,
            order=order,
        )
    )
