"""Memory-bounded 3D compressed sensing: decoupled along the fully sampled readout, groups of x-slices solved apart."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.recon.cartesian import solve_cs
from hifield.recon.config import CsConfig

Complex = NDArray[np.complex64]

MapsForSlices = Callable[[slice], Complex]
"""``x_range -> maps (coil, z, y, len(x_range))``: the coil sensitivities of one group of x-slices (made on demand,
so the whole 3D map set never has to be held)."""

_TRANSFORM_BLOCK_BYTES = 64 * 2**20


def hybrid_in_place(kspace: Complex) -> Complex:
    """Inverse centred FFT of ``kspace`` ``(coil, k2, k1, k0)`` along the readout k0, in place, block by block.

    The result is hybrid space ``(coil, k2, k1, x)``: each x-slice is then an independent 2D (k2, k1) encoding
    problem, because the mask does not depend on k0. Blocks of partitions are transformed in turn, so the extra
    memory is one block (:data:`_TRANSFORM_BLOCK_BYTES`), not a second copy of the data.
    """
    if kspace.dtype != np.complex64 or kspace.ndim != 4:
        raise ConfigError(f"hybrid transform needs complex64 k-space (coil, k2, k1, k0); got {kspace.dtype}")
    n_coils, n2, n1, n0 = kspace.shape
    per_partition = n_coils * n1 * n0 * 8
    step = max(1, _TRANSFORM_BLOCK_BYTES // per_partition)
    for start in range(0, n2, step):
        block = kspace[:, start : start + step]
        out = scipy.fft.fftshift(
            scipy.fft.ifft(scipy.fft.ifftshift(block, axes=-1), axis=-1, norm="ortho", workers=-1), axes=-1
        )
        block[...] = out
    return kspace


def _group_normal(maps: Complex, mask: NDArray[np.bool_]) -> Callable[[Complex], Complex]:
    """``E^H E`` of one group: image ``(g, z, y, 1)`` -> same, with maps ``(g, coil, z, y)`` and mask ``(z, y)``."""
    conj_maps = np.conj(maps)
    sampled = mask[np.newaxis, np.newaxis]

    def normal(x: Complex) -> Complex:
        coil_images = maps * x[:, np.newaxis, :, :, 0]
        k = scipy.fft.fft2(coil_images, axes=(-2, -1), norm="ortho", workers=-1, overwrite_x=True)
        k *= sampled
        back = scipy.fft.ifft2(k, axes=(-2, -1), norm="ortho", workers=-1, overwrite_x=True)
        back *= conj_maps
        return np.sum(back, axis=1)[..., np.newaxis].astype(np.complex64, copy=False)

    return normal


def reconstruct_cs_chunked(
    kspace: Complex,
    mask: NDArray[np.bool_],
    maps_for: MapsForSlices,
    *,
    group: int = 8,
    config: CsConfig | None = None,
) -> Complex:
    """L1-wavelet CS of a 3D Cartesian volume, one group of x-slices at a time (memory-bounded).

    The readout (k0, x) is fully sampled, so after an inverse FFT along it (:func:`hybrid_in_place`, which
    overwrites ``kspace``) every x-slice is a 2D SENSE problem over (k2, k1) with its own coil maps. Groups of
    ``group`` slices are solved independently by the same FISTA as ``reconstruct(method="cs")``
    (:func:`hifield.recon.cartesian.solve_cs`) with a 2D (z, y) wavelet per slice, so the peak memory is the
    k-space, the image and one group's working set (:func:`chunked_cs_memory_bytes`), whatever the volume.

    Parameters
    ----------
    kspace
        Multi-coil k-space ``(coil, k2, k1, k0)`` complex64, zero where not acquired; overwritten with hybrid space.
    mask
        Acquired (k2, k1) points, shape ``(k2, k1)`` or ``(k2, k1, 1)`` (the same for every k0).
    maps_for
        Coil maps of a range of x-slices, ``(coil, z, y, x_range)``, unit norm where there is signal.
    group
        x-slices per group.
    config
        CS settings (``lambda_rel`` relative to each group's own ``max |W E^H y|``).

    Returns
    -------
    numpy.ndarray
        The image ``(z, y, x)`` complex64, in the units of the input.
    """
    cfg = config or CsConfig()
    if group < 1:
        raise ConfigError(f"group of x-slices must be at least 1; got {group}")
    n_coils, n2, n1, n0 = kspace.shape
    plane = np.asarray(mask, dtype=bool).reshape(n2, n1)
    sampled = np.fft.ifftshift(plane)  # the group FFTs are uncentred: shift the mask, not the data
    hybrid = hybrid_in_place(kspace)
    image = np.zeros((n2, n1, n0), dtype=np.complex64)
    for start in range(0, n0, group):
        stop = min(n0, start + group)
        xs = slice(start, stop)
        maps = np.ascontiguousarray(np.moveaxis(maps_for(xs), -1, 0)).astype(np.complex64, copy=False)
        if maps.shape != (stop - start, n_coils, n2, n1):
            raise ConfigError(f"maps_for({xs}) gave {maps.shape}; expected {(n_coils, n2, n1, stop - start)}")
        maps = np.fft.ifftshift(maps, axes=(-2, -1))
        data = np.fft.ifftshift(np.moveaxis(hybrid[..., xs], -1, 0), axes=(-2, -1))  # (g, coil, k2, k1)
        aty = np.sum(np.conj(maps) * scipy.fft.ifft2(data * sampled, axes=(-2, -1), norm="ortho", workers=-1), axis=1)[
            ..., np.newaxis
        ].astype(np.complex64)
        del data
        lipschitz = float(np.max(np.sum(np.abs(maps) ** 2, axis=1)))
        solved = solve_cs(_group_normal(maps, sampled), aty, lipschitz, cfg)
        image[..., xs] = np.moveaxis(np.fft.fftshift(solved[..., 0], axes=(-2, -1)), 0, -1)
    return image


def chunked_cs_memory_bytes(
    n_coils: int, shape: tuple[int, int, int], *, group: int = 8, include_kspace: bool = True
) -> float:
    """Peak bytes of :func:`reconstruct_cs_chunked` on a ``(z, y, x)`` volume with ``n_coils`` coils.

    The k-space (held by the caller and transformed in place; counted when ``include_kspace``), then the larger of
    the readout transform (two copies of one block of partitions) and the solve: the image, and per group five
    coil-image stacks (maps, their conjugate and shifted copy, the normal operator's coil images and k-space) and a
    dozen image-sized vectors (FISTA's iterates, gradient and wavelet coefficients), plus 2 MiB of fixed overhead.
    Measured with ``tracemalloc`` (``tests/recon/test_chunked.py``, ``benchmarks/cs_volume_memory.py``).

    Examples
    --------
    >>> round(chunked_cs_memory_bytes(16, (176, 256, 256), group=8) / 2**30, 2)
    1.71
    """
    nz, ny, nx = shape
    c8 = 8.0
    kspace = c8 * n_coils * nz * ny * nx if include_kspace else 0.0
    image = c8 * nz * ny * nx
    per_partition = c8 * n_coils * ny * nx
    block = per_partition * min(nz, max(1, int(_TRANSFORM_BLOCK_BYTES // per_partition)))
    coil_stack = c8 * group * n_coils * nz * ny
    solve = image + 5.0 * coil_stack + 12.0 * c8 * group * nz * ny + 2 * 2**20
    return kspace + max(2.05 * block, solve)
