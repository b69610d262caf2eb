"""Cartesian encoding pieces and the solvers every encoding shares: CG-SENSE, L1-wavelet CS (FISTA), TV (PDHG)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.backend import copy, from_numpy, is_tensor, to_numpy
from hifield.errors import ConfigError
from hifield.ops import (
    FFTOp,
    FiniteDifferenceOp,
    LinearOperator,
    MaskOp,
    SensitivityOp,
    WaveletOp,
)
from hifield.recon.config import CsConfig, SenseConfig, TvConfig
from hifield.solvers import conjugate_gradient, fista, pdhg, soft_threshold

Complex = NDArray[np.complex64]


def encoding_operator(maps: Complex, mask: NDArray[np.bool_]) -> LinearOperator:
    """``E = mask . FFT . S``: image ``(maps, z, y, x)`` -> sampled k-space ``(coil, k2, k1, k0)``."""
    sens = SensitivityOp(maps)
    return MaskOp(mask, sens.oshape) @ FFTOp(sens.oshape) @ sens


def lipschitz_bound(maps: Complex) -> float:
    """Upper bound of ``||E^H E||``: the largest per-pixel eigenvalue of ``S(r)^H S(r)`` (mask and FFT have norm 1)."""
    if maps.shape[0] == 1:
        return float(np.max(np.sum(np.abs(maps[0]) ** 2, axis=0)))
    s = np.moveaxis(maps.reshape(maps.shape[0], maps.shape[1], -1), -1, 0)  # (pixels, maps, coil)
    gram = np.einsum("pmc,pnc->pmn", np.conj(s), s)
    return float(np.max(np.linalg.eigvalsh(gram)))


def combine_maps(x: Complex) -> Complex:
    """One image from ESPIRiT map sets ``(maps, z, y, x)``: RSS over the sets with the phase of the first."""
    if x.shape[0] == 1:
        return x
    mag = np.sqrt(np.sum(np.abs(x) ** 2, axis=0))
    phase = np.exp(1j * np.angle(x[0]))
    return (mag * phase)[None].astype(np.complex64)


def rss(images: Complex) -> Complex:
    """Root-sum-of-squares over coils ``(coil, z, y, x)`` -> ``(1, z, y, x)`` (real, stored as complex64)."""
    return np.sqrt(np.sum(images.real**2 + images.imag**2, axis=0, dtype=np.float64))[None].astype(np.complex64)


Normal = Callable[[Complex], Complex]


def _magnitude(z: Any) -> Any:
    """``sqrt(sum_d |z_d|^2)`` over the first axis (the directions of a gradient field), kept as a leading axis 1."""
    if is_tensor(z):
        return (z.real.square() + z.imag.square()).sum(dim=0, keepdim=True).sqrt()
    return np.sqrt(np.sum(z.real**2 + z.imag**2, axis=0, keepdims=True))


def _roll(x: Any, shift: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """Circular shift of a numpy array or tensor along ``axes``."""
    return x.roll(shift, dims=axes) if is_tensor(x) else np.roll(x, shift, axis=axes)


def solve_sense(normal: Normal, aty: Complex, config: SenseConfig) -> Complex:
    """CG on ``(E^H E + lambda I) x = E^H y`` given ``normal = E^H E`` and ``aty = E^H y``."""
    lam = float(config.lambda_rel)

    def regularised(x: Complex) -> Complex:
        out = normal(x)
        if lam:
            out += lam * x
        return out

    x, _ = conjugate_gradient(regularised, aty, max_iter=config.max_iter, tol=config.tol)
    return x


def solve_cs(normal: Normal, aty: Complex, lipschitz: float, config: CsConfig) -> Complex:
    """FISTA for ``0.5 ||E x - y||^2 + lambda ||W x||_1`` given ``E^H E``, ``E^H y`` and ``||E^H E||``."""
    wav = WaveletOp(aty.shape, wavelet=config.wavelet, level=config.level)
    detail = wav.detail_mask
    coeffs = to_numpy(wav @ aty) if is_tensor(aty) else wav @ aty
    scale = float(np.max(np.abs(coeffs[detail]))) if detail.any() else 0.0
    lam = config.lambda_rel * scale
    step = 1.0 / max(lipschitz, 1e-12)
    rng = np.random.default_rng(config.seed)
    axes = wav.wavelet_axes
    block = 2**wav.level
    thresholds = np.where(detail, 1.0, 0.0).astype(np.float32)
    tensor = is_tensor(aty)
    if tensor:
        thresholds = from_numpy(thresholds, aty)

    def grad(x: Complex) -> Complex:
        return normal(x) - aty

    def prox(v: Complex, t: float) -> Complex:
        if lam == 0.0 or not axes:
            return v
        shift = tuple(int(s) for s in rng.integers(0, block, size=len(axes))) if config.random_shift else None
        if shift:
            v = _roll(v, shift, axes)
        c = soft_threshold(wav.apply(v), thresholds * float(lam * t))
        out = wav.apply_adjoint(c)
        if shift:
            out = _roll(out, tuple(-s for s in shift), axes)
        return out

    x, _ = fista(grad, prox, copy(aty), step=step, max_iter=config.max_iter, tol=config.tol)
    return x


def solve_tv(normal: Normal, aty: Complex, lipschitz: float, config: TvConfig) -> Complex:
    """PDHG (Condat-Vu) for ``0.5 ||E x - y||^2 + lambda TV(x)`` given ``E^H E``, ``E^H y`` and ``||E^H E||``."""
    axes = tuple(a for a in (-3, -2, -1) if aty.shape[a] > 1)
    grad_op = FiniteDifferenceOp(aty.shape, axes=axes)
    edges = grad_op @ aty
    scale = float(_magnitude(edges).max())
    lam = config.lambda_rel * scale

    def grad_f(x: Complex) -> Complex:
        return normal(x) - aty

    def prox_dual(z: Complex, sigma: float) -> Complex:
        # prox of the conjugate of lam ||.||_{2,1}: projection onto the ball |z_i| <= lam (norm across directions)
        shrink = _magnitude(z) / max(lam, 1e-30)
        return z / (shrink.clamp(min=1.0) if is_tensor(z) else np.maximum(shrink, np.float32(1.0)))

    if not config.dual_step > 0:
        raise ConfigError(f"TV dual_step must be > 0; got {config.dual_step}")
    op_norm = float(np.sqrt(4.0 * max(len(axes), 1)))
    lipschitz = max(lipschitz, 1e-12)
    sigma = config.dual_step / op_norm
    x, _ = pdhg(
        grad_op.apply,
        grad_op.apply_adjoint,
        prox_dual,
        copy(aty),
        grad_f=grad_f,
        lipschitz=lipschitz,
        tau=1.0 / (0.5 * lipschitz + sigma * op_norm**2),
        op_norm=op_norm,
        max_iter=config.max_iter,
        tol=config.tol,
    )
    return x
