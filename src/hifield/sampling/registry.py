"""Every sampling pattern by name: Cartesian (1D lines, 2D (k2, k1) plane) and non-Cartesian trajectories."""

from __future__ import annotations

import math

from hifield.errors import ConfigError
from hifield.sampling.caipi import caipirinha
from hifield.sampling.noncartesian import GradientLimits, NonCartesianPattern, golden_angle_radial
from hifield.sampling.partial_fourier import partial_fourier_lines
from hifield.sampling.pattern import SamplingPattern, full_lines, make_pattern
from hifield.sampling.poisson import poisson_disc

CARTESIAN_PATTERNS: tuple[str, ...] = ("variable-density", "equispaced", "partial-fourier", "poisson", "caipirinha")
"""Names :func:`make_any_pattern` accepts."""

NON_CARTESIAN_PATTERNS: tuple[str, ...] = ("radial", "stack-of-stars", "spiral")
"""Names :func:`make_noncartesian_pattern` accepts."""


def caipi_factors(acceleration: int) -> tuple[int, int]:
    """Split an integer R into ``(ry, rz)`` with ``ry >= rz`` as close to square as possible.

    Examples
    --------
    >>> caipi_factors(6), caipi_factors(4), caipi_factors(7)
    ((3, 2), (2, 2), (7, 1))
    """
    rz = max(d for d in range(1, math.isqrt(acceleration) + 1) if acceleration % d == 0)
    return acceleration // rz, rz


def make_any_pattern(
    name: str,
    shape: int | tuple[int, int],
    *,
    acceleration: float,
    n_calibration: int = 24,
    seed: int = 0,
    partial_fourier: float = 5 / 8,
    corner_cut: bool = False,
    order: str = "linear",
) -> SamplingPattern:
    """Build any Cartesian pattern by name, for a 2D scan (``shape = n_k1``) or a 3D scan (``(n_k2, n_k1)``).

    ``acceleration`` is always the effective one (grid lines / acquired lines, so the factor the scan time
    falls by): for ``"partial-fourier"`` the lines inside the ``partial_fourier`` window are undersampled by
    ``acceleration * partial_fourier``; for ``"caipirinha"`` it must be an integer, split by
    :func:`caipi_factors` with a shift of 1 (the calibration block lowers the achieved R a little). R = 1 gives the
    fully sampled pattern.

    Parameters
    ----------
    name
        One of :data:`CARTESIAN_PATTERNS` (``"vd"``/``"random"`` for variable-density, ``"caipi"`` accepted).
    shape
        k1 lines (2D scan) or ``(n_k2, n_k1)`` (3D scan; ``n_k2 = 1`` is allowed).
    acceleration
        Effective acceleration R >= 1.
    n_calibration
        Fully sampled central lines (2D) or a ``n x n`` block (3D, clipped to ``n_k2``).
    seed
        Seed of the random patterns.
    partial_fourier
        Fraction of k1 acquired by ``"partial-fourier"``.
    corner_cut
        Elliptical corner cut of the 3D patterns.
    order
        ``"linear"`` or ``"centre-out"``.

    Raises
    ------
    ConfigError
        For unknown names, non-Cartesian names (they need a radial or spiral protocol), and every bad request the
        generators refuse.

    Examples
    --------
    >>> p = make_any_pattern("partial-fourier", 256, acceleration=4, n_calibration=16)
    >>> round(p.acceleration, 2)
    4.0
    >>> make_any_pattern("poisson", (64, 48), acceleration=4, n_calibration=12).mask.shape
    (64, 48, 1)
    """
    key = {"vd": "variable-density", "random": "variable-density", "caipi": "caipirinha"}.get(name, name)
    if key in NON_CARTESIAN_PATTERNS:
        raise ConfigError(
            f"{key} is a non-Cartesian pattern and this protocol is Cartesian; use a radial or spiral protocol "
            f"or one of {', '.join(CARTESIAN_PATTERNS)}"
        )
    if key not in CARTESIAN_PATTERNS:
        raise ConfigError(f"unknown sampling pattern {name!r}; choose one of {', '.join(CARTESIAN_PATTERNS)}")
    n2, n1 = (1, shape) if isinstance(shape, int) else (int(shape[0]), int(shape[1]))
    if key in ("variable-density", "equispaced"):
        if n2 != 1:
            raise ConfigError(f"{key} lines are a 2D-scan pattern; use poisson or caipirinha for a {n2}x{n1} plane")
        return make_pattern(key, n1, acceleration=acceleration, n_calibration=n_calibration, seed=seed)
    if key == "partial-fourier":
        if n2 != 1:
            raise ConfigError(f"partial Fourier here is along k1 of a 2D scan; got a {n2}x{n1} plane")
        if not math.isfinite(acceleration) or acceleration * partial_fourier < 1.0 - 1e-9:
            raise ConfigError(
                f"partial Fourier {partial_fourier:g} alone gives R = {1 / partial_fourier:.3g}; "
                f"ask for an acceleration >= {1 / partial_fourier:.3g}"
            )
        inner = max(1.0, acceleration * partial_fourier)
        return partial_fourier_lines(
            n1,
            fraction=partial_fourier,
            acceleration=inner,
            n_calibration=n_calibration,
            seed=seed,
            order=order,
            kind="full" if inner == 1.0 else "variable-density",
        )
    if acceleration == 1:
        return (
            full_lines(n1)
            if n2 == 1
            else poisson_disc((n2, n1), acceleration=1.0, calibration=(0, 0), corner_cut=False, order=order)
        )
    calib = (min(n_calibration, n2), n_calibration)
    if key == "poisson":
        return poisson_disc(
            (n2, n1), acceleration=acceleration, calibration=calib, corner_cut=corner_cut, seed=seed, order=order
        )
    if int(acceleration) != acceleration:
        raise ConfigError(f"CAIPIRINHA acceleration must be an integer (ry x rz); got {acceleration:g}")
    ry, rz = caipi_factors(int(acceleration)) if n2 > 1 else (int(acceleration), 1)
    return caipirinha(
        (n2, n1),
        ry=ry,
        rz=rz,
        shift=1 if (rz > 1 and ry > 1) else 0,
        calibration=calib,
        corner_cut=corner_cut,
        order=order,
    )


def make_noncartesian_pattern(
    name: str,
    matrix: int,
    *,
    fov_m: float,
    gradients: GradientLimits,
    acceleration: float,
    n_interleaves: int = 8,
    n_partitions: int = 1,
    fov_z_m: float | None = None,
) -> NonCartesianPattern:
    """Build a non-Cartesian pattern by name: ``"radial"``, ``"stack-of-stars"`` or ``"spiral"``.

    Raises
    ------
    ConfigError
        For unknown names and the requests the generators refuse.
    """
    from hifield.sampling.spiral import variable_density_spiral

    if name == "radial":
        return golden_angle_radial(matrix, fov_m=fov_m, gradients=gradients, acceleration=acceleration)
    if name == "stack-of-stars":
        return golden_angle_radial(
            matrix,
            fov_m=fov_m,
            gradients=gradients,
            acceleration=acceleration,
            n_partitions=n_partitions,
            fov_z_m=fov_z_m,
        )
    if name == "spiral":
        return variable_density_spiral(
            matrix, fov_m=fov_m, gradients=gradients, n_interleaves=n_interleaves, acceleration=acceleration
        )
    raise ConfigError(f"unknown non-Cartesian pattern {name!r}; choose one of {', '.join(NON_CARTESIAN_PATTERNS)}")
