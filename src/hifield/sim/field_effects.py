"""High-field effects applied to a phantom before simulation: B0 from the head's susceptibility and B1+ shading.

* **B0** (brain phantom): the head's susceptibility (:func:`hifield.phantom.head_model.head_susceptibility`: brain,
  bone, soft tissue, air in the frontal and sphenoid sinuses, ear canals and mastoids) gives ``ΔB/B0`` [ppm] with
  the Fourier dipole kernel (:func:`hifield.hardware.fields.field_from_susceptibility`, B0 along z). The prescan
  shim (:func:`hifield.hardware.shim.fit_shim`, order 0/1/2 fitted over the whole brain) removes the smooth part;
  the residual times ``γ̄ B0`` replaces the phantom's off-resonance map, which every engine already simulates
  (EPI distortion along phase encoding, dephasing, bSSFP banding). The cavities are also carved out of the
  phantom's tissue (signal voids). The ppm map does not depend on B0 and is computed once per process.
* **B1+**: an 8-channel ring of line elements radiating into head tissue at the Larmor frequency
  (:func:`hifield.hardware.fields.transmit_array_maps`), driven in the quadrature (CP) mode as a scanner's
  birdcage, or with static pTx RF-shim weights (:func:`hifield.hardware.fields.rf_shim`) fitted over the brain in
  the exam's slices. ``|B1+|`` is normalised to a mean of 1 over the brain (the transmitter calibration) and
  becomes :attr:`hifield.phantom.Phantom.b1_scale`, which every engine applies to every flip angle.

:meth:`FieldEffects.ideal` (``hifield scan --ideal``) leaves the phantom exactly as its generator made it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.hardware import fields
from hifield.hardware.shim import fit_shim, shim_order
from hifield.phantom.phantom import Phantom
from hifield.units import GAMMA_BAR_HZ_PER_T

RF_SHIM_MODES: tuple[str, ...] = ("none", "cp", "ptx")
"""``--shim`` choices: no B1+ effect (uniform), the quadrature/CP mode, an 8-channel static pTx shim."""

_BRAIN_TISSUES = ("gm", "wm", "csf")
_B1_GRID = 96  # in-plane points of the coarse grid the transmit maps are computed on (smooth fields)
_HEAD_VOXEL_MM = 4.0


@dataclass(frozen=True)
class FieldEffects:
    """Which high-field effects a scan simulates.

    Examples
    --------
    >>> FieldEffects().rf_shim, FieldEffects(rf_shim="pTx").rf_shim, FieldEffects.ideal().b1
    ('cp', 'ptx', False)
    """

    b1: bool = True
    """Apply the B1+ map of the transmit mode :attr:`rf_shim` to every flip angle."""
    b0: bool = True
    """Replace the phantom's off-resonance by the susceptibility field after the B0 shim (head phantom)."""
    rf_shim: str = "cp"
    """``none`` (uniform B1+), ``cp`` (quadrature mode, the scanner's default) or ``ptx`` (8-channel RF shim)."""
    b0_shim: str = "2nd-order"
    """``none`` (centre frequency only), ``linear`` or ``2nd-order`` spherical-harmonic shim."""
    n_channels: int = 8
    """Transmit channels of the array."""

    def __post_init__(self) -> None:
        mode = str(self.rf_shim).strip().lower()
        if mode not in RF_SHIM_MODES:
            raise ConfigError(f"unknown RF shim {self.rf_shim!r}; choose one of none, cp, pTx")
        object.__setattr__(self, "rf_shim", mode)
        shim_order(self.b0_shim)  # validates
        if int(self.n_channels) != self.n_channels or self.n_channels < 1:
            raise ConfigError(f"transmit channels must be an integer >= 1; got {self.n_channels}")

    @classmethod
    def ideal(cls) -> FieldEffects:
        """No field effects: uniform B1+ and the phantom's own off-resonance map (``--ideal``)."""
        return cls(b1=False, b0=False, rf_shim="none", b0_shim="none")

    @property
    def is_ideal(self) -> bool:
        """True when the phantom is left unchanged."""
        return not self.applies_b1 and not self.b0

    @property
    def applies_b1(self) -> bool:
        """True when a B1+ map is applied."""
        return self.b1 and self.rf_shim != "none"


@functools.lru_cache(maxsize=4)
def head_b0_ppm(b0_shim: str = "2nd-order", voxel_mm: float = _HEAD_VOXEL_MM) -> tuple[NDArray[np.float32], Any]:
    """Residual ``ΔB/B0`` [ppm] of the head after the ``b0_shim`` fitted over the brain, and the head model.

    Field independent (ppm); cached per shim.
    """
    from hifield.phantom.head_model import head_susceptibility

    head = head_susceptibility(voxel_mm)
    ppm = fields.field_from_susceptibility(head.chi_ppm, head.voxel_size_m, b0_direction=(1.0, 0.0, 0.0))
    pos = _positions(head.affine, head.chi_ppm.shape)
    residual, _ = fit_shim(ppm, head.brain, pos, order=shim_order(b0_shim))
    return residual, head


