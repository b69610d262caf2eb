"""Images: reconstructed or reference arrays with their geometry and the acquisition facts behind them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hifield.data.raw import RawHeader
from hifield.errors import ConfigError


@dataclass(frozen=True)
class ImageHeader:
    """Geometry and provenance of an image."""

    affine: NDArray[np.float64]
    """4 x 4 affine: voxel index (z, y, x, 1) -> LPS position (z, y, x, 1) [m] (see data.geometry)."""
    acquisition: RawHeader | None = None
    """Header of the raw data this image was reconstructed from (None for synthetic images)."""
    recon_method: str = ""
    """Reconstruction that produced it, e.g. ``"sense"`` (empty for a ground truth)."""
    description: str = ""
    """Free text: what the image shows and how it was made (goes to DICOM ImageComments)."""

    def replace(self, **changes: object) -> ImageHeader:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Image:
    """Image data with shape ``(*other, coil, z, y, x)``; after coil combination the coil axis has size 1."""

    data: NDArray[np.complexfloating] | NDArray[np.floating]
    """Pixel values, shape ``(*other, coil, z, y, x)``, complex64 (or float32 for magnitude images)."""
    header: ImageHeader
    """Geometry and provenance."""
    extras: dict[str, NDArray[np.floating]] = dataclasses.field(default_factory=dict)
    """Maps that come with the image, each shaped like :attr:`data` (float32): a learned reconstruction's
    uncertainty (``dc_residual_kspace``, ``dc_residual_image``, ``dc_correction``, ``dc_significance``,
    ``null_space``, ``conformal_lower``/``_upper``)."""

    def __post_init__(self) -> None:
        if self.data.ndim < 4:
            raise ConfigError(f"image must have shape (*other, coil, z, y, x); got {self.data.shape}")

    @property
    def magnitude(self) -> NDArray[np.float32]:
        """``|data|`` as float32, same shape."""
        return np.abs(self.data).astype(np.float32)

    def replace(self, **changes: object) -> Image:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CoilMaps:
    """Coil sensitivity maps, shape ``(maps, coil, z, y, x)`` complex64 (maps = 1 or 2 ESPIRiT sets)."""

    maps: NDArray[np.complex64]
    """Sensitivities, shape ``(n_maps, coil, z, y, x)``."""
    method: str = ""
    """How they were obtained: ``"espirit"``, ``"walsh"`` or ``"true"``."""
