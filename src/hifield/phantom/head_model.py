"""Susceptibility model of the brain phantom's head: brain, bone shells, soft tissue and the air cavities.

The anatomy is the brain phantom's (:mod:`hifield.phantom.brain`): the brain from the MNI152 template and shells
at a signed distance from its surface. Air-filled cavities are ellipsoids in MNI space, kept only where they lie
outside the brain and its CSF shell (distance > 2 mm), so they carve the skull and scalp, never the brain:

* frontal sinus: in the frontal bone in front of the frontal poles;
* sphenoid sinus: under the sella, between the temporal lobes;
* ear canals (external auditory meati) with the mastoid air cells behind them.

Volume susceptibilities (SI, physics-safety.md §1.4) relative to air (so zero padding is air): each tissue's
``χ_t - χ_air`` weighted by its fraction, air inside cavities and around the head.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.phantom.brain import _COARSE, _HEAD_MM, _PAD, _ras_to_lps, _template
from hifield.phantom.tissues import SUSCEPTIBILITY_PPM

AIR_CAVITIES: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("frontal sinus", (0.0, 76.0, 2.0), (15.0, 7.0, 13.0)),
    ("sphenoid sinus", (0.0, 14.0, -32.0), (11.0, 11.0, 9.0)),
    ("right ear canal", (64.0, -22.0, -44.0), (12.0, 5.0, 5.0)),
    ("left ear canal", (-64.0, -22.0, -44.0), (12.0, 5.0, 5.0)),
    ("right mastoid", (52.0, -36.0, -44.0), (8.0, 8.0, 8.0)),
    ("left mastoid", (-52.0, -36.0, -44.0), (8.0, 8.0, 8.0)),
)
"""Air cavities: name, MNI RAS centre [mm] and semi-axes (x, y, z) [mm] of an ellipsoid (outside the brain only)."""

_CAVITY_MIN_DIST_MM = 2.0


def cavity_fraction(pos_iso_m: NDArray[np.float64]) -> NDArray[np.float32]:
    """Air fraction (0-1, 1 mm partial-volume edge) at isocentred LPS points ``(..., 3)`` [m] in (z, y, x) order.

    Parameters
    ----------
    pos_iso_m
        Positions relative to the head centre (the brain phantom's isocentre) [m], last axis (z, y, x) LPS.

    Returns
    -------
    NDArray[np.float32]
        Fraction of air of each point (``pos_iso_m.shape[:-1]``).
    """
    from scipy import ndimage

    tpl = _template()
    pos = np.asarray(pos_iso_m, dtype=np.float64)
    centre_lps = _ras_to_lps(tpl.head_centre_ras_mm) * 1e-3
    lps_mm = (pos + centre_lps) * 1e3
    ras = np.stack([-lps_mm[..., 2], -lps_mm[..., 1], lps_mm[..., 0]], axis=-1)  # (..., 3) RAS mm
    air = np.zeros(pos.shape[:-1], dtype=np.float32)
    for _, centre, semi in AIR_CAVITIES:
        u = np.sqrt(np.sum(((ras - np.asarray(centre)) / np.asarray(semi)) ** 2, axis=-1))
        # 1 mm edge: (1 - u) * semi-axis ~ distance inside the surface [mm]
        inside = np.clip((1.0 - u) * min(semi) + 0.5, 0.0, 1.0).astype(np.float32)
        air = np.maximum(air, inside)
    if not np.any(air > 0):
        return air
    m = tpl.ras_to_index
    ijk = np.tensordot(ras, m[:3, :3], axes=(-1, 1)) + m[:3, 3]
    coarse = np.moveaxis(ijk / _COARSE + _PAD, -1, 0)
    dist = ndimage.map_coordinates(tpl.dist_mm, coarse, order=1, mode="nearest", output=np.float32)
    outside_brain = np.clip(dist - _CAVITY_MIN_DIST_MM + 0.5, 0.0, 1.0) * (dist <= _HEAD_MM)
    return (air * outside_brain).astype(np.float32)


@dataclass(frozen=True, eq=False)
class HeadSusceptibility:
    """The head's susceptibility on a coarse isotropic grid, for the B0 field computation."""

    chi_ppm: NDArray[np.float32]
    """Susceptibility relative to air [ppm, SI], shape ``(z, y, x)``."""
    brain: NDArray[np.bool_]
    """Brain mask (inside the brain surface), shape ``(z, y, x)``."""
    affine: NDArray[np.float64]
    """Index ``(z, y, x, 1)`` -> isocentred LPS ``(z, y, x, 1)`` [m] (the phantoms' frame)."""

    @property
    def voxel_size_m(self) -> tuple[float, float, float]:
        """Voxel size ``(dz, dy, dx)`` [m]."""
        n = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(n[0]), float(n[1]), float(n[2]))


