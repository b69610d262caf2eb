"""Peak-memory estimates of coil-map estimation and of each reconstruction, checked before anything is allocated.

The factors are measured, not guessed: ``tracemalloc`` peaks of every method on 128² and 256² problems with 8-32
coils (``tests/recon/test_memory.py`` checks that each estimate stays at or above the measured peak and within a
small factor of it). :func:`hifield.errors.check_memory` compares an estimate with ``--max-memory`` (or half the
machine's memory) and refuses with one line naming the size and the limit.
"""

from __future__ import annotations

import math

COMPLEX64_BYTES = 8

# Coil-grid complex64 arrays each method holds at once (k-space, coil images, maps, solver vectors), beyond the
# input k-space: measured peaks were fft 3.0-3.3, sense 5.2-6.2, cs 5.3-7.0, tv 5.3-6.3, pocs/homodyne 6.0-6.2
# and grappa 6 plus its chunked source matrices (``grappa._CHUNK_BYTES``, two of them at once).
_WORKING_COPIES = {"fft": 3.5, "sense": 7.0, "cs": 7.5, "tv": 7.0, "pocs": 7.0, "homodyne": 7.0, "grappa": 7.0}
_DEFAULT_COPIES = 8.0  # a method registered without a measured factor
# finufft's upsampled grid (factor 2 per axis, complex64, one per coil in a batched transform) and its samples
_NUFFT_UPSAMPLING = 2.0


def coil_map_memory_bytes(
    n_coils: int,
    image_shape: tuple[int, ...],
    *,
    method: str = "espirit",
    n_maps: int = 1,
    n_virtual: int | None = None,
    calib_shape: tuple[int, ...] = (1, 32, 32),
    kernel_width: int = 6,
) -> float:
    """Peak bytes of :func:`hifield.recon.estimate_coil_maps` on a grid ``image_shape`` (z, y, x).

    ESPIRiT first holds the calibration matrix of every ``kernel_width``-wide patch of the calibration region
    ``calib_shape`` (k2, k1, k0) and its Gram matrix in complex128. Then it builds the per-voxel
    ``n_virtual x n_virtual`` matrices in chunks of x columns of at most ``coil_maps._CHUNK_BYTES``, one chunk per
    core at a time (the coil pairs c <= c' of the last einsum stage, their conjugates and the full matrices: about
    three blocks of matrices for the columns in flight) and returns ``n_maps`` sets of maps for the physical coils.
    Walsh holds the smoothed covariance of every coil pair at every voxel twice (``n_coils² x voxels``) plus the
    power iteration's products, unchunked.

    Examples
    --------
    >>> round(coil_map_memory_bytes(8, (1, 256, 256), calib_shape=(1, 24, 32)) / 2**20)  # measured peak: 82 MiB
    114
    """
    from hifield.recon.coil_maps import _CHUNK_BYTES, espirit_kernel

    n_voxels = float(math.prod(image_shape))
    maps_bytes = COMPLEX64_BYTES * n_maps * n_coils * n_voxels
    if method == "walsh":
        return 2.5 * COMPLEX64_BYTES * n_coils * n_coils * n_voxels + 3.0 * maps_bytes
    nv = n_coils if n_virtual is None and n_coils <= 8 else min(n_coils, n_virtual or 8)
    kernel = list(espirit_kernel(tuple(int(n) for n in calib_shape), kernel_width, nv, warn=False))
    n_kernel = nv * math.prod(kernel)
    n_patches = math.prod(int(n) - k + 1 for n, k in zip(calib_shape, kernel, strict=True))
    calibration_bytes = 2 * COMPLEX64_BYTES * (n_patches * n_kernel + 3 * n_kernel * n_kernel)
    column_bytes = COMPLEX64_BYTES * nv * nv * n_voxels / max(1, image_shape[-1])
    chunk_columns = max(1, min(image_shape[-1], int(_CHUNK_BYTES // column_bytes)))
    grid_bytes = 3.0 * column_bytes * chunk_columns + 2.0 * maps_bytes + COMPLEX64_BYTES * n_maps * nv * n_voxels
    return calibration_bytes + grid_bytes  # the calibration matrices stay referenced during the grid phase


def reconstruction_memory_bytes(
    method: str,
    *,
    n_coils: int,
    image_shape: tuple[int, ...],
    n_frames: int = 1,
    n_samples: int | None = None,
    n_maps: int = 1,
) -> float:
    """Peak bytes of ``reconstruct(raw, method=...)`` once coil maps exist (see :func:`coil_map_memory_bytes`).

    Parameters
    ----------
    method
        A registered reconstructor name.
    n_coils, image_shape
        Receive channels and the image grid (z, y, x).
    n_frames
        Frames (the ``other`` axes) reconstructed one after another: their k-space and images are held together.
    n_samples
        Samples per coil of non-Cartesian data (None for Cartesian data on the grid).
    n_maps
        ESPIRiT map sets the solver carries.

    Examples
    --------
    >>> round(reconstruction_memory_bytes("sense", n_coils=16, image_shape=(1, 256, 256)) / 2**20)
    56
    """
    n_voxels = float(math.prod(image_shape))
    coil_grid = COMPLEX64_BYTES * n_coils * n_voxels
    copies = _WORKING_COPIES.get(method, _DEFAULT_COPIES)
    total = copies * coil_grid * max(1, n_maps) ** 0.5
    if method == "grappa":
        from hifield.recon.grappa import _CHUNK_BYTES as grappa_chunk

        total += 2.0 * grappa_chunk
    if n_samples is not None:  # NUFFT: the upsampled grid of every coil and the weighted samples
        n_axes = sum(1 for n in image_shape if n > 1)
        total += coil_grid * _NUFFT_UPSAMPLING**n_axes + 3.0 * COMPLEX64_BYTES * n_coils * n_samples
    # every frame's k-space and its image stay in memory while the frames are solved in turn
    total += max(0, n_frames - 1) * (COMPLEX64_BYTES * n_coils * (n_samples or n_voxels) + COMPLEX64_BYTES * n_voxels)
    return float(total)
