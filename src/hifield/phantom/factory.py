"""Build any of hifield's phantoms by name (``brain``, ``shepp-logan``, ``nist``, ``nist-t2``, ``water-fat``)."""

from __future__ import annotations

from typing import Any

from hifield.errors import ConfigError
from hifield.phantom.brain import brain_phantom
from hifield.phantom.phantom import Phantom
from hifield.phantom.shepp_logan import shepp_logan_phantom
from hifield.phantom.system import nist_phantom, water_fat_phantom

PHANTOM_KINDS: tuple[str, ...] = ("brain", "shepp-logan", "nist", "nist-t2", "water-fat")
"""Names accepted by :func:`make_phantom`."""

_ALIASES: dict[str, str] = {
    "brain": "brain",
    "shepp-logan": "shepp-logan",
    "shepplogan": "shepp-logan",
    "sl": "shepp-logan",
    "nist": "nist",
    "nist-t1": "nist",
    "nist-t2": "nist-t2",
    "water-fat": "water-fat",
    "waterfat": "water-fat",
    "fat-water": "water-fat",
}


def make_phantom(
    kind: str = "brain",
    *,
    b0_t: float = 3.0,
    matrix: int = 256,
    fov_m: float | None = None,
    oversampling: int = 1,
    n_slices: int = 1,
    slab_thickness_m: float | None = None,
    plane: str = "axial",
) -> Phantom:
    """A phantom by name at ``b0_t`` [T] on a grid of ``matrix x oversampling`` points per side over ``fov_m``.

    A scan makes its phantom with ``oversampling=2`` over the protocol's FOV: twice as fine as the reconstruction
    (no inverse crime). ``n_slices`` > 1 gives a 3D phantom; with ``slab_thickness_m`` it is the partition grid of a
    3D protocol's slab (``n_slices`` planes over the slab), which only the brain provides.

    Parameters
    ----------
    kind
        One of :data:`PHANTOM_KINDS` (case-insensitive; ``_`` for ``-`` and a few aliases such as ``sl`` accepted).
    b0_t
        Main field [T].
    matrix
        In-plane matrix before oversampling.
    fov_m
        Square in-plane field of view [m]; ``None`` takes the generator's default (0.24 m; NIST 0.16 m).
    oversampling
        Grid points per matrix point along x and y.
    n_slices
        Number of slices (planes); > 1 gives a 3D volume.
    slab_thickness_m
        Extent of the ``n_slices`` planes along z [m] (a 3D protocol's slab); ``None``: the generator's slices.
    plane
        ``"axial"``, ``"coronal"`` or ``"sagittal"`` (the brain; the test objects are always axial).

    Raises
    ------
    ConfigError
        Unknown kind, a slab for a test object, or any error of the generator (field range, sizes, memory).

    Examples
    --------
    >>> make_phantom("water-fat", matrix=32).tissue_names
    ('water', 'fat')
    >>> make_phantom("shepp-logan", matrix=16, fov_m=0.2, oversampling=2).shape
    (1, 32, 32)
    """
    key = _ALIASES.get(kind.strip().lower().replace("_", "-"))
    if key is None:
        raise ConfigError(f"unknown phantom {kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
    fov: dict[str, Any] = {} if fov_m is None else {"fov_m": fov_m}  # None: the generator's own default
    if slab_thickness_m is not None:
        if key != "brain":
            raise ConfigError(f"3D protocols run on the brain phantom (a volume); got --phantom {kind}")
        return brain_phantom(
            b0_t=b0_t,
            matrix=matrix,
            oversampling=oversampling,
            n_slices=n_slices,
            slice_thickness_m=slab_thickness_m / n_slices,
            plane=plane,
            **fov,
        )
    if key == "brain":
        return brain_phantom(b0_t=b0_t, matrix=matrix, oversampling=oversampling, n_slices=n_slices, plane=plane, **fov)
    grid = matrix * oversampling
    if key == "shepp-logan":
        return shepp_logan_phantom(b0_t=b0_t, matrix=grid, n_slices=n_slices, **fov)
    if key in ("nist", "nist-t2"):
        return nist_phantom(b0_t=b0_t, array="t2" if key == "nist-t2" else "t1", matrix=grid, n_slices=n_slices, **fov)
    return water_fat_phantom(b0_t=b0_t, matrix=grid, n_slices=n_slices, **fov)