@functools.lru_cache(maxsize=2)
def head_susceptibility(voxel_mm: float = 4.0) -> HeadSusceptibility:
    """Susceptibility map of the head (brain, CSF, bone, fat, muscle, air cavities) on an isotropic grid.

    Tissues come from the distance shells of the brain phantom (brain inside the surface, then CSF, bone tables
    with fatty diploë, muscle, fat, skin), cavities from :data:`AIR_CAVITIES`; outside the head is air (0).
    Cached: built once per process (~0.5 s at 4 mm).

    Parameters
    ----------
    voxel_mm
        Isotropic voxel size [mm].
    """
    from scipy import ndimage

    from hifield.phantom.brain import _SHELLS

    tpl = _template()
    centre_lps_mm = _ras_to_lps(tpl.head_centre_ras_mm)
    # grid: a 256 mm cube (z, y, x) centred on the head centre
    n = round(256.0 / voxel_mm)
    idx = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    zz, yy, xx = np.meshgrid(idx, idx, idx, indexing="ij")
    lps_mm = np.stack([zz, yy, xx], axis=-1) + centre_lps_mm  # MNI LPS (z, y, x) [mm]
    ras = np.stack([-lps_mm[..., 2], -lps_mm[..., 1], lps_mm[..., 0]], axis=0)
    m = tpl.ras_to_index
    ijk = np.tensordot(m[:3, :3], ras, axes=(1, 0)) + m[:3, 3].reshape(3, 1, 1, 1)
    dist = ndimage.map_coordinates(tpl.dist_mm, ijk / _COARSE + _PAD, order=1, mode="nearest", output=np.float32)
    dist = np.where(
        ndimage.map_coordinates(
            np.ones(tpl.dist_mm.shape, np.float32), ijk / _COARSE + _PAD, order=0, mode="constant", cval=0.0
        )
        > 0,
        dist,
        np.float32(1e3),
    )
    chi_air = SUSCEPTIBILITY_PPM["air"]
    brain = dist <= 0.0
    chi = np.where(brain, SUSCEPTIBILITY_PPM["wm"] - chi_air, 0.0)
    ramp = lambda t: np.clip(t + 0.5, 0.0, 1.0)  # noqa: E731
    for tissue, inner, outer in _SHELLS:
        w = (ramp(dist - inner) if np.isfinite(inner) else 1.0) - ramp(dist - outer)
        chi = chi + np.where(brain, 0.0, w) * (SUSCEPTIBILITY_PPM[tissue] - chi_air)
    pos_iso_m = (lps_mm - centre_lps_mm) * 1e-3
    air = cavity_fraction(pos_iso_m)
    chi = chi * (1.0 - air)
    affine = np.eye(4)
    affine[:3, :3] *= voxel_mm * 1e-3
    affine[:3, 3] = -(n - 1) / 2.0 * voxel_mm * 1e-3
    return HeadSusceptibility(chi_ppm=chi.astype(np.float32), brain=np.asarray(brain), affine=affine)
