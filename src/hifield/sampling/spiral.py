"""Variable-density spirals designed time-optimally within a scanner's gradient amplitude and slew limits."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hifield.data import Trajectory
from hifield.errors import ConfigError
from hifield.sampling.noncartesian import GradientLimits, NonCartesianPattern, _check_common, k_from_gradient
from hifield.units import GAMMA_BAR_HZ_PER_T


def _undersampling(r: NDArray[np.float64], kc: float, slope: float) -> NDArray[np.float64]:
    """Local undersampling u(r): 1 inside the calibration radius, rising linearly with ``slope`` [m] outside."""
    return 1.0 + slope * np.clip(r - kc, 0.0, None)


def spiral_effective_acceleration(kmax_m: float, kc_m: float, slope_m: float) -> float:
    """Effective acceleration of a variable-density spiral: Nyquist path length over the design's path length.

    A spiral whose adjacent interleaves are ``u(r) / fov`` apart has, per interleaf, a path length proportional to
    ``integral 2 pi r / u(r) dr``; a Nyquist spiral (u = 1) with the same interleaves needs ``pi kmax^2``. The
    ratio is R: the factor fewer readouts than a Nyquist spiral of the same readout length needs.

    Examples
    --------
    >>> round(spiral_effective_acceleration(500.0, 100.0, 0.0), 6)
    1.0
    """
    r = np.linspace(0.0, kmax_m, 40001)
    integrand = r / _undersampling(r, kc_m, slope_m)
    return float(0.5 * kmax_m**2 / np.trapezoid(integrand, r))


def _solve_slope(acceleration: float, kmax: float, kc: float) -> float:
    """Slope of u(r) that gives the requested effective acceleration (bisection in log space)."""
    if acceleration == 1.0:
        return 0.0
    r_max = (kmax / kc) ** 2
    lo, hi = -12.0, 6.0  # log10 of the slope [m]
    if spiral_effective_acceleration(kmax, kc, 10.0**hi) < acceleration:
        raise ConfigError(
            f"spiral acceleration {acceleration:g} is beyond what a calibration radius of {kc / kmax:.3g} k_max "
            f"reaches (R < {r_max:.3g}); ask for less or use a smaller calibration fraction"
        )
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if spiral_effective_acceleration(kmax, kc, 10.0**mid) < acceleration:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return float(10.0 ** (0.5 * (lo + hi)))


def _velocity_profile(
    s: NDArray[np.float64], kappa: NDArray[np.float64], v_max: float, a_max: float
) -> NDArray[np.float64]:
    """Time-optimal speed along a curve (Lustig, Kim, Pauly 2008): forward and backward passes of
    ``d(v^2)/ds = 2 sqrt(a_max^2 - kappa^2 v^4)`` under ``v <= min(v_max, sqrt(a_max / kappa))``, starting at 0."""
    v_lim = np.minimum(v_max, np.sqrt(a_max / np.maximum(kappa, 1e-300)))
    ds = np.diff(s)
    n = s.size
    fwd = np.empty(n)
    fwd[0] = 0.0
    for i in range(n - 1):
        acc = math.sqrt(max(a_max**2 - kappa[i] ** 2 * fwd[i] ** 4, 0.0))
        fwd[i + 1] = min(v_lim[i + 1], math.sqrt(fwd[i] ** 2 + 2.0 * ds[i] * acc))
    bwd = np.empty(n)
    bwd[-1] = v_lim[-1]
    for i in range(n - 2, -1, -1):
        acc = math.sqrt(max(a_max**2 - kappa[i + 1] ** 2 * bwd[i + 1] ** 4, 0.0))
        bwd[i] = min(v_lim[i], math.sqrt(bwd[i + 1] ** 2 + 2.0 * ds[i] * acc))
    return np.minimum(fwd, bwd)


def variable_density_spiral(
    matrix: int,
    *,
    fov_m: float,
    gradients: GradientLimits,
    n_interleaves: int,
    acceleration: float = 1.0,
    calibration_fraction: float = 0.25,
    dwell_s: float = 2e-6,
    margin: float = 0.98,
    n_design: int = 40000,
) -> NonCartesianPattern:
    """Variable-density Archimedean spiral, time-optimal within gradient amplitude, slew and readout bandwidth.

    Design. Adjacent interleaves are ``u(r) / fov`` apart at k-space radius ``r``, with ``u = 1`` (Nyquist) inside
    the calibration radius ``k_c = calibration_fraction * k_max`` and rising linearly outside; the slope is bisected
    so that the effective acceleration (see :func:`spiral_effective_acceleration`) matches the request. The curve
    ``theta(r) = (2 pi fov / n) integral dr / u(r)`` is closed form. The traversal is the time-optimal ODE solution
    of Lustig et al. (IEEE TMI 2008) for ``|G| <= min(margin Gmax, 1 / (gamma_bar fov dwell))`` and
    ``|dG/dt| <= margin Smax`` (vector norms, so every axis is within its limit too), resampled on the gradient
    raster and closed by a slew-limited ramp to zero. The samples are ``k(t) = gamma_bar integral G dt`` at the ADC
    times; the density compensation is Meyer's ``|G| |sin(angle G - angle k)| u(|k|) / fov``.

    Parameters
    ----------
    matrix
        Base matrix N (k_max = N / (2 fov)).
    fov_m
        Field of view [m].
    gradients
        Gradient limits (``Scanner.preset("3T").gradients``).
    n_interleaves
        Interleaves (rotated copies, 2 pi / n apart).
    acceleration
        Requested effective acceleration R >= 1 (the same interleaves of a Nyquist spiral would need R times
        longer readouts; equivalently R times as many interleaves of this readout length).
    calibration_fraction
        Radius of the Nyquist-sampled centre as a fraction of k_max, in (0, 1].
    dwell_s
        ADC dwell [s]; the k-space speed is capped at one Nyquist step per dwell.
    margin
        Fraction of the amplitude and slew limits the design uses (discretisation headroom).
    n_design
        Points of the dense curve used by the ODE.

    Raises
    ------
    ConfigError
        For R < 1, R beyond what the calibration radius allows (``(1 / calibration_fraction) ** 2``), a
        calibration region larger than the matrix, or bad sizes.

    Examples
    --------
    >>> from hifield.hardware import Scanner
    >>> g = Scanner.preset("3T").gradients
    >>> p = variable_density_spiral(64, fov_m=0.2, gradients=g, n_interleaves=4, acceleration=2)
    >>> round(p.acceleration, 3), p.trajectory.kspace_m.shape[0]
    (2.0, 4)
    """
    _check_common(matrix, fov_m)
    if not isinstance(n_interleaves, (int, np.integer)) or n_interleaves < 1:
        raise ConfigError(f"number of spiral interleaves must be an integer >= 1; got {n_interleaves!r}")
    if not np.isfinite(acceleration) or acceleration < 1.0:
        raise ConfigError(f"acceleration must be a number >= 1; got {acceleration!r}")
    if not np.isfinite(calibration_fraction) or not 0.0 < calibration_fraction <= 1.0:
        raise ConfigError(
            f"spiral calibration radius of {calibration_fraction!r} k_max does not fit the matrix; "
            "use a fraction in (0, 1]"
        )
    if not 0.5 <= margin <= 1.0:
        raise ConfigError(f"design margin must be in [0.5, 1]; got {margin!r}")
    gam = GAMMA_BAR_HZ_PER_T
    dt = gradients.raster_time_s
    kmax = matrix / (2.0 * fov_m)
    kc = calibration_fraction * kmax
    slope = _solve_slope(float(acceleration), kmax, kc)
    r_eff = spiral_effective_acceleration(kmax, kc, slope)

    # the curve, parametrised by theta, in closed form
    c = 2.0 * math.pi * fov_m / n_interleaves
    theta_c = c * kc
    theta_max = theta_c + (c * math.log1p(slope * (kmax - kc)) / slope if slope > 0 else c * (kmax - kc))
    theta = np.linspace(0.0, theta_max, int(n_design))
    if slope > 0:
        r = np.where(theta <= theta_c, theta / c, kc + np.expm1(slope * (theta - theta_c) / c) / slope)
    else:
        r = theta / c
    u = _undersampling(r, kc, slope)
    dr = u / c
    d2r = np.where(r > kc, slope * u / c**2, 0.0)
    speed_theta = np.hypot(r, dr)  # |dC/dtheta|
    kappa = (r**2 + 2.0 * dr**2 - r * d2r) / speed_theta**3
    s = np.concatenate([[0.0], np.cumsum(0.5 * (speed_theta[1:] + speed_theta[:-1]) * np.diff(theta))])

    g_cap = min(margin * gradients.max_grad_t_per_m, 1.0 / (gam * fov_m * dwell_s))
    v = _velocity_profile(s, kappa, gam * g_cap, gam * margin * gradients.max_slew_t_per_m_per_s)
    t = np.concatenate([[0.0], np.cumsum(2.0 * np.diff(s) / (v[1:] + v[:-1]))])
    n_steps = math.ceil(t[-1] / dt - 1e-9)
    stretch = n_steps * dt / t[-1]  # slow down by <= one raster step so that the curve ends on the raster
    t_raster = np.arange(n_steps + 1) * dt / stretch
    th = np.interp(t_raster, t, theta)
    v_r = np.interp(t_raster, t, v) / stretch
    r_r = np.interp(th, theta, r)
    dr_r = np.interp(th, theta, dr)
    tangent = (dr_r + 1j * r_r) * np.exp(1j * th) / np.hypot(r_r, dr_r)
    g = v_r * tangent / gam
    g[0] = 0.0
    g_end = g[-1]
    n_down = max(1, math.ceil(abs(g_end) / (margin * gradients.max_slew_t_per_m_per_s * dt) - 1e-9))
    ramp = g_end * (1.0 - np.arange(1, n_down + 1) / n_down)
    g_all = np.concatenate([g, ramp])

    rot = np.exp(2j * np.pi * np.arange(n_interleaves) / n_interleaves)
    gc = rot[:, None] * g_all[None, :]
    grad = np.zeros((n_interleaves, g_all.size, 3))
    grad[:, :, 1] = gc.imag
    grad[:, :, 2] = gc.real
    n_adc = math.floor(n_steps * dt / dwell_s + 1e-9)
    adc = (np.arange(n_adc) + 0.5) * dwell_s
    k = k_from_gradient(grad, dt, adc)
    # density compensation (Meyer): |G| |sin(angle G - angle k)| u(|k|) / fov per dwell
    g_adc = np.stack(
        [np.interp(adc, np.arange(g_all.size) * dt, grad[i, :, a]) for i in range(n_interleaves) for a in (1, 2)]
    ).reshape(n_interleaves, 2, n_adc)
    kr = np.hypot(k[..., 1], k[..., 2])
    cross = np.abs(k[..., 2] * g_adc[:, 0] - k[..., 1] * g_adc[:, 1]) / np.maximum(kr, 1e-12)
    density = gam * dwell_s * cross * _undersampling(kr, kc, slope) / fov_m
    return NonCartesianPattern(
        name="spiral",
        trajectory=Trajectory(kspace_m=k, density=density.astype(np.float32)),
        gradient_t_per_m=grad,
        kz_gradient_t_per_m=np.zeros((1, g_all.size)),
        adc_times_s=adc,
        raster_time_s=dt,
        fov_m=float(fov_m),
        matrix=int(matrix),
        acceleration=r_eff,
        calibration_radius_m=kc if slope > 0 else kmax,
        requested_acceleration=float(acceleration),
    )
