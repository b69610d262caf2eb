"""Voxel geometry: the affine that maps array indices (z, y, x) to patient coordinates in metres.

hifield's patient frame is DICOM's LPS (x towards the patient's Left, y Posterior, z Superior), written
as 3-vectors in (z, y, x) order like the array axes. An affine ``A`` (4 x 4, float64) maps a voxel index
``(i_z, i_y, i_x, 1)`` to ``(z, y, x, 1)`` in metres. Conversions to NIfTI's RAS and DICOM's
ImagePositionPatient/ImageOrientationPatient happen only in :mod:`hifield.io`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def centred_affine(shape_zyx: tuple[int, int, int], voxel_size_m: tuple[float, float, float]) -> NDArray[np.float64]:
    """Affine of an axial grid centred on the isocentre (LPS, (z, y, x) order).

    The centre of the grid (index ``n // 2`` along each axis, the k-space centre convention) sits at 0.

    Parameters
    ----------
    shape_zyx
        Grid size ``(n_z, n_y, n_x)``.
    voxel_size_m
        Voxel size ``(dz, dy, dx)`` [m].

    Examples
    --------
    >>> a = centred_affine((1, 4, 4), (0.005, 0.001, 0.001))
    >>> (a @ [0, 2, 2, 1])[:3].tolist()
    [0.0, 0.0, 0.0]
    """
    affine = np.eye(4, dtype=np.float64)
    for axis, (n, d) in enumerate(zip(shape_zyx, voxel_size_m, strict=True)):
        affine[axis, axis] = d
        affine[axis, 3] = -(n // 2) * d
    return affine


def voxel_size_m(affine: NDArray[np.float64]) -> tuple[float, float, float]:
    """Voxel size ``(dz, dy, dx)`` [m] of an affine (column norms)."""
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    return (float(norms[0]), float(norms[1]), float(norms[2]))
