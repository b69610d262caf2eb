"""Trilinear sampling of volumes at arbitrary points, as ``scipy.ndimage.map_coordinates(order=1)`` does it.

The phantoms and field maps sample their templates at every voxel of a slice; doing it here in NumPy keeps
``import scipy.ndimage`` (some 0.2 s, most of it SciPy's array-API layer) out of a small simulation's process, and
several volumes of one grid share the interpolation weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["sample_linear"]


def sample_linear(
    volume: ArrayLike | Sequence[NDArray[np.generic]],
    coords: ArrayLike,
    *,
    mode: Literal["constant", "nearest"] = "constant",
    cval: float = 0.0,
    dtype: type[np.floating] = np.float32,
) -> NDArray[np.floating]:
    """Linear interpolation of ``volume`` at the index-space points ``coords``.

    Parameters
    ----------
    volume
        Array of any dimension ``d``, or a tuple/list of arrays of one shape (sampled at the same points with
        weights computed once; the result gets a leading axis, one entry per volume).
    coords
        Fractional indices, shape ``(d, ...)``; axis 0 runs over the volume's axes.
    mode
        ``"constant"``: a point outside ``[0, n - 1]`` on any axis takes ``cval`` (no interpolation towards
        ``cval`` at the edge, as ``map_coordinates(mode="constant")``); ``"nearest"``: points are clamped to the
        volume.
    cval
        Value outside the volume in ``"constant"`` mode.
    dtype
        Output dtype; weights and sums are computed in it.

    Returns
    -------
    ndarray
        Shape ``coords.shape[1:]``, or ``(n_volumes, *coords.shape[1:])`` for a sequence of volumes.

    Examples
    --------
    >>> sample_linear(np.array([1.0, 2.0, 4.0]), [[0.5, 1.75, 3.0]]).tolist()
    [1.5, 3.5, 0.0]
    >>> sample_linear((np.array([1.0, 2.0]), np.array([0.0, 4.0])), [[0.25]], mode="nearest").tolist()
    [[1.25], [1.0]]
    """
    many = isinstance(volume, (tuple, list))
    volumes = [np.asarray(v) for v in volume] if isinstance(volume, (tuple, list)) else [np.asarray(volume)]
    shape = volumes[0].shape
    if any(v.shape != shape for v in volumes):
        raise ValueError(f"volumes of different shapes: {[v.shape for v in volumes]}")
    c = np.asarray(coords, dtype=np.float64)
    if c.shape[0] != len(shape):
        raise ValueError(f"coords has {c.shape[0]} rows for a {len(shape)}-D volume")
    out_shape = c.shape[1:]
    ndim = len(shape)
    c = c.reshape(ndim, -1)
    upper = np.array(shape, dtype=np.float64)[:, np.newaxis] - 1.0
    if mode == "nearest":
        c = np.clip(c, 0.0, upper)
        inside = None
    elif mode == "constant":
        inside = np.all((c >= 0.0) & (c <= upper), axis=0)
    else:
        raise ValueError(f"mode must be 'constant' or 'nearest', not {mode!r}")
    base = np.clip(np.floor(c), 0.0, np.maximum(upper - 1.0, 0.0)).astype(np.intp)
    frac = (c - base).astype(dtype)
    corners = np.array(np.meshgrid(*[(0, 1) if n > 1 else (0,) for n in shape], indexing="ij")).reshape(ndim, -1).T
    weights = []
    for corner in corners:
        weight = np.ones(c.shape[1], dtype=dtype)
        for axis, step in enumerate(corner):
            weight *= frac[axis] if step else 1 - frac[axis]
        weights.append(weight)
    results = np.zeros((len(volumes), c.shape[1]), dtype=dtype)
    origins: dict[tuple[int, ...], NDArray[np.intp]] = {}
    for out, vol in zip(results, volumes, strict=True):
        if not (vol.flags.c_contiguous or vol.flags.f_contiguous):
            vol = np.ascontiguousarray(vol)
        flat = vol.ravel(order="A")  # a view in the volume's own memory order (NIfTI data are Fortran-ordered)
        strides = np.array(vol.strides, dtype=np.intp) // vol.itemsize
        key = tuple(strides.tolist())
        if key not in origins:
            origins[key] = strides @ base
        origin = origins[key]
        for corner, weight in zip(corners, weights, strict=True):
            out += weight * flat[origin + int(strides @ corner)].astype(dtype, copy=False)
    if inside is not None:
        results[:, ~inside] = cval
    results = results.reshape(len(volumes), *out_shape)
    return results if many else results[0]
