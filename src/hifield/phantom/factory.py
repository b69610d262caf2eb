"""Build any of hifield's phantoms by name (``brain``, ``shepp-logan``, ``nist``, ``nist-t2``, ``water-fat``)."""

from __future__ import annotations

from hifield.errors import ConfigError
from hifield.phantom.brain import brain_phantom
from hifield.phantom.phantom import Phantom
from hifield.phantom.shepp_logan import shepp_logan_phantom
from hifield.phantom.system import nist_phantom, water_fat_phantom

PHANTOM_KINDS: tuple[str, ...] = ("brain", "shepp-logan", "nist", "nist-t2", "water-fat")
"""Names accepted by :func:`make_phantom`."""


def make_phantom(
    kind: str = "brain", *, b0_t: float = 3.0, matrix: int = 256, n_slices: int = 1, plane: str = "axial"
) -> Phantom:
    """A phantom by name at ``b0_t`` [T] on a ``matrix`` x ``matrix`` grid (``n_slices`` > 1: 3D).

    ``plane`` (axial, coronal, sagittal) applies to the brain; the test objects are always axial.

    Raises
    ------
    ConfigError
        Unknown kind (or any error of the generator: field range, sizes, memory).

    Examples
    --------
    >>> make_phantom("water-fat", matrix=32).tissue_names
    ('water', 'fat')
    """
    key = kind.strip().lower().replace("_", "-")
    if key == "brain":
        return brain_phantom(b0_t=b0_t, matrix=matrix, n_slices=n_slices, plane=plane)
    if key in ("shepp-logan", "shepplogan", "sl"):
        return shepp_logan_phantom(b0_t=b0_t, matrix=matrix, n_slices=n_slices)
    if key in ("nist", "nist-t1"):
        return nist_phantom(b0_t=b0_t, array="t1", matrix=matrix, n_slices=n_slices)
    if key == "nist-t2":
        return nist_phantom(b0_t=b0_t, array="t2", matrix=matrix, n_slices=n_slices)
    if key in ("water-fat", "waterfat", "fat-water"):
        return water_fat_phantom(b0_t=b0_t, matrix=matrix, n_slices=n_slices)
    raise ConfigError(f"unknown phantom {kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
