"""Non-Cartesian patterns: container, k(t) from gradient waveforms, PSF, and golden-angle radial / stack-of-stars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from hifield.data import Trajectory
from hifield.errors import ConfigError, HardwareLimitError
from hifield.units import GAMMA_BAR_HZ_PER_T

GOLDEN_RATIO: float = (1.0 + math.sqrt(5.0)) / 2.0
"""The golden ratio phi."""

GOLDEN_ANGLE_RAD: float = math.pi / GOLDEN_RATIO
"""Golden-angle increment of full-diameter radial spokes, pi / phi = 111.246 deg [rad] (Winkelmann et al. 2007)."""


class GradientLimits(Protocol):
    """What a pattern design needs of a gradient system (``hifield.hardware.GradientSystem`` fits)."""

    @property
    def max_grad_t_per_m(self) -> float:
        """Maximum gradient amplitude per axis [T/m]."""

    @property
    def max_slew_t_per_m_per_s(self) -> float:
        """Maximum slew rate per axis [T/m/s]."""

    @property
    def raster_time_s(self) -> float:
        """Gradient raster time [s]."""


@dataclass(frozen=True)
class NonCartesianPattern:
    """A non-Cartesian acquisition: trajectory, the gradient waveforms it comes from, and its figures of merit.

    The in-plane waveform of shot ``i`` (spoke or interleaf) is ``gradient_t_per_m[i]`` (``(n_t, 3)``, (z, y, x),
    piecewise linear between raster points, starting and ending at 0); for a stack of stars the z column is replaced
    by ``kz_gradient_t_per_m[p]`` for partition ``p`` (see :meth:`waveform`).
    """

    name: str
    """Pattern kind, ``"radial"``, ``"stack-of-stars"`` or ``"spiral"``."""
    trajectory: Trajectory
    """Sample positions [1/m], ``(n_shots, n_samples, 3)`` (2D) or ``(n_partitions, n_shots, n_samples, 3)``."""
    gradient_t_per_m: NDArray[np.float64]
    """In-plane gradient waveforms [T/m], shape ``(n_shots, n_t, 3)`` ordered (z, y, x)."""
    kz_gradient_t_per_m: NDArray[np.float64]
    """Partition-encoding z gradient [T/m] per partition, shape ``(n_partitions, n_t)`` (zeros for 2D)."""
    adc_times_s: NDArray[np.float64]
    """Sample times from the start of the waveform [s], shape ``(n_samples,)``."""
    raster_time_s: float
    """Gradient raster time [s]."""
    fov_m: float
    """In-plane field of view [m]."""
    matrix: int
    """In-plane base matrix N (Nyquist grid N x N at ``fov_m``)."""
    acceleration: float
    """Effective acceleration against Nyquist sampling (radial: N pi / 2 spokes; spiral: interleaves)."""
    calibration_radius_m: float
    """Radius of the k-space disc sampled at or above Nyquist density [1/m]."""
    requested_acceleration: float = 1.0
    """The acceleration asked for."""
    seed: int | None = None
    """Seed (None: these patterns are deterministic)."""

    @property
    def n_shots(self) -> int:
        """Spokes or interleaves per partition."""
        return int(self.gradient_t_per_m.shape[0])

    @property
    def n_partitions(self) -> int:
        """kz partitions (1 for 2D)."""
        return int(self.kz_gradient_t_per_m.shape[0])

    @property
    def readout_s(self) -> float:
        """Duration of one shot's gradient waveform [s]."""
        return float((self.gradient_t_per_m.shape[1] - 1) * self.raster_time_s)

    def waveform(self, shot: int, partition: int = 0) -> NDArray[np.float64]:
        """Gradient waveform of one shot in one partition [T/m], shape ``(n_t, 3)`` (z, y, x)."""
        g = self.gradient_t_per_m[shot].copy()
        g[:, 0] = self.kz_gradient_t_per_m[partition]
        return g

    def psf(self, *, n: int | None = None, method: str = "nufft") -> NDArray[np.float64]:
        """Magnitude of the in-plane point-spread function (density-compensated), peak 1 at ``[n // 2, n // 2]``.

        The kz = 0 partition is used for a stack of stars (its partitions are Cartesian).

        Parameters
        ----------
        n
            Image grid n x n over the FOV (default: the base matrix).
        method
            ``"nufft"`` (finufft type 1) or ``"direct"`` (explicit sum, for small problems and checks).
        """
        k = self.trajectory.kspace_m
        w = self.trajectory.density
        if k.ndim == 4:
            p0 = int(np.argmin(np.abs(k[:, 0, 0, 0])))
            k = k[p0]
            w = None if w is None else w[p0]
        weights = np.ones(k.shape[:-1]) if w is None else np.asarray(w, dtype=np.float64)
        return point_spread_function(
            k.reshape(-1, 3)[:, 1:], weights.ravel(), fov_m=self.fov_m, n=n or self.matrix, method=method
        )

    def psf_peak_sidelobe(self, *, n: int | None = None, main_lobe_px: float = 2.0) -> float:
        """Largest PSF value farther than ``main_lobe_px`` pixels from the centre, relative to the peak.

        Fully sampled non-Cartesian patterns already show the ringing of their round k-space support (jinc side
        lobes of about 0.06 beyond 2 pixels); undersampling adds streaks or swirls on top.
        """
        psf = self.psf(n=n)
        return peak_sidelobe(psf, main_lobe_px=main_lobe_px)


