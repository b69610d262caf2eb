"""Receive coil arrays: circular loops on a helmet or cylinder, Biot-Savart sensitivities, noise covariance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.errors import check_memory as _require_memory

MU0_T_M_PER_A: float = 4e-7 * math.pi
"""Vacuum permeability [T m / A] (the pre-2019 exact value; the difference is 1e-10 relative)."""

_WIRE_RADIUS_M: float = 1e-3
"""Minimum distance from a conductor at which the field is evaluated [m] (the wire's radius)."""

_GOLDEN_ANGLE_RAD: float = math.pi * (3.0 - math.sqrt(5.0))

_LAYOUTS = ("helmet", "cylinder")


def elliptic_k_e(m: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Complete elliptic integrals of the first and second kind, K(m) and E(m) (parameter m = k^2, 0 <= m < 1).

    By the arithmetic-geometric mean (Abramowitz & Stegun 17.6.1-4): ``a0 = 1, b0 = sqrt(1 - m), c0 = sqrt(m)``;
    ``K = pi / (2 a_N)`` and ``E = K (1 - sum_n 2^(n-1) c_n^2)``. Converges quadratically (at most about ten steps
    for m up to 1 - 1e-15) and matches ``scipy.special.ellipk``/``ellipe`` to round-off, in numpy alone: importing
    scipy.special costs about 0.2 s of every command.

    Examples
    --------
    >>> k, e = elliptic_k_e(np.array([0.0, 0.5]))
    >>> np.round(k, 6).tolist(), np.round(e, 6).tolist()
    ([1.570796, 1.854075], [1.570796, 1.350644])
    """
    m = np.asarray(m, dtype=np.float64)
    a = np.ones_like(m)
    b = np.sqrt(1.0 - m)
    c2 = m.copy()
    total = 0.5 * c2  # sum of 2^(n-1) c_n^2, n = 0
    weight = 0.5
    for _ in range(40):
        if not np.any(np.abs(a - b) > 1e-15 * a):
            break
        a, b, c = 0.5 * (a + b), np.sqrt(a * b), 0.5 * (a - b)
        weight *= 2.0
        total = total + weight * c * c
    k = np.pi / (2.0 * a)
    return k, k * (1.0 - total)


def loop_field(
    points_m: NDArray[np.float64],
    *,
    centre_m: NDArray[np.float64],
    normal: NDArray[np.float64],
    radius_m: float,
    current_a: float = 1.0,
) -> NDArray[np.float64]:
    """Quasi-static magnetic field of a circular current loop (closed-form Biot-Savart).

    Uses the complete elliptic integrals K(m) and E(m) (:func:`elliptic_k_e`, parameter m),
    see physics-safety.md §3.3. The field is evaluated no closer than 1 mm to the wire.

    Parameters
    ----------
    points_m
        Evaluation points, shape ``(..., 3)`` in (z, y, x) order [m].
    centre_m
        Loop centre, shape ``(3,)`` (z, y, x) [m].
    normal
        Loop axis, shape ``(3,)``; normalised here. A positive current circulates right-handed about it.
    radius_m
        Loop radius [m].
    current_a
        Loop current [A].

    Returns
    -------
    NDArray[np.float64]
        Magnetic flux density, shape ``(..., 3)`` (z, y, x) [T].

    Examples
    --------
    >>> b = loop_field(np.array([[0.05, 0.0, 0.0]]), centre_m=np.zeros(3), normal=np.array([1.0, 0, 0]), radius_m=0.05)
    >>> expected = MU0_T_M_PER_A * 0.05**2 / (2 * (2 * 0.05**2) ** 1.5)
    >>> bool(np.isclose(b[0, 0], expected, rtol=1e-9))
    True
    """
    pts = np.asarray(points_m, dtype=np.float64)
    b = _loop_field_zyx(pts[..., 0], pts[..., 1], pts[..., 2], centre_m, normal, radius_m, current_a)
    return np.stack(b, axis=-1)


def _loop_field_zyx(
    pz: NDArray[np.float64],
    py: NDArray[np.float64],
    px: NDArray[np.float64],
    centre_m: NDArray[np.float64],
    normal: NDArray[np.float64],
    radius_m: float,
    current_a: float = 1.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(Bz, By, Bx) [T] of a loop at points given per component (same shapes); see :func:`loop_field`."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    c = np.asarray(centre_m, dtype=np.float64)
    dz, dy, dx = pz - c[0], py - c[1], px - c[2]
    z = dz * n[0] + dy * n[1] + dx * n[2]
    rz, ry, rx = dz - z * n[0], dy - z * n[1], dx - z * n[2]
    rho2 = rz * rz + ry * ry + rx * rx
    rho = np.sqrt(rho2)
    a = float(radius_m)
    z2 = z * z
    # distance from the wire, clamped to the wire radius to avoid the 1/r singularity on the conductor
    wire_d2 = np.maximum((a - rho) ** 2 + z2, _WIRE_RADIUS_M**2)
    outer2 = (a + rho) ** 2 + z2
    m = np.clip(4.0 * a * rho / outer2, 0.0, 1.0 - 1e-15)
    k_m, e_m = elliptic_k_e(m)
    pref = (MU0_T_M_PER_A * current_a / (2.0 * math.pi)) / np.sqrt(outer2)
    bz = pref * (k_m + (a * a - rho2 - z2) / wire_d2 * e_m)
    small = rho < 1e-9 * max(a, 1e-12)
    safe_rho = np.where(small, 1.0, rho)
    # B_rho / rho (the radial unit vector is r_vec / rho)
    brho_over_rho = np.where(
        small, 0.0, pref * z / (safe_rho * safe_rho) * (-k_m + (a * a + rho2 + z2) / wire_d2 * e_m)
    )
    return (
        bz * n[0] + brho_over_rho * rz,
        bz * n[1] + brho_over_rho * ry,
        bz * n[2] + brho_over_rho * rx,
    )


def _check_memory(n_bytes: float, *, what: str) -> None:
    _require_memory(n_bytes, what=what, hint="use fewer coils or a smaller grid")


def _cap_points(n: int, cos_min: float, cos_max: float) -> NDArray[np.float64]:
    """Equal-area Fibonacci points on the unit-sphere band cos(theta) in [cos_min, cos_max], (z, y, x)."""
    k = np.arange(n, dtype=np.float64)
    cos_t = cos_max - (cos_max - cos_min) * (k + 0.5) / n
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    phi = k * _GOLDEN_ANGLE_RAD
    return np.stack([cos_t, sin_t * np.sin(phi), sin_t * np.cos(phi)], axis=-1)


def checked_grid(
    affine: NDArray[np.floating], shape_zyx: tuple[int, ...]
) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """A grid's affine as float64 4 x 4 and its shape as three ints, or :class:`~hifield.errors.ConfigError`.

    Examples
    --------
    >>> aff, shape = checked_grid(np.eye(4), (1, 2, 3))
    >>> aff.dtype, shape
    (dtype('float64'), (1, 2, 3))
    """
    aff = np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4):
        raise ConfigError(f"affine must be 4 x 4; got {aff.shape}")
    shape = tuple(int(s) for s in shape_zyx)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"shape_zyx must be three positive sizes (z, y, x); got {shape_zyx}")
    return aff, (shape[0], shape[1], shape[2])


@dataclass(frozen=True, eq=False)
class CoilArray:
    """A receive array of circular loop coils around the head.

    Positions are in hifield's LPS patient frame as (z, y, x) [m]; B0 points along +z.

    Examples
    --------
    >>> coils = CoilArray.head_array(16, b0_t=3.0)
    >>> coils.n_coils, coils.noise_covariance.shape
    (16, (16, 16))
    """

    centres_m: NDArray[np.float64]
    """Loop centres, shape ``(coil, 3)`` (z, y, x) [m]."""
    normals: NDArray[np.float64]
    """Unit loop axes, shape ``(coil, 3)`` (z, y, x), pointing towards the array centre."""
    loop_radius_m: float
    """Radius of every loop [m]."""
    noise_covariance: NDArray[np.complex128]
    """Receiver noise covariance, shape ``(coil, coil)``, Hermitian positive definite, diagonal ≈ 1 (relative)."""
    phases_rad: NDArray[np.float64]
    """Constant phase of each receive chain (cable, preamplifier) [rad], shape ``(coil,)``."""
    b0_t: float = 3.0
    """Main field the array is tuned to [T]."""
    centre_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Array centre (z, y, x) [m], where the root-sum-of-squares sensitivity is normalised to 1."""
    name: str = field(default="head array")
    """Human-readable description."""

    def __post_init__(self) -> None:
        centres = np.asarray(self.centres_m, dtype=np.float64)
        normals = np.asarray(self.normals, dtype=np.float64)
        if centres.ndim != 2 or centres.shape[1] != 3 or centres.shape[0] < 1:
            raise ConfigError(f"coil centres must have shape (coil, 3); got {centres.shape}")
        if normals.shape != centres.shape:
            raise ConfigError(f"coil normals shape {normals.shape} must match centres {centres.shape}")
        n = centres.shape[0]
        if np.asarray(self.noise_covariance).shape != (n, n):
            raise ConfigError(f"noise covariance must be ({n}, {n}); got {np.asarray(self.noise_covariance).shape}")
        if np.asarray(self.phases_rad).shape != (n,):
            raise ConfigError(f"coil phases must have shape ({n},); got {np.asarray(self.phases_rad).shape}")
        if not self.loop_radius_m > 0:
            raise ConfigError(f"loop radius must be positive; got {self.loop_radius_m} m")
        norms = np.linalg.norm(normals, axis=1)
        if np.any(norms == 0):
            raise ConfigError("coil normals must be non-zero vectors; give each loop an axis")
        object.__setattr__(self, "centres_m", centres)
        object.__setattr__(self, "normals", normals / norms[:, None])
        object.__setattr__(self, "noise_covariance", np.asarray(self.noise_covariance, dtype=np.complex128))
        object.__setattr__(self, "phases_rad", np.asarray(self.phases_rad, dtype=np.float64))

    @property
    def n_coils(self) -> int:
        """Number of receive channels."""
        return int(self.centres_m.shape[0])

    def __repr__(self) -> str:
        return (
            f"CoilArray(name={self.name!r}, n_coils={self.n_coils}, loop_radius_m={self.loop_radius_m:.4f}, "
            f"b0_t={self.b0_t})"
        )

    @classmethod
    def head_array(
        cls,
        n_coils: int,
        *,
        b0_t: float,
        radius_m: float = 0.13,
        layout: str = "helmet",
        loop_radius_m: float | None = None,
        coupling: float = 0.2,
        seed: int = 0,
    ) -> CoilArray:
        """A head receive array of ``n_coils`` loops spread evenly on a helmet or a cylinder.

        ``"helmet"`` places the loops on a spherical cap of radius ``radius_m`` around the array centre, from the
        vertex down to 25° below the equator (an equal-area Fibonacci lattice); ``"cylinder"`` places them on a
        cylinder of that radius, 0.20 m long, along z. Each loop faces the centre, and the loop radius fills the
        area per coil with a little overlap unless ``loop_radius_m`` is given.

        The noise covariance is ``Ψ = S ((1 - c) I + c G) Sᴴ`` with ``G_ij = exp(-d_ij² / (2 l²))`` a Gaussian
        kernel of the loop distances (positive definite), ``l`` chosen so that ``G = 0.5`` at the typical
        nearest-neighbour distance, hence nearest neighbours couple by ≈ ``coupling / 2`` (default 10 %),
        and ``S = diag(σ_i exp(i θ_i))`` with gains σ_i within ±5 % of 1 and the receive-chain phases θ_i
        (seeded).

        Parameters
        ----------
        n_coils
            Number of loops (>= 1).
        b0_t
            Main field [T].
        radius_m
            Helmet (sphere) or cylinder radius [m].
        layout
            ``"helmet"`` or ``"cylinder"``.
        loop_radius_m
            Radius of each loop [m]; default from the area per coil.
        coupling
            Noise correlation at zero distance of the coupling kernel, in [0, 1).
        seed
            Seed of the gains and phases of the receive chains.

        Raises
        ------
        ConfigError
            For fewer than one coil, an unknown layout or out-of-range sizes.
        """
        if int(n_coils) != n_coils or n_coils < 1:
            raise ConfigError(f"number of receive coils must be an integer >= 1; got {n_coils}")
        n = int(n_coils)
        if layout not in _LAYOUTS:
            raise ConfigError(f"unknown coil layout {layout!r}; choose one of {', '.join(_LAYOUTS)}")
        if not 0.02 <= radius_m <= 1.0:
            raise ConfigError(f"array radius {radius_m} m is outside 0.02-1.0 m; give a head-sized radius")
        if not 0.0 <= coupling < 1.0:
            raise ConfigError(f"coupling {coupling} is outside [0, 1); typical neighbour coupling is 0.05-0.2")
        if layout == "helmet":
            cos_low = math.cos(math.radians(115.0))
            unit = _cap_points(n, cos_low, 1.0)
            centres = radius_m * unit
            normals = -unit
            area = 2.0 * math.pi * radius_m**2 * (1.0 - cos_low)
        else:
            length = 0.20
            k = np.arange(n, dtype=np.float64)
            zc = length * ((k + 0.5) / n - 0.5)
            phi = k * _GOLDEN_ANGLE_RAD
            centres = np.stack([zc, radius_m * np.sin(phi), radius_m * np.cos(phi)], axis=-1)
            normals = -np.stack([np.zeros(n), np.sin(phi), np.cos(phi)], axis=-1)
            area = 2.0 * math.pi * radius_m * length
        a = loop_radius_m if loop_radius_m is not None else min(1.1 * math.sqrt(area / n / math.pi), 0.6 * radius_m)
        if not a > 0:
            raise ConfigError(f"loop radius must be positive; got {a} m")

        rng = np.random.default_rng(seed)
        gains = 1.0 + 0.05 * (2.0 * rng.random(n) - 1.0)
        phases = rng.uniform(-math.pi, math.pi, n)
        if n == 1:
            kernel = np.ones((1, 1))
        else:
            dist = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)
            nearest = np.min(dist + np.diag(np.full(n, np.inf)), axis=1)
            length_scale = float(np.median(nearest)) / math.sqrt(2.0 * math.log(2.0))
            kernel = np.exp(-(dist**2) / (2.0 * length_scale**2))
        corr = (1.0 - coupling) * np.eye(n) + coupling * kernel
        s = gains * np.exp(1j * phases)
        psi = s[:, None] * corr * np.conj(s)[None, :]
        psi = 0.5 * (psi + psi.conj().T)
        return cls(
            centres_m=centres,
            normals=normals,
            loop_radius_m=float(a),
            noise_covariance=psi.astype(np.complex128),
            phases_rad=phases,
            b0_t=float(b0_t),
            name=f"{n}-channel {layout} head array",
        )

    def _raw_sensitivities(
        self, pz: NDArray[np.float64], py: NDArray[np.float64], px: NDArray[np.float64]
    ) -> NDArray[np.complex128]:
        """Un-normalised B1- sensitivities at points given per component, shape ``(coil, ...)``."""
        out = np.empty((self.n_coils, *np.shape(pz)), dtype=np.complex128)
        for c in range(self.n_coils):
            _, by, bx = _loop_field_zyx(pz, py, px, self.centres_m[c], self.normals[c], self.loop_radius_m)
            # B0 along z: the transverse components are x and y. Receive sensitivity B1- = ((Bx - i By) / 2)*
            # (Hoult 2000), which for a quasi-static (real) field equals (Bx + i By) / 2.
            out[c] = np.conj(0.5 * (bx - 1j * by)) * np.exp(1j * self.phases_rad[c])
        return out

    def sensitivities(self, affine: NDArray[np.float64], shape_zyx: tuple[int, int, int]) -> NDArray[np.complex64]:
        """Receive sensitivities (B1-) of each coil at the voxel centres of a grid.

        Quasi-static Biot-Savart of each loop, transverse part ``((Bx - i By)/2)*`` times the receive-chain phase,
        scaled so that the root-sum-of-squares over coils is 1 at :attr:`centre_m`.

        Parameters
        ----------
        affine
            4 x 4 affine mapping index ``(z, y, x, 1)`` to LPS ``(z, y, x, 1)`` [m].
        shape_zyx
            Grid size ``(n_z, n_y, n_x)``.

        Returns
        -------
        NDArray[np.complex64]
            Sensitivities, shape ``(coil, z, y, x)`` (relative units).

        Examples
        --------
        >>> from hifield.data.geometry import centred_affine
        >>> coils = CoilArray.head_array(8, b0_t=3.0)
        >>> s = coils.sensitivities(centred_affine((1, 64, 64), (0.005, 0.004, 0.004)), (1, 64, 64))
        >>> s.shape, s.dtype
        ((8, 1, 64, 64), dtype('complex64'))
        >>> round(float(np.sqrt((np.abs(s[:, 0, 32, 32]) ** 2).sum())), 3)
        1.0
        """
        aff, shape = checked_grid(affine, shape_zyx)
        n_bytes = 8.0 * self.n_coils * float(np.prod(shape)) + 24.0 * 6 * float(np.prod(shape))
        _check_memory(n_bytes, what=f"sensitivities of {self.n_coils} coils on a {shape} grid")
        # a scan asks for the same grid several times (reference, accelerated scan, prescan): keep the last one
        key = (aff.tobytes(), shape)
        cached = self.__dict__.get("_sensitivity_cache")
        if cached is not None and cached[0] == key:
            return cached[1].copy()
        result = self._compute_sensitivities(aff, shape)
        object.__setattr__(self, "_sensitivity_cache", (key, result))
        return result.copy()

    def _compute_sensitivities(self, aff: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.complex64]:
        """Biot-Savart sensitivities on the grid (see :meth:`sensitivities`)."""
        iz, iy, ix = (np.arange(s, dtype=np.float64) for s in shape)
        # positions = A[:3,:3] @ index + A[:3,3], per component, by broadcasting per axis
        grid = np.ix_(iz, iy, ix)
        pz, py, px = (
            np.broadcast_to(aff[r, 0] * grid[0] + aff[r, 1] * grid[1] + aff[r, 2] * grid[2] + aff[r, 3], shape)
            for r in range(3)
        )
        sens = self._raw_sensitivities(pz, py, px)
        cz, cy, cx = (np.asarray([v], dtype=np.float64) for v in self.centre_m)
        ref = self._raw_sensitivities(cz, cy, cx)[:, 0]
        rss = float(np.sqrt(np.sum(np.abs(ref) ** 2)))
        if rss == 0.0:
            raise ConfigError("coil array has zero sensitivity at its centre; tilt or move the loops")
        return (sens / rss).astype(np.complex64)
