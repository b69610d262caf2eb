"""Isochromats of one voxel for the Bloch engine: Lorentzian frequency offsets, lattice positions, encoding response.

A voxel's ``n`` isochromats carry off-resonance offsets at the quantiles of a Lorentzian of half width
``R2' = 1/T2* - 1/T2`` (physics-safety.md §3.1), so the ensemble decays as ``exp(-R2' |t - t_SE|)`` and refocuses
in spin echoes, and positions on a rank-1 lattice, so spoiler gradients dephase within a voxel as on a scanner.
The default voxel is band-limited (:class:`BandVoxel`): the phantom is read as samples of an object without detail
finer than its grid, as the ``fast`` engine's FFT and MRzero read it, so a coherence pathway dephased by more than
half a cycle per voxel carries no signal. A uniform ("box") voxel instead returns a few percent of such pathways
whenever a spoiler leaves a non-integer number of cycles across it. :func:`voxel_transfer` is the voxel's encoding
response, divided out of the k-space by the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError


@dataclass(frozen=True)
class BandVoxel:
    """A band-limited voxel: isochromats over ``span`` voxels along each spread axis with Kaiser-windowed sinc
    weights, ``2 fc sinc(2 fc x) I0(beta sqrt(1 - (2x / span)^2)) / I0(beta)`` (``x`` in voxels).

    Their summed response to a pathway dephased by ``f`` cycles per voxel is 1 below ``cutoff - h`` and vanishes
    above ``cutoff + h``, ``h = sqrt(1 + (beta / pi)^2) / span`` (sidelobes about 1e-3 at ``beta = 8``); it repeats
    every ``n / span`` cycles, so ``n`` must exceed ``span`` times the dephasing of the oldest pathway that still
    carries signal (:func:`~hifield.sim.engines.bloch_isochromat_count.band_isochromats_needed`).
    """

    axes: tuple[bool, bool, bool]
    """Axes ``(z, y, x)`` the isochromats spread along (those a sequence dephases; the others stay at the centre)."""
    span: float = 8.0
    """Extent along each spread axis [voxels]."""
    cutoff: float = 0.5
    """Band limit [cycles per voxel]: the phantom grid's own Nyquist frequency."""
    beta: float = 8.0
    """Kaiser window parameter."""

    @property
    def half_transition(self) -> float:
        """Half width ``h`` of the transition band [cycles per voxel]."""
        return math.sqrt(1.0 + (self.beta / math.pi) ** 2) / self.span

    def weight(self, x_voxels: NDArray[np.float64]) -> NDArray[np.float64]:
        """Weight of isochromats at ``x_voxels`` along one spread axis (not normalised)."""
        inside = np.clip(1.0 - (2.0 * x_voxels / self.span) ** 2, 0.0, None)
        window = np.i0(self.beta * np.sqrt(inside)) / np.i0(self.beta)
        return 2.0 * self.cutoff * np.sinc(2.0 * self.cutoff * x_voxels) * window


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


VOXEL_SHAPES = ("band", "box", "sinc")
"""The voxel models of :func:`isochromat_offsets`."""