def _positions(affine: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    idx = np.stack(np.meshgrid(*(np.arange(s, dtype=np.float64) for s in shape), indexing="ij"), axis=-1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def object_mask(phantom: Phantom) -> NDArray[np.bool_]:
    """The brain (GM + WM + CSF > 1/2) when the phantom has those tissues, else the object (all tissue > 1/2)."""
    names = phantom.tissue_names
    if all(t in names for t in _BRAIN_TISSUES):
        total = sum(phantom.fractions[names.index(t)] for t in _BRAIN_TISSUES)
        return np.asarray(total > 0.5)
    return np.asarray(phantom.fractions.sum(axis=0) > 0.5)


def head_off_resonance_hz(phantom: Phantom, *, b0_shim: str = "2nd-order") -> NDArray[np.float32]:
    """Residual off-resonance [Hz] of the head model after ``b0_shim``, sampled on ``phantom``'s grid at its B0."""
    from scipy import ndimage

    residual, head = head_b0_ppm(b0_shim)
    pos = phantom.positions_m()
    to_index = np.linalg.inv(head.affine)
    idx = pos @ to_index[:3, :3].T + to_index[:3, 3]
    ppm = ndimage.map_coordinates(residual, np.moveaxis(idx, -1, 0), order=1, mode="nearest")
    return (ppm * 1e-6 * GAMMA_BAR_HZ_PER_T * phantom.b0_t).astype(np.float32)


def b1_maps(phantom: Phantom, *, n_channels: int = 8) -> tuple[NDArray[np.complex64], NDArray[np.float64], int]:
    """Transmit-array B1+ maps on a coarse in-plane grid of the phantom: (maps, coarse affine, stride)."""
    nz, ny, nx = phantom.shape
    stride = max(1, int(np.ceil(max(ny, nx) / _B1_GRID)))
    shape = (nz, -(-ny // stride), -(-nx // stride))
    affine = phantom.affine.copy()
    affine[:3, 1:3] *= stride
    return fields.transmit_array_maps(affine, shape, b0_t=phantom.b0_t, n_channels=n_channels), affine, stride


def apply_field_effects(
    phantom: Phantom, effects: FieldEffects, *, head: bool = True
) -> tuple[Phantom, dict[str, Any]]:
    """The phantom with the field effects of ``effects`` at its B0, and a report of what was applied.

    Parameters
    ----------
    phantom
        Phantom at the scan's field (its ``b0_t``).
    effects
        Which effects to apply.
    head
        The phantom is the brain phantom (its frame is the head model's): B0 from the head's susceptibility.
        Other objects keep their own off-resonance map.

    Returns
    -------
    tuple
        The phantom (the same object when nothing applies) and a JSON-ready report: ``b1_cov`` (CoV of ``|B1+|``
        over the brain as scanned), ``b1_cov_cp`` / ``b1_cov_ptx`` (before / after the pTx shim), ``b0_residual_hz``
        (min, max over the brain) and ``b0_residual_range_hz``, ``rf_shim``, ``b0_shim``, ``time_s``.
    """
    from scipy import ndimage

    start = time.perf_counter()
    report: dict[str, Any] = {
        "ideal": effects.is_ideal,
        "rf_shim": effects.rf_shim if effects.applies_b1 else "none",
        "b0_shim": effects.b0_shim if (effects.b0 and head) else None,
    }
    changes: dict[str, Any] = {}
    mask = object_mask(phantom)
    if effects.b0 and head:
        from hifield.phantom.head_model import cavity_fraction

        air = cavity_fraction(phantom.positions_m())
        changes["fractions"] = (phantom.fractions * (1.0 - air)[np.newaxis]).astype(np.float32)
        off = head_off_resonance_hz(phantom, b0_shim=effects.b0_shim)
        # no spins, no signal: zero the field in empty voxels (air), so the engines' frequency segmentation
        # spans only the range that tissue sees
        changes["off_resonance_hz"] = np.where(changes["fractions"].sum(axis=0) > 0, off, 0.0).astype(np.float32)
        mask = mask & (air < 0.5)
    if np.any(mask):
        values = np.asarray(changes.get("off_resonance_hz", phantom.off_resonance_hz))[mask]
        report["b0_residual_hz"] = [round(float(values.min()), 2), round(float(values.max()), 2)]
        report["b0_residual_range_hz"] = round(float(values.max() - values.min()), 2)
    if effects.applies_b1 and np.any(mask):
        maps, _, stride = b1_maps(phantom, n_channels=effects.n_channels)
        coarse_mask = mask[:, ::stride, ::stride]
        cp = fields.combine(maps, fields.quadrature_weights(effects.n_channels))
        report["b1_cov_cp"] = round(fields.coefficient_of_variation(cp, coarse_mask), 4)
        b1 = cp
        if effects.rf_shim == "ptx":
            weights = fields.rf_shim(maps, coarse_mask)
            b1 = fields.combine(maps, weights)
            report["b1_cov_ptx"] = round(fields.coefficient_of_variation(b1, coarse_mask), 4)
            report["ptx_weights"] = [[round(float(w.real), 4), round(float(w.imag), 4)] for w in weights]
        magnitude = np.abs(b1).astype(np.float64)
        magnitude /= float(magnitude[coarse_mask].mean())  # transmitter calibration: mean flip over the brain
        nz, ny, nx = phantom.shape
        zz, yy, xx = np.meshgrid(np.arange(nz), np.arange(ny) / stride, np.arange(nx) / stride, indexing="ij")
        scale = ndimage.map_coordinates(magnitude, np.stack([zz, yy, xx]), order=1, mode="nearest")
        # empty space next to the elements has extreme fields that no spin sees: clip to the head's range
        occupied = phantom.fractions.sum(axis=0) > 0
        lo, hi = (float(scale[occupied].min()), float(scale[occupied].max())) if np.any(occupied) else (0.0, 2.0)
        changes["b1_scale"] = np.clip(scale, max(lo, 0.0), hi).astype(np.float32)
        report["b1_cov"] = round(fields.coefficient_of_variation(changes["b1_scale"], mask), 4)
        report["b1_range"] = [
            round(float(changes["b1_scale"][mask].min()), 3),
            round(float(changes["b1_scale"][mask].max()), 3),
        ]
    else:
        report["b1_cov"] = 0.0 if np.any(mask) else None
    report["time_s"] = round(time.perf_counter() - start, 3)
    if not changes:
        return phantom, report
    return phantom.replace(**changes), report
