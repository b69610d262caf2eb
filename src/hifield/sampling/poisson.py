"""Variable-density Poisson-disc sampling of the (k2, k1) phase-encode plane (Bridson's algorithm, seeded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.sampling.grid2d import (
    SamplingPattern2D,
    calibration_region,
    check_shape,
    corner_cut_region,
    make_pattern_2d,
    normalised_radius,
)
from hifield.sampling.validation import check_acceleration, check_lines_left


def _kernel() -> Callable[..., Any]:
    """The Bridson + dart-throwing kernel, compiled by Numba on first use (cached on disk)."""
    from hifield.sampling._poisson_kernel import poisson_disc

    return poisson_disc  # type: ignore[no-any-return]


def poisson_disc_mask(
    radius: NDArray[np.float64],
    *,
    allowed: NDArray[np.bool_] | None = None,
    fixed: NDArray[np.bool_] | None = None,
    seed: int = 0,
    n_candidates: int = 30,
) -> NDArray[np.bool_]:
    """Maximal Poisson-disc set on a 2D grid with a radius that varies from point to point.

    Bridson's algorithm (candidates in the annulus ``[r, 2r]`` around active points, ``n_candidates`` tries each)
    followed by a dart-throwing sweep over all grid points in random order, so that no point could be added
    without coming closer than its own radius ``radius[i]`` [grid steps] to an accepted one.

    Parameters
    ----------
    radius
        Exclusion radius at each grid point [grid steps], shape ``(n2, n1)``; 1 means every point may be taken.
    allowed
        Points that may be taken (default all).
    fixed
        Points taken before the growth starts (e.g. a calibration region).
    seed
        Random seed; the same seed gives the same set.
    n_candidates
        Bridson's number of candidates per active point.

    Returns
    -------
    ndarray of bool
        The accepted points, shape ``(n2, n1)``.

    Examples
    --------
    >>> m = poisson_disc_mask(np.full((32, 32), 2.5), seed=1)
    >>> pts = np.argwhere(m)
    >>> d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) + 1e9 * np.eye(len(pts))
    >>> bool(d.min() >= 2.5)
    True
    """
    rad = np.ascontiguousarray(np.maximum(np.asarray(radius, dtype=np.float64), 1e-9))
    ok = np.ones(rad.shape, dtype=bool) if allowed is None else np.ascontiguousarray(allowed, dtype=bool)
    start = np.zeros(rad.shape, dtype=bool) if fixed is None else np.ascontiguousarray(fixed, dtype=bool)
    taken: NDArray[np.bool_] = _kernel()(rad, ok, start, int(seed), int(n_candidates))
    return taken


def _radius_map(rho: NDArray[np.float64], scale: float, falloff: float, power: float) -> NDArray[np.float64]:
    return scale * (1.0 + falloff * rho**power)


def poisson_disc(
    shape: tuple[int, int],
    *,
    acceleration: float,
    calibration: tuple[int, int] = (24, 24),
    elliptical_calibration: bool = False,
    corner_cut: bool = True,
    falloff: float = 2.0,
    power: float = 1.0,
    seed: int = 0,
    order: str = "linear",
    tolerance: float = 0.005,
) -> SamplingPattern2D:
    """Variable-density Poisson-disc pattern over (k2, k1) with a fully sampled calibration region.

    The exclusion radius grows with the elliptical k-space radius ``rho`` (0 at the centre, 1 on the edge) as
    ``r = scale * (1 + falloff * rho ** power)`` grid steps, so the density (about ``1 / r^2``) falls by
    ``(1 + falloff) ** 2`` from the centre to the edge; where ``r <= 1`` every point is taken (a fully sampled
    centre at low R). The scale is bisected (geometrically) until the pattern has ``round(k2 * k1 / acceleration)``
    points within ``tolerance``; the last few points are then added or removed at random (weighted by the local
    density) to hit that count exactly. The acceleration counts the whole grid, corners included.

    Parameters
    ----------
    shape
        ``(n_k2, n_k1)`` phase-encode matrix.
    acceleration
        Requested effective acceleration R >= 1 (grid points / acquired points).
    calibration
        Fully sampled central calibration region ``(c2, c1)`` [points].
    elliptical_calibration
        Elliptical calibration region inscribed in ``c2 x c1`` instead of the full rectangle.
    corner_cut
        Elliptical corner cut: never acquire outside the ellipse inscribed in the matrix (limits R >= 4/pi).
    falloff
        Growth of the radius from the centre to the edge (0: uniform-density Poisson disc).
    power
        Exponent of the radius growth with ``rho`` (larger: flatter centre, steeper edge).
    seed
        Random seed; the same seed gives the same pattern.
    order
        ``"linear"`` or ``"centre-out"`` acquisition order.
    tolerance
        Relative tolerance of the bisection on the number of points before the exact adjustment.

    Returns
    -------
    SamplingPattern2D
        Mask ``(k2, k1, 1)``, calibration, acquisition order.

    Raises
    ------
    ConfigError
        For R < 1, a calibration region that does not fit the matrix, or R outside what the corner cut and the
        calibration region allow.

    Examples
    --------
    >>> p = poisson_disc((48, 40), acceleration=4, calibration=(12, 12), seed=0)
    >>> round(p.acceleration, 2), bool(p.mask[18:30, 14:26].all())
    (4.0, True)
    """
    n2, n1 = check_shape(shape)
    accel = check_acceleration(acceleration)
    if not 0.0 < power <= 8.0:
        raise ConfigError(f"Poisson-disc density power must be in (0, 8]; got {power!r}")
    if not 0.0 <= falloff <= 100.0:
        raise ConfigError(f"Poisson-disc radius falloff must be in [0, 100]; got {falloff!r}")
    allowed = corner_cut_region((n2, n1), corner_cut=corner_cut)
    calib = calibration_region((n2, n1), calibration, elliptical=elliptical_calibration) & allowed
    total = n2 * n1
    n_target = round(total / accel)
    n_allowed, n_calib = int(allowed.sum()), int(calib.sum())
    if n_target > n_allowed:
        raise ConfigError(
            f"acceleration {accel:g} is below what the corner-cut {n2}x{n1} matrix reaches "
            f"({total / n_allowed:.3g}); ask for R >= {total / n_allowed:.3g} or switch the corner cut off"
        )
    check_lines_left(total, accel, n_calib, unit="points")
    rng = np.random.default_rng(seed)
    kernel_seed = int(rng.integers(0, 2**31 - 1))
    rho = normalised_radius((n2, n1))

    def run(scale: float) -> NDArray[np.bool_]:
        radius = _radius_map(rho, scale, falloff, power)
        return poisson_disc_mask(radius, allowed=allowed, fixed=calib, seed=kernel_seed)

    # below lo every radius is <= 1 (all allowed points taken); find hi with too few points, then bisect
    lo = 1.0 / (1.0 + falloff * float(rho[allowed].max()) ** power)
    hi = max(2.0 * lo, np.sqrt(accel) * lo)
    tol = max(1, int(tolerance * n_target))
    mask = run(lo)
    best, best_err = mask, abs(int(mask.sum()) - n_target)
    for _ in range(64):
        if best_err <= tol:
            break
        trial = run(hi)
        if abs(int(trial.sum()) - n_target) < best_err:
            best, best_err = trial, abs(int(trial.sum()) - n_target)
        if int(trial.sum()) <= n_target:
            break
        lo, hi = hi, 2.0 * hi
    for _ in range(40):
        if best_err <= tol or hi / lo < 1.0 + 1e-9:
            break
        mid = float(np.sqrt(lo * hi))
        trial = run(mid)
        count = int(trial.sum())
        if abs(count - n_target) < best_err:
            best, best_err = trial, abs(count - n_target)
        if count > n_target:
            lo = mid
        else:
            hi = mid
    mask = best
    mask = _adjust_count(
        mask, n_target, allowed=allowed, calib=calib, density=1.0 / _radius_map(rho, 1.0, falloff, power) ** 2, rng=rng
    )
    return make_pattern_2d(mask, calib, name="poisson", seed=seed, order=order, requested_acceleration=accel)


def _adjust_count(
    mask: NDArray[np.bool_],
    n_target: int,
    *,
    allowed: NDArray[np.bool_],
    calib: NDArray[np.bool_],
    density: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Add or remove a few points at random (weighted by density) so that ``mask`` has exactly ``n_target``."""
    mask = mask.copy()
    diff = int(mask.sum()) - n_target
    if diff > 0:
        cand = np.flatnonzero(mask & ~calib)
        w = 1.0 / density.ravel()[cand]
        drop = rng.choice(cand, size=diff, replace=False, p=w / w.sum())
        mask.ravel()[drop] = False
    elif diff < 0:
        cand = np.flatnonzero(allowed & ~mask)
        w = density.ravel()[cand]
        add = rng.choice(cand, size=-diff, replace=False, p=w / w.sum())
        mask.ravel()[add] = True
    return mask