def isochromat_offsets(
    n: int,
    voxel_m: tuple[float, float, float],
    r2prime_per_s: float,
    *,
    spread_positions: bool = True,
    voxel_shape: str = "box",
    uniform_axes: tuple[bool, bool, bool] = (False, False, False),
    band: BandVoxel | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Isochromats of one voxel: position offsets ``(n, 3)`` [m] (z, y, x), Lorentzian off-resonance offsets
    ``(n,)`` [rad/s] and weights ``(n,)`` summing to 1.

    Positions form a rank-1 lattice (:func:`lattice_points`) over the voxel (``voxel_shape="box"``, uniform
    weights), over ``band.span`` voxels along ``band.axes`` with Kaiser-windowed sinc weights (``"band"``, see
    :class:`BandVoxel`; all axes of non-zero size when ``band`` is None) or over four voxels per axis with
    Hann-windowed ``sinc`` weights (``"sinc"``, the former experimental band-limited voxel). Axes with zero size are
    not spread; ``uniform_axes`` are spread uniformly over their size whatever the shape (e.g. the through-slice
    axis of a 2D slice). The frequency quantiles are paired with the positions by a fixed lattice permutation so
    that neither correlates with the other.

    Examples
    --------
    A band-limited voxel cancels a pathway dephased by 1.25 cycles per voxel, which a box voxel does not:

    >>> size = (0.0, 0.0, 1e-3)
    >>> pos, _, w = isochromat_offsets(512, size, 0.0, voxel_shape="band", band=BandVoxel((False, False, True)))
    >>> bool(abs(np.sum(w * np.exp(2j * np.pi * 1.25 * pos[:, 2] / 1e-3))) < 1e-3)
    True
    >>> pos, _, w = isochromat_offsets(512, size, 0.0, voxel_shape="box")
    >>> round(float(abs(np.sum(w * np.exp(2j * np.pi * 1.25 * pos[:, 2] / 1e-3)))), 2)
    0.18
    """
    if voxel_shape not in VOXEL_SHAPES:
        raise ConfigError(f"voxel_shape = {voxel_shape!r} is not one of {', '.join(map(repr, VOXEL_SHAPES))}")
    dw = lorentzian_offsets(n, r2prime_per_s)
    if not spread_positions or n == 1:
        return np.zeros((n, 3)), dw, np.full(n, 1.0 / n)
    u = lattice_points(n, 4)
    order = np.argsort(u[:, 3], kind="stable")
    size = np.asarray(voxel_m, dtype=np.float64)
    if voxel_shape == "band":
        return _band_offsets(u, size, dw, band, uniform_axes)
    unit = u[:, [2, 1, 0]] - 0.5  # x regular, y and z lattice, in [-1/2, 1/2)
    if voxel_shape == "box":
        return unit * size[None, :], dw[order], np.full(n, 1.0 / n)
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


def _band_offsets(
    u: NDArray[np.float64],
    size: NDArray[np.float64],
    dw: NDArray[np.float64],
    band: BandVoxel | None,
    uniform_axes: tuple[bool, bool, bool],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Positions and weights of a band-limited voxel on lattice points ``u`` ``(n, 4)``: the first spread axis takes
    the lattice's regular column, so a single spread axis (the usual case: one spoiler direction) is a regular grid."""
    n = u.shape[0]
    if band is None:
        band = BandVoxel(axes=(bool(size[0] > 0), bool(size[1] > 0), bool(size[2] > 0)))
    pos = np.zeros((n, 3))
    weights = np.ones(n)
    column = 0
    for axis in (2, 1, 0):  # x first: the readout axis is the usual spoiler axis
        if size[axis] <= 0:
            continue
        if uniform_axes[axis]:
            pos[:, axis] = (u[:, column] - 0.5) * size[axis]
            column += 1
        elif band.axes[axis]:
            x = (u[:, column] - 0.5) * band.span  # voxels
            pos[:, axis] = x * size[axis]
            weights = weights * band.weight(x)
            column += 1
    return pos, dw[_frequency_pairing(n)], weights / weights.sum()


def _frequency_pairing(n: int) -> NDArray[np.intp]:
    """Which frequency quantile the isochromat at grid point ``j`` takes: ``j g mod n`` with ``g`` near ``n / φ²``
    (a two-dimensional Fibonacci lattice of positions and quantiles), so that any run of neighbouring positions
    holds quantiles from the whole distribution and every weighted local average of ``exp(i Δω t)`` stays close to
    the Lorentzian's ``exp(-R2' |t|)``."""
    if n < 3:
        return np.arange(n)
    g = max(1, round(n / ((1.0 + math.sqrt(5.0)) / 2.0) ** 2))
    while math.gcd(g, n) != 1:
        g += 1
    return (np.arange(n) * g) % n


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