def peak_sidelobe(psf: NDArray[np.float64], *, main_lobe_px: float = 2.0) -> float:
    """Largest value of a centred 2D ``psf`` outside a disc of ``main_lobe_px`` pixels, relative to the centre."""
    n0, n1 = psf.shape
    y = np.arange(n0)[:, None] - n0 // 2
    x = np.arange(n1)[None, :] - n1 // 2
    outside = np.hypot(y, x) > main_lobe_px
    return float(psf[outside].max() / psf[n0 // 2, n1 // 2])


def point_spread_function(
    k_yx_m: NDArray[np.float64],
    weights: NDArray[np.float64],
    *,
    fov_m: float,
    n: int,
    method: str = "nufft",
) -> NDArray[np.float64]:
    """|sum_j w_j exp(2 pi i k_j . r)| on an n x n grid of pixel ``fov_m / n`` centred at ``[n // 2, n // 2]``.

    Parameters
    ----------
    k_yx_m
        Sample positions (ky, kx) [1/m], shape ``(m, 2)``.
    weights
        Density-compensation weights, shape ``(m,)``.
    fov_m
        Field of view [m].
    n
        Grid size.
    method
        ``"nufft"`` (finufft, tolerance 1e-9) or ``"direct"`` (explicit sum).

    Returns
    -------
    ndarray
        Normalised magnitude, peak 1 at the centre, shape ``(n, n)``.

    Examples
    --------
    >>> k = np.array([[0.0, 0.0], [0.0, 10.0]])
    >>> psf = point_spread_function(k, np.ones(2), fov_m=0.1, n=4, method="direct")
    >>> round(float(psf[2, 2]), 6), round(float(psf[2, 3]), 6)
    (1.0, 0.707107)
    """
    k = np.asarray(k_yx_m, dtype=np.float64)
    w = np.asarray(weights, dtype=np.complex128)
    scale = 2.0 * np.pi * fov_m / n  # phase per pixel per (1/m)
    if method == "direct":
        pos = np.arange(n) - n // 2
        ey = np.exp(1j * scale * np.outer(pos, k[:, 0]))  # (n, m)
        ex = np.exp(1j * scale * np.outer(pos, k[:, 1]))
        img = (ey * w[None, :]) @ ex.T
    elif method == "nufft":
        import finufft

        # wrap phases into [-pi, pi): the PSF on the grid is periodic in k with period n / fov
        ky = np.mod(scale * k[:, 0] + np.pi, 2 * np.pi) - np.pi
        kx = np.mod(scale * k[:, 1] + np.pi, 2 * np.pi) - np.pi
        # modes run -(n // 2) .. so that index n // 2 is the image centre, as for the direct sum
        img = finufft.nufft2d1(ky, kx, w, (n, n), eps=1e-9, isign=1)
    else:
        raise ConfigError(f"unknown PSF method {method!r}; choose nufft or direct")
    mag = np.abs(img)
    return mag / mag[n // 2, n // 2]


def k_from_gradient(
    gradient_t_per_m: NDArray[np.float64], raster_time_s: float, times_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    """k(t) = gamma_bar * integral of a piecewise-linear gradient, evaluated exactly at arbitrary times.

    Parameters
    ----------
    gradient_t_per_m
        Gradient at the raster points ``t_n = n * raster_time_s`` [T/m], shape ``(..., n_t, 3)``.
    raster_time_s
        Raster time [s].
    times_s
        Times [s] at which to evaluate k, within ``[0, (n_t - 1) * raster_time_s]``, shape ``(m,)``.

    Returns
    -------
    ndarray
        k [1/m], shape ``(..., m, 3)``.

    Examples
    --------
    >>> g = np.zeros((3, 3)); g[1, 2] = 1e-3  # triangle on x, area 1e-3 T/m * 10 us
    >>> k = k_from_gradient(g, 1e-5, np.array([2e-5]))
    >>> round(float(k[0, 2]), 4)
    0.4258
    """
    g = np.asarray(gradient_t_per_m, dtype=np.float64)
    dt = raster_time_s
    seg = 0.5 * (g[..., 1:, :] + g[..., :-1, :]) * dt
    k_raster = np.concatenate([np.zeros_like(g[..., :1, :]), np.cumsum(seg, axis=-2)], axis=-2)
    t = np.asarray(times_s, dtype=np.float64)
    idx = np.clip(np.floor(t / dt + 1e-9).astype(np.int64), 0, g.shape[-2] - 2)
    tau = (t - idx * dt)[:, None]
    g0 = g[..., idx, :]
    g1 = g[..., idx + 1, :]
    k = k_raster[..., idx, :] + g0 * tau + 0.5 * (g1 - g0) * tau**2 / dt
    return GAMMA_BAR_HZ_PER_T * k


def trapezoid(area_t_s_per_m: float, gradients: GradientLimits) -> NDArray[np.float64]:
    """Shortest trapezoid (or triangle) of the given area on the gradient raster, within amplitude and slew limits.

    Returns the waveform at the raster points (starting and ending at 0) [T/m].

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> lim = SimpleNamespace(max_grad_t_per_m=0.04, max_slew_t_per_m_per_s=150.0, raster_time_s=1e-5)
    >>> w = trapezoid(1e-5, lim)
    >>> bool(abs(w.sum() * 1e-5 - 1e-5) < 1e-12), bool(np.abs(np.diff(w)).max() / 1e-5 <= 150.0)
    (True, True)
    """
    dt = gradients.raster_time_s
    gmax, smax = gradients.max_grad_t_per_m, gradients.max_slew_t_per_m_per_s
    a = abs(area_t_s_per_m)
    if a == 0.0:
        return np.zeros(2)
    if a <= gmax**2 / smax:
        n_ramp = max(1, math.ceil(math.sqrt(a / smax) / dt - 1e-9))
        n_flat = 0
    else:
        n_ramp = max(1, math.ceil(gmax / smax / dt - 1e-9))
        n_flat = math.ceil((a - gmax * n_ramp * dt) / gmax / dt - 1e-9)
    amp = a / ((n_ramp + n_flat) * dt)
    up = np.arange(n_ramp + 1) / n_ramp * amp
    wave = np.concatenate([up, np.full(n_flat, amp), up[::-1][1:]]) if n_flat else np.concatenate([up, up[::-1][1:]])
    return float(np.sign(area_t_s_per_m)) * wave


def _check_common(matrix: int, fov_m: float) -> None:
    if not isinstance(matrix, (int, np.integer)) or matrix < 4:
        raise ConfigError(f"base matrix must be an integer >= 4; got {matrix!r}")
    if not np.isfinite(fov_m) or fov_m <= 0:
        raise ConfigError(f"field of view must be a positive length [m]; got {fov_m!r}")


def golden_angle_radial(
    matrix: int,
    *,
    fov_m: float,
    gradients: GradientLimits,
    acceleration: float | None = None,
    n_spokes: int | None = None,
    n_partitions: int = 1,
    fov_z_m: float | None = None,
    dwell_s: float = 10e-6,
) -> NonCartesianPattern:
    """Golden-angle radial (2D) or stack-of-stars (3D) trajectory from its gradient waveforms.

    Spoke ``i`` runs through the centre at angle ``i * 111.246 deg`` (``pi / phi``), N samples spaced ``1 / fov``
    from ``-N/2`` to ``N/2 - 1``. Each spoke plays a shortest prephaser trapezoid (with the partition encoding on
    z for a stack of stars) and a readout ``G = 1 / (gamma_bar fov dwell)`` with slew-limited ramps; the sample
    positions are the integral of that waveform. Nyquist needs ``N pi / 2`` spokes, so the effective acceleration
    is ``N pi / (2 n_spokes)``, and the centre is Nyquist-sampled out to ``k_c = n_spokes / (pi fov)``.

    Parameters
    ----------
    matrix
        Base matrix N (samples per spoke; Nyquist grid N x N).
    fov_m
        In-plane field of view [m].
    gradients
        Gradient limits (``Scanner.preset("3T").gradients``).
    acceleration
        Requested acceleration (gives ``n_spokes = round(N pi / (2 R))``); or give ``n_spokes``.
    n_spokes
        Spokes per partition.
    n_partitions
        kz partitions of a stack of stars (1: 2D radial).
    fov_z_m
        Slab thickness of a stack of stars [m].
    dwell_s
        ADC dwell time [s] (readout bandwidth ``1 / dwell``). Every partition repeats the same angles.

    Raises
    ------
    ConfigError
        For R < 1, R beyond one spoke, or bad sizes.
    HardwareLimitError
        If the readout gradient exceeds the amplitude limit (use a longer dwell or larger FOV).

    Examples
    --------
    >>> from hifield.hardware import Scanner
    >>> p = golden_angle_radial(64, fov_m=0.2, gradients=Scanner.preset("3T").gradients, n_spokes=50)
    >>> p.trajectory.kspace_m.shape, round(p.acceleration, 3)
    ((50, 64, 3), 2.011)
    """
    _check_common(matrix, fov_m)
    n_nyquist = matrix * math.pi / 2.0
    if (acceleration is None) == (n_spokes is None):
        raise ConfigError("give exactly one of acceleration or n_spokes for a radial pattern")
    if acceleration is not None:
        if not np.isfinite(acceleration) or acceleration < 1.0:
            raise ConfigError(f"acceleration must be a number >= 1; got {acceleration!r}")
        n_spokes = round(n_nyquist / acceleration)
        if n_spokes < 1:
            raise ConfigError(
                f"acceleration {acceleration:g} leaves no spoke for a {matrix}-point radial scan; "
                f"use R <= {n_nyquist:.4g}"
            )
    assert n_spokes is not None
    if not isinstance(n_spokes, (int, np.integer)) or n_spokes < 1:
        raise ConfigError(f"number of spokes must be an integer >= 1; got {n_spokes!r}")
    if not isinstance(n_partitions, (int, np.integer)) or n_partitions < 1:
        raise ConfigError(f"number of partitions must be an integer >= 1; got {n_partitions!r}")
    if n_partitions > 1 and (fov_z_m is None or fov_z_m <= 0):
        raise ConfigError(f"a stack of stars needs a positive slab thickness fov_z_m [m]; got {fov_z_m!r}")
    dt = gradients.raster_time_s
    dk = 1.0 / fov_m
    g_ro = dk / (GAMMA_BAR_HZ_PER_T * dwell_s)
    if g_ro > gradients.max_grad_t_per_m:
        raise HardwareLimitError(
            f"radial readout gradient {g_ro * 1e3:.1f} mT/m exceeds the {gradients.max_grad_t_per_m * 1e3:.1f} mT/m "
            f"limit; use a dwell time >= {dk / (GAMMA_BAR_HZ_PER_T * gradients.max_grad_t_per_m) * 1e6:.2f} us"
        )
    n_ramp = max(1, math.ceil(g_ro / gradients.max_slew_t_per_m_per_s / dt - 1e-9))
    n_flat = math.ceil(matrix * dwell_s / dt - 1e-9)
    ramp = np.arange(n_ramp + 1) / n_ramp * g_ro
    readout = np.concatenate([ramp, np.full(n_flat - 1, g_ro), ramp[::-1]])
    # k at the start of the flat top must be (-N/2 - 1/2) dk so that sample j (centre of dwell j) sits at (j - N/2) dk
    area_ramp = 0.5 * g_ro * n_ramp * dt
    area_pre = (-(matrix / 2 + 0.5) * dk) / GAMMA_BAR_HZ_PER_T - area_ramp
    kz_max = (n_partitions // 2) / fov_z_m if n_partitions > 1 and fov_z_m else 0.0
    pre_shape = trapezoid(max(abs(area_pre), kz_max / GAMMA_BAR_HZ_PER_T), gradients)
    pre_shape = pre_shape / max(pre_shape.sum() * dt, 1e-30)  # unit area
    logical = np.concatenate([pre_shape[:-1] * area_pre, readout])
    t_flat0 = (pre_shape.size - 1 + n_ramp) * dt
    adc = t_flat0 + (np.arange(matrix) + 0.5) * dwell_s

    angles = np.arange(n_spokes) * GOLDEN_ANGLE_RAD
    grad = np.zeros((n_spokes, logical.size, 3))
    grad[:, :, 1] = np.sin(angles)[:, None] * logical[None, :]
    grad[:, :, 2] = np.cos(angles)[:, None] * logical[None, :]
    kz_grad = np.zeros((n_partitions, logical.size))
    if n_partitions > 1 and fov_z_m is not None:
        kz = (np.arange(n_partitions) - n_partitions // 2) / fov_z_m
        kz_grad[:, : pre_shape.size - 1] = (kz / GAMMA_BAR_HZ_PER_T)[:, None] * pre_shape[None, :-1]
    if n_partitions == 1:
        k = k_from_gradient(grad, dt, adc)
        radius = np.hypot(k[..., 1], k[..., 2])
        density = _radial_density(radius, dk, n_spokes)
        name = "radial"
    else:
        shots = []
        for p in range(n_partitions):
            g = grad.copy()
            g[:, :, 0] = kz_grad[p][None, :]
            shots.append(k_from_gradient(g, dt, adc))
        k = np.stack(shots)
        radius = np.hypot(k[..., 1], k[..., 2])
        density = _radial_density(radius, dk, n_spokes)
        name = "stack-of-stars"
    return NonCartesianPattern(
        name=name,
        trajectory=Trajectory(kspace_m=k, density=density.astype(np.float32)),
        gradient_t_per_m=grad,
        kz_gradient_t_per_m=kz_grad,
        adc_times_s=adc,
        raster_time_s=dt,
        fov_m=float(fov_m),
        matrix=int(matrix),
        acceleration=n_nyquist / n_spokes,
        calibration_radius_m=min(n_spokes / (math.pi * fov_m), matrix / (2.0 * fov_m)),
        requested_acceleration=float(acceleration) if acceleration is not None else n_nyquist / n_spokes,
    )


def _radial_density(radius_m: NDArray[np.float64], dk: float, n_spokes: int) -> NDArray[np.float64]:
    """Ram-Lak density compensation of diameter spokes: area per sample ``pi |k| dk / n_spokes`` (centre disc)."""
    centre = math.pi * dk**2 / (4.0 * n_spokes)  # the disc of radius dk / 2 shared by all spokes
    return np.maximum(math.pi * radius_m * dk / n_spokes, centre)
