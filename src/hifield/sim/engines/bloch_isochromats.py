"""Isochromats of one voxel for the Bloch engine: Lorentzian frequency offsets, lattice positions, encoding response.

A voxel's ``n`` isochromats carry off-resonance offsets at the quantiles of a Lorentzian of half width
``R2' = 1/T2* - 1/T2`` (physics-safety.md §3.1), so the ensemble decays as ``exp(-R2' |t - t_SE|)`` and refocuses
in spin echoes, and positions on a rank-1 lattice over the voxel, so spoiler gradients dephase within a voxel as on
a scanner. :func:`voxel_transfer` is the voxel's encoding response, divided out of the k-space by the engine.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError


def lorentzian_offsets(n: int, r2prime_per_s: float) -> NDArray[np.float64]:
    """Deterministic Lorentzian quantiles ``R2' tan(π (u - 1/2))``, ``u = (j + 1/2) / n`` [rad/s].

    The ensemble average of ``exp(-i Δω t)`` over them approaches ``exp(-R2' |t|)``.

    Examples
    --------
    >>> w = lorentzian_offsets(1000, 10.0)
    >>> bool(abs(np.mean(np.cos(w * 0.05)) - np.exp(-0.5)) < 0.01)
    True
    """
    if n < 1:
        raise ConfigError(f"n_isochromats = {n} must be at least 1")
    if r2prime_per_s <= 0 or n == 1:
        return np.zeros(n)
    u = (np.arange(n) + 0.5) / n
    return float(r2prime_per_s) * np.tan(np.pi * (u - 0.5))


def lattice_points(n: int, dim: int) -> NDArray[np.float64]:
    """``n`` points of a rank-1 lattice in ``[0, 1)^dim``: ``frac((j + 1/2) g / n)`` with ``g = (1, g_2, ...)``
    coprime to ``n`` near the golden-ratio multiples, so every 1D projection is the regular grid ``(j + 1/2) / n``.

    A regular grid along each axis makes an integer number of dephasing cycles across a voxel cancel exactly
    (up to ``n / 2`` cycles), much better than random or Kronecker points for gradient spoiling.

    Examples
    --------
    >>> p = lattice_points(8, 2)
    >>> sorted(np.round(p[:, 1] * 16).astype(int).tolist())
    [1, 3, 5, 7, 9, 11, 13, 15]
    """
    phi = 2.0
    for _ in range(64):
        phi = (1.0 + phi) ** (1.0 / (dim + 1))
    gens = [1]
    for d in range(1, dim):
        g = max(1, round(n / phi ** (d + 1)) % max(n, 1))
        while math.gcd(g, n) != 1 or g in gens:
            g += 1
            if g >= n:
                g = 1
                break
        gens.append(g)
    j = np.arange(n)[:, None]
    return np.mod((j * np.asarray(gens)[None, :]) % n + 0.5, n) / n


def isochromat_offsets(
    n: int,
    voxel_m: tuple[float, float, float],
    r2prime_per_s: float,
    *,
    spread_positions: bool = True,
    voxel_shape: str = "box",
    uniform_axes: tuple[bool, bool, bool] = (False, False, False),
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Isochromats of one voxel: position offsets ``(n, 3)`` [m] (z, y, x), Lorentzian off-resonance offsets
    ``(n,)`` [rad/s] and weights ``(n,)`` summing to 1.

    Positions form a rank-1 lattice (:func:`lattice_points`) over the voxel (``voxel_shape="box"``, uniform
    weights) or over four voxels per axis with Hann-windowed ``sinc`` weights (``"sinc"``: a band-limited voxel,
    whose magnetisation pathways dephased by more than half a cycle per voxel cancel, as for a continuous
    object). Axes with zero size are not spread; ``uniform_axes`` are spread uniformly over their size whatever the
    shape (e.g. the through-slice axis of a 2D slice). The frequency quantiles are paired with the positions by a fixed
    lattice permutation so that neither correlates with the other.
    """
    dw = lorentzian_offsets(n, r2prime_per_s)
    if not spread_positions or n == 1:
        return np.zeros((n, 3)), dw, np.full(n, 1.0 / n)
    u = lattice_points(n, 4)
    order = np.argsort(u[:, 3], kind="stable")
    unit = u[:, [2, 1, 0]] - 0.5  # x regular, y and z lattice, in [-1/2, 1/2)
    size = np.asarray(voxel_m, dtype=np.float64)
    if voxel_shape == "box":
        return unit * size[None, :], dw[order], np.full(n, 1.0 / n)
    if voxel_shape != "sinc":
        raise ConfigError(f"voxel_shape = {voxel_shape!r} is not one of 'box', 'sinc'")
    span = 4.0
    x = unit * span  # voxel units, [-2, 2)
    weights = np.ones(n)
    for axis in range(3):
        if uniform_axes[axis]:
            x[:, axis] = unit[:, axis]
        elif size[axis] > 0:
            weights = weights * np.sinc(x[:, axis]) * np.cos(np.pi * x[:, axis] / span) ** 2
    weights = weights / weights.sum()
    return x * size[None, :], dw[order], weights


def voxel_transfer(
    k_m: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    offsets_m: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> NDArray[np.complex128]:
    """Encoding response ``Σ_i w_i exp(-i 2π k·r_i)`` of a voxel's isochromats on a Cartesian grid ``(kz, ky, kx)``
    [1/m] (separable only when the positions are, so it is summed exactly)."""
    kz, ky, kx = (np.asarray(a, dtype=np.float64) for a in k_m)
    out = np.zeros((kz.size, ky.size, kx.size), dtype=np.complex128)
    for r, w in zip(offsets_m, weights, strict=True):
        out += w * (
            np.exp(-2j * np.pi * kz * r[0])[:, None, None]
            * np.exp(-2j * np.pi * ky * r[1])[None, :, None]
            * np.exp(-2j * np.pi * kx * r[2])[None, None, :]
        )
    return out
