"""Field maps of the scanner: B0 from susceptibility, B1+ transmit maps and RF shimming, SENSE g-factor, SNR vs B0.

Models (physics-safety.md §1.4 and §3.3):

* **B0 from susceptibility** (Salomir 2003; Marques & Bowtell 2005): ``ΔBz(k)/B0 = χ(k) (1/3 - (k·b̂)²/|k|²)``
  with zero padding (x2) against wrap-around and the k = 0 term set to 0 (Lorentz sphere correction, so a
  uniform sphere has ΔB = 0 inside).
* **Single-channel (quadrature) B1+ pattern vs field**, phenomenological (Vaughan 2001, Van de Moortele 2005):
  ``|B1+|(r)/B1nom = 1 + A(B0) (1 - 2 ρ²/R²)`` with ρ the distance from the head's axis, R the head radius and
  ``A`` = 0, 0.05, 0.20, 0.30, 0.45 at 0, 1.5, 3, 5, 7 T (linear in between, linear beyond 7 T): central
  brightening that grows with field. The phase is ``-π A ρ²/R²``.
* **Multi-channel transmit**: each element is a line current (stripline/dipole) parallel to z at radius
  ``radius_m`` in a homogeneous lossy medium with the head's average permittivity and conductivity at the Larmor
  frequency. Its field is the exact 2D Green's function, ``B_φ = (μ0 I k / 4i) H1⁽²⁾(k d)``, with complex
  ``k = ω sqrt(μ0 ε0 (εr - i σ/(ω ε0)))``, and ``B1+ = (Bx + i By)/2``. This captures the wavelength and
  attenuation effects that make UHF transmit fields inhomogeneous; it ignores the air gap and the head's shape.
* **RF shimming**: magnitude least squares (variable exchange) followed by direct minimisation of the
  coefficient of variation of |B1+| over a mask (multi-start L-BFGS).
* **SENSE g-factor** (Pruessmann 1999): per aliasing group ``g = sqrt([(Sᴴ Ψ⁻¹ S)⁻¹]_ii [Sᴴ Ψ⁻¹ S]_ii)``.
* **SNR vs B0**: ``SNR ∝ (B0 / 3 T)^β``, β = 1.65 for head arrays (Pohmann, Speck & Scheffler 2016), 1.0 for body.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hifield.backend import single_threaded_blas
from hifield.errors import ConfigError
from hifield.hardware.coils import checked_grid
from hifield.units import GAMMA_BAR_HZ_PER_T

EPSILON0_F_PER_M: float = 8.8541878128e-12
"""Vacuum permittivity [F/m]."""
MU0_H_PER_M: float = 4e-7 * math.pi
"""Vacuum permeability [H/m]."""

_B1_FIELDS_T = (0.0, 1.5, 3.0, 5.0, 7.0)
_B1_AMPLITUDE = (0.0, 0.05, 0.20, 0.30, 0.45)

# Head-average dielectric properties (mean of grey and white matter, Gabriel 1996 / IT'IS) [verify per frequency]
_DIELECTRIC_MHZ = (64.0, 128.0, 213.0, 298.0, 500.0)
_DIELECTRIC_EPS_R = (80.0, 63.0, 56.0, 52.0, 48.0)
_DIELECTRIC_SIGMA = (0.50, 0.55, 0.60, 0.65, 0.75)


def _positions(affine: NDArray[np.float64], shape_zyx: tuple[int, int, int]) -> NDArray[np.float64]:
    aff, shape = checked_grid(affine, shape_zyx)
    idx = np.stack(np.meshgrid(*(np.arange(s, dtype=np.float64) for s in shape), indexing="ij"), axis=-1)
    return idx @ aff[:3, :3].T + aff[:3, 3]


# ---------------------------------------------------------------------------------------------------------------
# B0
# ---------------------------------------------------------------------------------------------------------------
def dipole_kernel(
    shape_zyx: tuple[int, int, int],
    voxel_size_m: tuple[float, float, float],
    *,
    b0_direction: tuple[float, float, float] = (1.0, 0.0, 0.0),
) -> NDArray[np.float64]:
    """Fourier dipole kernel ``D(k) = 1/3 - (k·b̂)²/|k|²`` on an FFT grid (unshifted), ``D(0) = 0``.

    Parameters
    ----------
    shape_zyx
        Grid size.
    voxel_size_m
        Voxel size (dz, dy, dx) [m].
    b0_direction
        Direction of B0 (z, y, x); default along z (superior).
    """
    b = np.asarray(b0_direction, dtype=np.float64)
    b = b / np.linalg.norm(b)
    ks = [np.fft.fftfreq(n, d) for n, d in zip(shape_zyx, voxel_size_m, strict=True)]
    kz, ky, kx = np.meshgrid(*ks, indexing="ij", sparse=True)
    k2 = kz**2 + ky**2 + kx**2
    kb = kz * b[0] + ky * b[1] + kx * b[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1.0 / 3.0 - kb**2 / k2
    d[0, 0, 0] = 0.0
    return np.asarray(d, dtype=np.float64)


def field_from_susceptibility(
    chi_ppm: NDArray[np.floating],
    voxel_size_m: tuple[float, float, float],
    *,
    b0_direction: tuple[float, float, float] = (1.0, 0.0, 0.0),
    padding: int = 2,
) -> NDArray[np.float32]:
    """Relative field perturbation ``ΔBz / B0`` [ppm] of a susceptibility map (Fourier dipole kernel).

    Parameters
    ----------
    chi_ppm
        Volume susceptibility relative to the surroundings [ppm, SI], shape ``(z, y, x)``.
    voxel_size_m
        Voxel size (dz, dy, dx) [m].
    b0_direction
        Direction of B0 in (z, y, x).
    padding
        Zero-padding factor per axis against periodic wrap-around (>= 1).

    Returns
    -------
    NDArray[np.float32]
        ``ΔBz/B0`` [ppm], shape ``(z, y, x)``; multiply by ``γ̄ B0 1e-6`` for Hz (:func:`off_resonance_hz`).

    Examples
    --------
    >>> chi = np.zeros((32, 32, 32)); chi[12:20, 12:20, 12:20] = 1.0
    >>> f = field_from_susceptibility(chi, (1e-3, 1e-3, 1e-3))
    >>> f.shape, bool(f[16, 16, 16] < 0.3)
    ((32, 32, 32), True)
    """
    chi = np.asarray(chi_ppm, dtype=np.float64)
    if chi.ndim != 3:
        raise ConfigError(f"susceptibility map must be 3D (z, y, x); got shape {chi.shape}")
    if int(padding) != padding or padding < 1:
        raise ConfigError(f"padding must be an integer >= 1; got {padding}")
    padded_shape = tuple(int(padding) * s for s in chi.shape)
    n_bytes = 16.0 * float(np.prod(padded_shape)) * 3
    if n_bytes > 8 * 1024**3:
        raise ConfigError(f"dipole convolution needs ~{n_bytes / 1024**3:.0f} GiB; lower the grid or the padding")
    buf = np.zeros(padded_shape, dtype=np.float64)
    buf[tuple(slice(0, s) for s in chi.shape)] = chi
    kernel = dipole_kernel(padded_shape, voxel_size_m, b0_direction=b0_direction)
    out = np.fft.ifftn(np.fft.fftn(buf) * kernel).real
    return out[tuple(slice(0, s) for s in chi.shape)].astype(np.float32)


def off_resonance_hz(field_ppm: NDArray[np.floating], b0_t: float) -> NDArray[np.float32]:
    """Convert a relative field map [ppm] to an off-resonance frequency map [Hz] at ``b0_t`` (``γ̄ B0 ppm 1e-6``)."""
    return (np.asarray(field_ppm, dtype=np.float64) * 1e-6 * GAMMA_BAR_HZ_PER_T * b0_t).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# B1+
# ---------------------------------------------------------------------------------------------------------------
def b1_inhomogeneity_amplitude(b0_t: float) -> float:
    """Central-brightening amplitude ``A(B0)`` of the phenomenological B1+ model (0.2 at 3 T, 0.45 at 7 T)."""
    if not 0 <= b0_t <= 11.7:
        raise ConfigError(f"field strength {b0_t} T is outside 0-11.7 T")
    if b0_t <= _B1_FIELDS_T[-1]:
        return float(np.interp(b0_t, _B1_FIELDS_T, _B1_AMPLITUDE))
    slope = (_B1_AMPLITUDE[-1] - _B1_AMPLITUDE[-2]) / (_B1_FIELDS_T[-1] - _B1_FIELDS_T[-2])
    return float(_B1_AMPLITUDE[-1] + slope * (b0_t - _B1_FIELDS_T[-1]))


def b1_plus_map(
    affine: NDArray[np.float64],
    shape_zyx: tuple[int, int, int],
    *,
    b0_t: float,
    head_radius_m: float = 0.09,
    centre_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
    floor: float = 0.05,
) -> NDArray[np.complex64]:
    """Relative B1+ of a single-channel (quadrature) head transmit coil: central brightening growing with B0.

    ``B1+/B1nom = (1 + A(B0) (1 - 2 ρ²/R²)) exp(-i π A ρ²/R²)``, ρ the distance from the axis through
    ``centre_m`` along z; magnitudes are floored at ``floor``. ``abs()`` of it is the flip-angle scale
    (e.g. :attr:`hifield.phantom.Phantom.b1_scale`).

    Examples
    --------
    >>> from hifield.data.geometry import centred_affine
    >>> m = b1_plus_map(centred_affine((1, 64, 64), (0.005, 0.003, 0.003)), (1, 64, 64), b0_t=7.0)
    >>> round(float(abs(m[0, 32, 32])), 2)
    1.45
    """
    if not head_radius_m > 0:
        raise ConfigError(f"head radius must be positive; got {head_radius_m} m")
    a = b1_inhomogeneity_amplitude(b0_t)
    pos = _positions(affine, shape_zyx)
    rho2 = (pos[..., 1] - centre_m[1]) ** 2 + (pos[..., 2] - centre_m[2]) ** 2
    u = rho2 / head_radius_m**2
    mag = np.maximum(1.0 + a * (1.0 - 2.0 * u), floor)
    return (mag * np.exp(-1j * math.pi * a * u)).astype(np.complex64)


def head_dielectric(b0_t: float) -> tuple[float, float]:
    """Head-average relative permittivity and conductivity [S/m] at the Larmor frequency of ``b0_t``."""
    f_mhz = GAMMA_BAR_HZ_PER_T * b0_t / 1e6
    lf = np.log(f_mhz)
    eps = float(np.interp(lf, np.log(_DIELECTRIC_MHZ), _DIELECTRIC_EPS_R))
    sigma = float(np.interp(lf, np.log(_DIELECTRIC_MHZ), _DIELECTRIC_SIGMA))
    return eps, sigma


def tissue_wavenumber(b0_t: float) -> complex:
    """Complex wavenumber ``k = ω sqrt(μ0 ε0 (εr - i σ/(ω ε0)))`` [rad/m] in head tissue (Re: phase, -Im: loss)."""
    omega = 2 * math.pi * GAMMA_BAR_HZ_PER_T * b0_t
    eps, sigma = head_dielectric(b0_t)
    eps_c = eps - 1j * sigma / (omega * EPSILON0_F_PER_M)
    return complex(omega * np.sqrt(MU0_H_PER_M * EPSILON0_F_PER_M * eps_c))


def transmit_array_maps(
    affine: NDArray[np.float64],
    shape_zyx: tuple[int, int, int],
    *,
    b0_t: float,
    n_channels: int = 8,
    radius_m: float = 0.14,
    centre_m: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> NDArray[np.complex64]:
    """B1+ maps of an ``n_channels`` transmit array of line elements around the head (one per channel).

    Each element is a z-directed line current at radius ``radius_m`` and azimuth ``2π c / n``, radiating into a
    homogeneous lossy medium (head-average εr, σ at the Larmor frequency): ``B_φ ∝ k H1⁽²⁾(k d)``.
    Maps are normalised so that the quadrature (CP) mode :func:`quadrature_weights` has ``|B1+| = 1`` at the centre.

    Returns
    -------
    NDArray[np.complex64]
        Shape ``(channel, z, y, x)``.
    """
    if int(n_channels) != n_channels or n_channels < 1:
        raise ConfigError(f"number of transmit channels must be an integer >= 1; got {n_channels}")
    pos = _positions(affine, shape_zyx)
    k = tissue_wavenumber(b0_t)
    y = pos[..., 1] - centre_m[1]
    x = pos[..., 2] - centre_m[2]
    maps = np.empty((int(n_channels), *pos.shape[:-1]), dtype=np.complex128)

    def one(c: int, yy: NDArray[np.float64], xx: NDArray[np.float64]) -> NDArray[np.complex128]:
        import scipy.special

        phi_c = 2 * math.pi * c / n_channels
        dy = yy - radius_m * math.sin(phi_c)
        dx = xx - radius_m * math.cos(phi_c)
        d = np.maximum(np.hypot(dx, dy), 1e-3)
        b_phi = k * scipy.special.hankel2(1, k * d) / 4j
        phi_local = np.arctan2(dy, dx)
        # B = B_phi phi_hat, phi_hat = (-sin, cos) in (x, y): Bx + i By = i B_phi exp(i phi_local)
        return np.asarray(0.5j * b_phi * np.exp(1j * phi_local), dtype=np.complex128)

    for c in range(int(n_channels)):
        maps[c] = one(c, y, x)
    w = quadrature_weights(int(n_channels))
    centre_value = sum(w[c] * one(c, np.zeros(1), np.zeros(1))[0] for c in range(int(n_channels)))
    return (maps / abs(centre_value)).astype(np.complex64)


def quadrature_weights(n_channels: int) -> NDArray[np.complex128]:
    """Circularly polarised (CP, "quadrature") drive of a ring array: unit amplitudes, phases ``-2π c / n``."""
    c = np.arange(int(n_channels))
    return np.exp(-2j * np.pi * c / n_channels).astype(np.complex128)


def combine(maps: NDArray[np.complexfloating], weights: NDArray[np.complexfloating]) -> NDArray[np.complex64]:
    """Transmit field of channel ``weights`` applied to ``maps`` (channel, ...) -> (...)."""
    return np.tensordot(np.asarray(weights), np.asarray(maps), axes=(0, 0)).astype(np.complex64)


def coefficient_of_variation(b1: NDArray[np.complexfloating], mask: NDArray[np.bool_]) -> float:
    """CoV of ``|B1+|`` over ``mask``: std / mean."""
    m = np.abs(np.asarray(b1))[np.asarray(mask, dtype=bool)]
    if m.size == 0:
        raise ConfigError("mask selects no voxels; give a mask over the object")
    return float(m.std() / m.mean())


def _cov_and_gradient(v: NDArray[np.float64], a: NDArray[np.complex128]) -> tuple[float, NDArray[np.float64]]:
    """CoV of |A w| and its gradient with respect to (Re w, Im w)."""
    n = a.shape[1]
    w = v[:n] + 1j * v[n:]
    f = a @ w
    m = np.abs(f) + 1e-30
    mu = float(m.mean())
    sd = float(m.std()) + 1e-30
    c = sd / mu
    dm = ((m - mu) / (m.size * sd)) / mu - c / (m.size * mu)
    g = np.conj(np.conj(dm * f / m) @ a)  # = A^H (dm f / m), without a strided transposed product
    return c, np.concatenate([g.real, g.imag])


def rf_shim(
    maps: NDArray[np.complexfloating],
    mask: NDArray[np.bool_],
    *,
    target: float | None = None,
    regularization: float = 1e-3,
    n_iterations: int = 50,
    n_starts: int = 3,
    seed: int = 0,
) -> NDArray[np.complex128]:
    """Channel weights that make ``|B1+|`` uniform over ``mask`` (static RF shimming).

    Two stages: magnitude least squares ``min ‖ |A w| - t ‖² + λ ‖w‖² ‖A‖²_F / n`` by variable exchange
    (Setsompop 2008; alternate the target phase and a regularised linear solve) from the CP mode, then a direct
    minimisation of the coefficient of variation of ``|A w|`` (L-BFGS with the analytic gradient) from that
    solution and ``n_starts - 1`` seeded random drives; the best is scaled so the mean ``|B1+|`` equals ``t``.

    Parameters
    ----------
    maps
        Channel B1+ maps, shape ``(channel, ...)``.
    mask
        Voxels to make uniform, shape ``(...)``.
    target
        Target mean magnitude; default the mean ``|B1+|`` of the CP mode over the mask (same flip angle).
    regularization
        Relative Tikhonov weight λ of the least-squares stage.
    n_iterations
        Variable-exchange iterations.
    n_starts
        Starting points of the CoV stage (the MLS solution plus seeded random drives).
    seed
        Seed of the random starts.

    Returns
    -------
    NDArray[np.complex128]
        Weights, shape ``(channel,)``.
    """
    a_full = np.asarray(maps)
    msk = np.asarray(mask, dtype=bool)
    if msk.shape != a_full.shape[1:]:
        raise ConfigError(f"mask shape {msk.shape} must match the maps' grid {a_full.shape[1:]}")
    a = a_full[:, msk].T.astype(np.complex128)  # (voxel, channel)
    if a.shape[0] == 0:
        raise ConfigError("mask selects no voxels; give a mask over the object")
    with single_threaded_blas():
        return _rf_shim(
            a, target=target, regularization=regularization, n_iterations=n_iterations, n_starts=n_starts, seed=seed
        )


def _rf_shim(
    a: NDArray[np.complex128],
    *,
    target: float | None,
    regularization: float,
    n_iterations: int,
    n_starts: int,
    seed: int,
) -> NDArray[np.complex128]:
    from scipy.optimize import minimize

    n_ch = a.shape[1]
    w = quadrature_weights(n_ch)
    t = float(np.abs(a @ w).mean()) if target is None else float(target)
    lam = regularization * float(np.linalg.norm(a, ord="fro") ** 2) / n_ch
    ah = np.ascontiguousarray(a.conj().T)
    lhs = ah @ a + lam * np.eye(n_ch)
    for _ in range(int(n_iterations)):
        phase = np.exp(1j * np.angle(a @ w))
        w = np.linalg.solve(lhs, ah @ (t * phase))
    rng = np.random.default_rng(seed)
    starts = [w] + [rng.normal(size=n_ch) + 1j * rng.normal(size=n_ch) for _ in range(max(0, n_starts - 1))]
    best_w, best_c = w, _cov_and_gradient(np.concatenate([w.real, w.imag]), a)[0]
    for w0 in starts:
        res = minimize(
            _cov_and_gradient,
            np.concatenate([w0.real, w0.imag]),
            args=(a,),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 500},
        )
        if res.fun < best_c:
            best_c, best_w = float(res.fun), res.x[:n_ch] + 1j * res.x[n_ch:]
    scale = t / float(np.abs(a @ best_w).mean())
    return np.asarray(best_w * scale, dtype=np.complex128)


# ---------------------------------------------------------------------------------------------------------------
# Receive: SENSE g-factor, SNR vs field
# ---------------------------------------------------------------------------------------------------------------
def g_factor_map(
    sensitivities: NDArray[np.complexfloating],
    *,
    acceleration: int | tuple[int, int] = 2,
    noise_covariance: NDArray[np.complexfloating] | None = None,
    mask: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """SENSE g-factor map for regular Cartesian undersampling (Pruessmann et al., MRM 1999;42:952).

    Parameters
    ----------
    sensitivities
        Coil sensitivities, shape ``(coil, z, y, x)``.
    acceleration
        Reduction factor along y (an int), or ``(R_z, R_y)`` for 2D-accelerated 3D imaging. Each size must be a
        multiple of its factor.
    noise_covariance
        Receiver noise covariance ``(coil, coil)``; default identity.
    mask
        Object support ``(z, y, x)``: voxels outside it do not alias into the others (as in SENSE with masked
        sensitivities) and get g = 0. Default: everywhere.

    Returns
    -------
    NDArray[np.float32]
        g-factor, shape ``(z, y, x)``, >= 1 inside the mask.

    Examples
    --------
    >>> s = np.ones((1, 1, 4, 1), np.complex64)
    >>> g_factor_map(s, acceleration=1)[0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    s = np.asarray(sensitivities, dtype=np.complex128)
    if s.ndim != 4:
        raise ConfigError(f"sensitivities must have shape (coil, z, y, x); got {s.shape}")
    nc, nz, ny, nx = s.shape
    rz, ry = (1, int(acceleration)) if isinstance(acceleration, int | np.integer) else map(int, acceleration)
    if rz < 1 or ry < 1 or nz % rz or ny % ry:
        raise ConfigError(f"acceleration (R_z={rz}, R_y={ry}) must divide the grid (z={nz}, y={ny})")
    psi = np.eye(nc) if noise_covariance is None else np.asarray(noise_covariance, dtype=np.complex128)
    if psi.shape != (nc, nc):
        raise ConfigError(f"noise covariance must be ({nc}, {nc}); got {psi.shape}")
    msk = np.ones((nz, ny, nx), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if msk.shape != (nz, ny, nx):
        raise ConfigError(f"mask shape {msk.shape} must equal the grid {(nz, ny, nx)}")
    # whiten: Psi = L L^H, s_w = L^-1 s
    chol = np.linalg.cholesky(psi)
    sw = np.linalg.solve(chol, s.reshape(nc, -1)).reshape(s.shape)
    sw = sw * msk[None]
    r = rz * ry
    mz, my = nz // rz, ny // ry
    # gather aliasing groups: (mz, my, x, coil, r)
    blocks = sw.reshape(nc, rz, mz, ry, my, nx).transpose(2, 4, 5, 0, 1, 3).reshape(mz, my, nx, nc, r)
    inside = msk.reshape(rz, mz, ry, my, nx).transpose(1, 3, 4, 0, 2).reshape(mz, my, nx, r)
    gram = np.einsum("...ci,...cj->...ij", blocks.conj(), blocks)
    # regularise the rows/cols of voxels outside the mask so the Gram matrix stays invertible
    eye = np.eye(r)
    gram = gram + (~inside)[..., :, None] * eye
    inv = np.linalg.inv(gram)
    diag_g = np.real(np.einsum("...ii->...i", gram))
    diag_i = np.real(np.einsum("...ii->...i", inv))
    g = np.sqrt(np.maximum(diag_g * diag_i, 1.0))
    g = np.where(inside, g, 0.0)
    out = g.reshape(mz, my, nx, rz, ry).transpose(3, 0, 4, 1, 2).reshape(nz, ny, nx)
    return out.astype(np.float32)


def snr_field_factor(b0_t: float, *, exponent: float = 1.65, reference_b0_t: float = 3.0) -> float:
    """Relative SNR at ``b0_t`` vs ``reference_b0_t``: ``(B0 / B_ref)^β``.

    β = 1.65 for the brain with receive arrays (Pohmann, Speck & Scheffler, MRM 2016;75:801), 1.0 for body noise
    dominance (Hoult & Richards 1976), ~2 at the centre of a phantom with a volume coil (Le Ster 2022).

    Examples
    --------
    >>> round(snr_field_factor(7.0), 2), round(snr_field_factor(1.5, exponent=1.0), 2)
    (4.05, 0.5)
    """
    if not (b0_t > 0 and reference_b0_t > 0):
        raise ConfigError(f"field strengths must be positive; got {b0_t} T and {reference_b0_t} T")
    return float((b0_t / reference_b0_t) ** exponent)
