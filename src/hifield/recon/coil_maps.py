"""Coil sensitivity estimation: ESPIRiT (Uecker et al. 2014) and Walsh's adaptive combination (Walsh et al. 2000)."""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import numpy as np
import scipy.linalg
import scipy.linalg.blas
from numpy.typing import NDArray

from hifield.backend import single_threaded_blas
from hifield.data import CoilMaps, RawData
from hifield.errors import ConfigError, ReconstructionError, check_memory
from hifield.ops.fft import ifftc
from hifield.recon.calibration import calibration_data
from hifield.recon.memory import coil_map_memory_bytes

_CHUNK_BYTES = 192 * 2**20
_COARSE_STEP = 4
"""Subsampling of the grid (per axis of at least 32 points) on which ESPIRiT's first map is found first."""
_FINE_ITERATIONS = 12
"""Power iterations on the full grid, from the coarse grid's eigenvectors."""

ESPIRIT_THRESHOLD = 0.001**0.5
"""Default relative singular-value threshold of the ESPIRiT calibration matrix: ``sigma_i / sigma_0 > sqrt(0.001)``,
the criterion of BART's ``ecalib`` default ``-t 0.001`` (which it applies to the squared singular values). The
former 0.02 kept more of the noise subspace: on BART's 8-coil 256 x 256 Shepp-Logan the maps reached further into
the background (support 74 % of the grid, BART's 71 %; now the same pixels) and SENSE lost 0.025 SSIM."""


def _power_iteration(
    g: NDArray[np.complex64], n_iter: int, start: NDArray[np.complex64] | None = None
) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
    """Dominant eigenpair of each Hermitian PSD matrix in ``g`` of shape ``(c, c, pixels)`` (pixels last).

    Returns the unit eigenvectors ``(pixels, c)`` and eigenvalues ``(pixels,)``. The matrix-vector products run
    as ``c`` vectorised multiply-adds over all pixels, which beats batched ``matmul`` on tiny matrices. ``start``
    ``(c, pixels)``: the vectors to iterate from (default: each matrix's column of largest diagonal entry).
    """
    n_c = g.shape[0]

    tmp = np.empty((n_c, g.shape[-1]), dtype=g.dtype)

    def apply(v: NDArray[np.complex64]) -> NDArray[np.complex64]:
        out = g[:, 0] * v[0]
        for j in range(1, n_c):
            np.multiply(g[:, j], v[j], out=tmp)
            out += tmp
        return out

    def normalise(v: NDArray[np.complex64]) -> NDArray[np.complex64]:
        norm = np.sqrt(np.sum(v.real**2 + v.imag**2, axis=0))
        return v / np.maximum(norm, np.finfo(np.float32).tiny)

    # start from the column of the largest diagonal entry: never orthogonal to the dominant eigenvector
    diag = np.stack([g[i, i].real for i in range(n_c)])
    col = np.argmax(diag, axis=0)
    first = np.take_along_axis(g, col[None, None, :], axis=1)[:, 0] if start is None else start
    v = normalise(first + np.complex64(1e-3 / np.sqrt(n_c)))
    for i in range(n_iter):
        v = apply(v)
        if i % 3 == 2 or i == n_iter - 1:  # eigenvalues are at most 1: renormalising every third step is safe
            v = normalise(v)
    gv = apply(v)
    eig = np.sqrt(np.sum(gv.real**2 + gv.imag**2, axis=0))
    return np.ascontiguousarray(v.T), eig.astype(np.float32)


def _align_phase(v: NDArray[np.complexfloating], ref: NDArray[np.complexfloating]) -> NDArray[np.complexfloating]:
    """Rotate each pixel's vector ``v`` (pixels, c) so that ``ref^H v`` is real and positive."""
    proj = v @ np.conj(ref)
    phase = np.where(np.abs(proj) > 0, np.conj(proj) / np.maximum(np.abs(proj), 1e-30), 1.0)
    return v * phase[:, None]


def _coil_basis(calib: NDArray[np.complex64]) -> NDArray[np.complex128]:
    """Left singular vectors of the calibration data ``(coil, samples)``: virtual coils, strongest first."""
    flat = calib.reshape(calib.shape[0], -1).astype(np.complex128)
    with single_threaded_blas():
        u, _, _ = np.linalg.svd(flat @ np.conj(flat.T))
    return u


def espirit_kernel(
    cal_shape: tuple[int, ...], kernel_width: int, n_virtual: int, *, warn: bool = True
) -> tuple[int, int, int]:
    """The ESPIRiT kernel ``(k2, k1, k0)`` for a calibration region: over-determined wherever the region allows.

    The kernel is ``kernel_width`` along each axis (at most the region's extent). The calibration matrix has one
    row per kernel position in the region and ``n_virtual * prod(kernel)`` columns; with fewer rows than columns
    (a small 3D region) its null space is not determined by the data and the maps are noise. The largest kernel
    extent is therefore shrunk by one until the rows are at least the columns, down to 3 along an axis (2 along an
    axis of fewer than 3 samples); a region too small even for that keeps the smallest kernel with a
    ``RuntimeWarning`` (unless ``warn`` is False).

    Examples
    --------
    >>> espirit_kernel((24, 24, 32), 6, 8)  # 19 * 19 * 27 rows >= 8 * 216 columns
    (6, 6, 6)
    >>> espirit_kernel((8, 10, 32), 6, 8)  # 3 * 5 * 27 rows < 8 * 216 columns: shrunk to 4 * 7 * 29 >= 8 * 80
    (5, 4, 4)
    >>> espirit_kernel((1, 24, 32), 6, 8)
    (1, 6, 6)
    """
    import warnings

    kernel = [min(int(kernel_width), int(n)) for n in cal_shape]
    floor = [min(3, int(n)) for n in cal_shape]

    def rows(k: list[int]) -> int:
        return math.prod(int(n) - ki + 1 for n, ki in zip(cal_shape, k, strict=True))

    while rows(kernel) < n_virtual * math.prod(kernel):
        shrinkable = [a for a in range(len(kernel)) if kernel[a] > floor[a]]
        if not shrinkable:
            if not warn:
                break
            warnings.warn(
                f"ESPIRiT calibration region {tuple(cal_shape)} gives {rows(kernel)} rows for "
                f"{n_virtual * math.prod(kernel)} kernel columns even with kernel {tuple(kernel)}; the maps may be "
                "inaccurate: acquire a larger calibration region",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        axis = max(shrinkable, key=lambda a: (kernel[a], a))
        kernel[axis] -= 1
    return kernel[0], kernel[1], kernel[2]


def espirit_maps(
    calib: NDArray[np.complex64],
    image_shape: tuple[int, int, int],
    *,
    kernel_width: int = 6,
    threshold: float = ESPIRIT_THRESHOLD,
    crop: float = 0.8,
    n_maps: int = 1,
    n_iter: int = 30,
    n_virtual: int | None = None,
) -> NDArray[np.complex64]:
    """ESPIRiT sensitivity maps from calibration k-space.

    1. Calibration matrix of all ``kernel_width``-wide patches (``kernel_width`` along each axis with at least that
       many calibration samples, 1 along a singleton axis, shrunk until the matrix has at least as many rows as
       columns: :func:`espirit_kernel`); its right singular vectors with singular value above
       ``threshold * max`` span the signal subspace ``V``.
    2. The projection ``P = V V^H`` becomes, per pixel, the coil x coil matrix ``G(r) = (1/K) sum_{q,q'}
       P[(c,q),(c',q')] exp(i 2 pi (q - q') r / N)`` (K kernel points), computed with one FFT per coil pair of the
       (2 kernel_width - 1)-wide difference kernel, in chunks along x to bound memory.
    3. Per pixel, the eigenvectors of ``G(r)`` with eigenvalue 1 are the sensitivities: power iterations (with
       deflation for a second map). Pixels whose eigenvalue is below ``crop`` are set to zero, so
       ``sum_c |S_c|^2`` is 1 where there is signal and 0 elsewhere. The phase is made relative to the strongest
       virtual coil.

    Coil compression: with ``n_virtual`` set (or by default when there are more than 8 coils, to 8 virtual
    coils), steps 1-3 run on the SVD-compressed coils ``U^H y`` (U: coil x n_virtual with orthonormal columns) and
    the maps are expanded back as ``U s_v``; this keeps ``||S(r)|| = 1`` and the maps apply to the physical coils.

    Parameters
    ----------
    calib
        Calibration k-space ``(coil, c2, c1, c0)``.
    image_shape
        Output grid ``(z, y, x)``.
    kernel_width
        Kernel size per axis.
    threshold
        Relative singular value threshold of the calibration matrix (:data:`ESPIRIT_THRESHOLD`, as BART's).
    crop
        Eigenvalue below which a map is set to zero (BART's default 0.8).
    n_maps
        Number of ESPIRiT map sets (1 or 2).
    n_iter
        Power iterations per map.
    n_virtual
        Virtual coils for the eigen-decomposition (None: all coils up to 8, else 8).

    Returns
    -------
    numpy.ndarray
        Maps ``(n_maps, coil, z, y, x)`` complex64.
    """
    if n_maps not in (1, 2):
        raise ConfigError(f"ESPIRiT supports 1 or 2 map sets; got n_maps={n_maps}")
    n_coils = calib.shape[0]
    u = _coil_basis(calib)
    if n_virtual is None:
        n_virtual = n_coils if n_coils <= 8 else 8
    n_virtual = max(1, min(int(n_virtual), n_coils))
    basis = u[:, :n_virtual]  # (coil, virtual)
    calib_v = np.einsum("cv,c...->v...", np.conj(basis), calib.astype(np.complex128))
    nc = n_virtual

    cal_shape = calib_v.shape[1:]
    kernel = espirit_kernel(cal_shape, kernel_width, nc)
    if any(n < k for n, k in zip(cal_shape, kernel, strict=True)) or np.prod(kernel) <= 1:
        raise ReconstructionError(
            f"calibration region {cal_shape} is too small for ESPIRiT kernel {kernel_width}; "
            "acquire more ACS lines or use --recon fft"
        )
    # patches: A[p, (c, q)] = y_c(p + q)
    windows = np.lib.stride_tricks.sliding_window_view(calib_v, kernel, axis=(1, 2, 3))
    # windows: (c, p2, p1, p0, q2, q1, q0) -> (p, c, q)
    n_patch = int(np.prod(windows.shape[1:4]))
    a = np.moveaxis(windows, 0, 3).reshape(n_patch, nc * int(np.prod(kernel))).astype(np.complex64)
    # A^H A in single precision (the signal subspace lies above 0.02^2 of the largest eigenvalue, far above
    # float32's rounding): its upper triangle by a Hermitian rank-k update, then LAPACK's MRRR driver, which is
    # 2-3x faster here than NumPy's complex128 eigh on the same 288 x 288 matrix
    # (BLAS single-threaded for every small product here: threads cost more than they give at these sizes, and far
    # more when another process holds a core)
    with single_threaded_blas():
        gram = scipy.linalg.blas.cherk(1.0, a, trans=2)
        eigval, eigvec = scipy.linalg.eigh(gram, lower=False, driver="evr", check_finite=False)
        eigvec = eigvec.astype(np.complex128)
        sigma = np.sqrt(np.maximum(eigval[::-1].astype(np.float64), 0.0))
        v = eigvec[:, ::-1][:, sigma > threshold * sigma[0]]
        w = np.conj(v)  # patch vectors (as columns) lie in span(conj(V))
        p = (w @ np.conj(w.T)).reshape(nc, *kernel, nc, *kernel)
    # D[c, c', d] = sum over q - q' = d of P[(c, q), (c', q')], d offset by kernel-1
    dshape = tuple(2 * k - 1 for k in kernel)
    d = np.zeros((nc, nc, *dshape), dtype=np.complex128)
    for q in np.ndindex(*kernel):
        block = p[(slice(None), *q)]  # (c, c', q'2, q'1, q'0)
        target = tuple(slice(qi, qi + k) for qi, k in zip(q, kernel, strict=True))
        d[(slice(None), slice(None), *target)] += block[..., ::-1, ::-1, ::-1]
    n_kernel = float(np.prod(kernel))

    # G(r) = (1/K) sum_d D[d] exp(i 2 pi d . r / N) is separable: three small DFT matrices (grid x (2k-1)),
    # far cheaper than one FFT per coil pair on the full grid; computed in chunks of x columns to bound memory
    nz, ny, nx = image_shape

    def dft(n: int, k: int) -> NDArray[np.complex64]:
        r = np.arange(n) - n // 2
        offsets = np.arange(2 * k - 1) - (k - 1)
        return np.exp(2j * np.pi * np.outer(r, offsets) / n).astype(np.complex64)

    ez, ey, ex = (dft(n, k) for n, k in zip(image_shape, kernel, strict=True))
    # G(r) is Hermitian: only the coil pairs c <= c' are transformed, the others are their conjugates
    upper = np.triu_indices(nc)
    d_pairs = (d[upper] / n_kernel).astype(np.complex64)  # (pair, 2k-1, 2k-1, 2k-1)
    maps_v = np.zeros((n_maps, nc, nz, ny, nx), dtype=np.complex64)
    ref = np.zeros(nc, dtype=np.complex64)
    ref[0] = 1.0  # strongest virtual coil
    # x columns in chunks that bound the memory, at least one per core: the chunks run on threads (NumPy's
    # products and elementwise loops release the GIL), BLAS single-threaded inside them
    n_workers = max(1, min(os.cpu_count() or 1, nx))
    chunk = max(1, min(int(_CHUNK_BYTES // (nc * nc * nz * ny * 8)), -(-nx // n_workers)))

    def matrices(rows_x: NDArray[np.complex64], rows_y: NDArray[np.complex64], rows_z: NDArray[np.complex64]) -> Any:
        """G at the grid points of the given DFT rows, ``(c, c, points)``."""
        t1 = np.einsum("pijl,xl->pijx", d_pairs, rows_x, optimize=True)
        t2 = np.einsum("pijx,yj->piyx", t1, rows_y, optimize=True)
        pairs = np.einsum("piyx,zi->pzyx", t2, rows_z, optimize=True).reshape(len(upper[0]), -1)
        g = np.empty((nc, nc, pairs.shape[-1]), dtype=np.complex64)
        g[upper[1], upper[0]] = np.conj(pairs)
        g[upper[0], upper[1]] = pairs
        return g

    # the first map's power iterations start from its eigenvectors on a grid 4 times coarser per axis (smooth
    # sensitivities: a few products then converge where 30 from an arbitrary start were needed)
    coarse = None
    steps = tuple(_COARSE_STEP if n >= 8 * _COARSE_STEP else 1 for n in image_shape)
    if n_maps == 1 and max(steps) > 1:
        with single_threaded_blas():
            g_coarse = matrices(ex[:: steps[2]], ey[:: steps[1]], ez[:: steps[0]])
        vec_coarse, _ = _power_iteration(g_coarse, n_iter)
        coarse = vec_coarse.reshape(-(-nz // steps[0]), -(-ny // steps[1]), -(-nx // steps[2]), nc)

    def one_chunk(start: int) -> None:
        stop = min(nx, start + chunk)
        g = matrices(ex[start:stop], ey, ez)
        for m in range(n_maps):
            if m == 0 and coarse is not None:
                near = coarse[
                    np.arange(nz)[:, None, None] // steps[0],
                    np.arange(ny)[None, :, None] // steps[1],
                    np.arange(start, stop)[None, None, :] // steps[2],
                ]
                vec, eig = _power_iteration(g, _FINE_ITERATIONS, start=near.reshape(-1, nc).T)
            else:
                vec, eig = _power_iteration(g, n_iter)
            if m + 1 < n_maps:
                vt = vec.T
                g = g - eig[None, None, :] * (vt[:, None, :] * np.conj(vt[None, :, :]))
            vec = _align_phase(vec, ref) * (eig > crop)[:, None]
            maps_v[m, :, :, :, start:stop] = np.moveaxis(vec.reshape(nz, ny, stop - start, nc), -1, 0)

    starts = list(range(0, nx, chunk))
    with single_threaded_blas():
        if n_workers > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            from hifield._interrupt import interrupts_held

            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                for first in range(0, len(starts), n_workers):
                    # a SIGINT/SIGTERM waits for the batch's threads and raises between batches, never inside the
                    # pool's waits with chunks still running
                    with interrupts_held():
                        list(pool.map(one_chunk, starts[first : first + n_workers]))
        else:
            for start in starts:
                one_chunk(start)
    # back to the physical coils: one (coil x virtual) @ (virtual x pixels) product per map set (BLAS; an einsum
    # over the same axes took 12 ms at 256 x 256)
    with single_threaded_blas():
        expanded = basis.astype(np.complex64) @ maps_v.reshape(n_maps, nc, -1)
    return expanded.reshape(n_maps, n_coils, nz, ny, nx)


def walsh_maps(
    calib: NDArray[np.complex64],
    image_shape: tuple[int, int, int],
    *,
    smoothing: int = 5,
    n_iter: int = 30,
) -> NDArray[np.complex64]:
    """Walsh adaptive-combination maps from low-resolution coil images (Walsh, Gmitro & Marcellin 2000).

    The calibration k-space is Hann-windowed, zero-padded to ``image_shape`` and inverse transformed; per pixel the
    coil covariance ``m m^H``, box-smoothed over ``smoothing`` pixels along each non-singleton axis, gives the
    sensitivity as its dominant eigenvector (unit norm, phase relative to the strongest virtual coil).

    Returns
    -------
    numpy.ndarray
        Maps ``(1, coil, z, y, x)`` complex64.
    """
    from scipy.ndimage import uniform_filter

    nc = calib.shape[0]
    window = np.ones(calib.shape[1:], dtype=np.float32)
    for axis, n in enumerate(calib.shape[1:]):
        if n > 1:
            shape = [1, 1, 1]
            shape[axis] = n
            window = window * np.hanning(n + 2)[1:-1].astype(np.float32).reshape(shape)
    kspace = np.zeros((nc, *image_shape), dtype=np.complex64)
    starts = [n // 2 - c // 2 for n, c in zip(image_shape, calib.shape[1:], strict=True)]
    box = tuple(slice(s, s + c) for s, c in zip(starts, calib.shape[1:], strict=True))
    kspace[(slice(None), *box)] = calib * window
    images = ifftc(kspace)
    size = [smoothing if n > 1 else 1 for n in image_shape]
    cov = np.empty((*image_shape, nc, nc), dtype=np.complex64)
    for i in range(nc):
        for j in range(i, nc):
            prod = images[i] * np.conj(images[j])
            sm = uniform_filter(prod.real, size=size, mode="wrap") + 1j * uniform_filter(
                prod.imag, size=size, mode="wrap"
            )
            cov[..., i, j] = sm
            cov[..., j, i] = np.conj(sm)
    g = np.ascontiguousarray(np.moveaxis(cov.reshape(-1, nc, nc), 0, -1))
    vec, _ = _power_iteration(g, n_iter)
    u = _coil_basis(calib).astype(np.complex64)
    vec = _align_phase(vec, u[:, 0])
    return np.moveaxis(vec.reshape(*image_shape, nc), -1, 0)[None].astype(np.complex64)


def estimate_coil_maps(
    raw: RawData,
    *,
    method: Literal["espirit", "walsh"] = "espirit",
    kernel_width: int = 6,
    threshold: float = ESPIRIT_THRESHOLD,
    crop: float = 0.8,
    n_maps: int = 1,
    calib_size: int = 32,
    n_virtual: int | None = None,
) -> CoilMaps:
    """Estimate coil sensitivity maps from the fully sampled calibration region of Cartesian raw data.

    Parameters
    ----------
    raw
        Cartesian raw data ``(*other, coil, k2, k1, k0)``; the first ``other`` index is used. The calibration
        region is ``raw.calibration`` or, when that is None, the fully sampled box around the centre of the mask.
    method
        ``"espirit"`` (see :func:`espirit_maps`) or ``"walsh"`` (see :func:`walsh_maps`).
    kernel_width
        ESPIRiT kernel size per axis.
    threshold
        ESPIRiT relative singular value threshold (:data:`ESPIRIT_THRESHOLD`, as BART's ``ecalib -t 0.001``).
    crop
        ESPIRiT eigenvalue threshold below which maps are zero.
    n_maps
        ESPIRiT map sets (1 or 2).
    calib_size
        At most this many calibration samples per axis are used (centred), like BART's ``ecalib -r``.
    n_virtual
        Virtual coils for ESPIRiT's eigen-decomposition (see :func:`espirit_maps`).

    Returns
    -------
    CoilMaps
        Maps ``(maps, coil, z, y, x)`` complex64 with ``sum_c |S_c|^2 = 1`` where there is signal.

    Raises
    ------
    ReconstructionError
        No fully sampled calibration region, or NaN/inf in k-space.
    ConfigError
        Unknown method.
    """
    if method not in ("espirit", "walsh"):
        raise ConfigError(f"unknown coil map method {method!r}; use 'espirit' or 'walsh'")
    if not np.all(np.isfinite(raw.kspace)):
        raise ReconstructionError("k-space contains NaN or infinite values; check the data source or simulation")
    calib: NDArray[np.complex64] | None
    if raw.trajectory is not None:
        from hifield.recon.noncartesian import calibration_kspace

        calib = calibration_kspace(raw, calib_size=calib_size)
    else:
        calib = calibration_data(raw, max_size=calib_size)
    if calib is None:
        raise ReconstructionError(
            f"no fully sampled calibration (ACS) region found for {method} coil maps; "
            "acquire ACS lines or use --recon fft"
        )
    image_shape = tuple(int(n) for n in (raw.header.matrix if raw.trajectory is not None else raw.kspace.shape[-3:]))
    shape3 = (image_shape[0], image_shape[1], image_shape[2])
    n_coils = int(calib.shape[0])
    check_memory(
        coil_map_memory_bytes(
            n_coils,
            shape3,
            method=method,
            n_maps=n_maps,
            n_virtual=n_virtual,
            calib_shape=tuple(calib.shape[1:]),
            kernel_width=kernel_width,
        ),
        what=f"{method} coil maps of {n_coils} coils on a {'x'.join(map(str, shape3))} grid",
        hint="compress the coils, use a smaller grid or raise --max-memory",
    )
    if method == "espirit":
        maps = espirit_maps(
            calib,
            shape3,
            kernel_width=kernel_width,
            threshold=threshold,
            crop=crop,
            n_maps=n_maps,
            n_virtual=n_virtual,
        )
    else:
        maps = walsh_maps(calib, shape3)
    return CoilMaps(maps=maps.astype(np.complex64), method=method)
