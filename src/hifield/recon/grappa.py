"""GRAPPA (Griswold et al. 2002): missing k-space from acquired neighbours across coils, 1D (k1) or 2D (k2, k1)."""

from __future__ import annotations

from typing import ParamSpec, TypeVar

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from hifield.backend import single_threaded_blas
from hifield.errors import ReconstructionError
from hifield.recon.config import GrappaConfig
from hifield.recon.grappa_lattice import Lattice, detect_lattice, inscribed

Complex = NDArray[np.complex64]
P = ParamSpec("P")
T = TypeVar("T")

_NO_ACS = "no fully sampled calibration (ACS) region found for GRAPPA; acquire ACS lines or use --recon fft"
_CHUNK_BYTES = 64 * 2**20  # source matrices are gathered in chunks of at most this size


def _acceleration(lines: NDArray[np.bool_], acs: slice) -> int:
    """Most common spacing of acquired k1 lines outside the calibration block."""
    idx = np.flatnonzero(lines)
    outside = idx[(idx < acs.start) | (idx >= acs.stop)]
    if outside.size < 2:
        return 1
    gaps = np.diff(outside)
    gaps = gaps[gaps < (acs.stop - acs.start) + 1]  # ignore the jump across the calibration block
    if gaps.size == 0:
        return 1
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])


def _solve_normal(gram: NDArray[np.complex128], rhs: NDArray[np.complex128], lambda_rel: float) -> NDArray:
    """Weights ``W = (S^H S + lambda I)^-1 S^H T`` from ``gram = S^H S``, ``rhs = S^H T``.

    ``lambda = lambda_rel * sigma_max(S)^2``, the largest eigenvalue of ``S^H S``: scale-free.
    """
    lam = lambda_rel * _largest_eigenvalue(gram)
    return scipy.linalg.solve(gram + lam * np.eye(gram.shape[0]), rhs, assume_a="pos")


def _largest_eigenvalue(gram: NDArray[np.complex128], n_iter: int = 50) -> float:
    """Largest eigenvalue of a Hermitian positive semi-definite matrix by power iteration (a few % suffice here)."""
    v = np.ones(gram.shape[0], dtype=gram.dtype) / np.sqrt(gram.shape[0])
    value = 0.0
    for _ in range(n_iter):
        w = gram @ v
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 0.0
        v = w / value
    return float(np.real(np.vdot(v, gram @ v)))


def _patches(kspace: Complex, rows: NDArray[np.intp], offsets: NDArray[np.intp], width: int) -> Complex:
    """Source vectors ``(len(rows) * k0, coil * len(offsets) * width)`` around each row and readout sample."""
    n_coils, _, n0 = kspace.shape
    half = width // 2
    padded = np.pad(kspace, ((0, 0), (0, 0), (half, width - 1 - half)))
    src = padded[:, rows[:, None] + offsets[None, :], :]  # (coil, rows, blocks, k0 + width - 1)
    win = np.lib.stride_tricks.sliding_window_view(src, width, axis=-1)  # (coil, rows, blocks, k0, width)
    return np.ascontiguousarray(np.moveaxis(win, 3, 1).transpose(2, 1, 0, 3, 4)).reshape(
        len(rows) * n0, n_coils * len(offsets) * width
    )


@single_threaded_blas()
def grappa_plane(kspace: Complex, lines: NDArray[np.bool_], acs: slice, config: GrappaConfig) -> Complex:
    """Fill the missing k1 lines of one ``(coil, k1, k0)`` plane (1D acceleration); acquired lines are kept.

    The kernel spans ``config.kernel_lines`` acquired lines (R apart) by ``config.kernel_readout`` readout
    samples; R is the most common spacing of the acquired lines outside the calibration block. A missing line is
    filled only where all its source lines were acquired (so the outermost missing lines may stay zero).

    Parameters
    ----------
    kspace
        K-space of one k2 plane ``(coil, k1, k0)``, zeros on missing lines.
    lines
        Acquired k1 lines (bool, length k1).
    acs
        The fully sampled k1 block used to fit the kernel.
    config
        Kernel size and regularisation.

    Returns
    -------
    NDArray[np.complex64]
        The filled plane ``(coil, k1, k0)``.

    Raises
    ------
    ReconstructionError
        If the calibration block is too small for the kernel.
    """
    n_coils, n1, n0 = kspace.shape
    r = _acceleration(lines, acs)
    if r <= 1:
        return kspace.copy()
    blocks = max(2, int(config.kernel_lines))
    offsets = (np.arange(blocks) - (blocks // 2 - 1)) * r  # e.g. R=3, 2 blocks: [0, 3]; 4 blocks: [-3, 0, 3, 6]
    targets = np.arange(1, r)
    width = int(config.kernel_readout)
    # training positions: every base row in the ACS block whose sources and targets are all inside it
    lo = acs.start - offsets.min()
    hi = acs.stop - max(offsets.max(), r - 1)
    if hi <= lo:
        raise ReconstructionError(
            f"calibration block of {acs.stop - acs.start} lines is too small for a GRAPPA kernel at R={r}; "
            "acquire more ACS lines or use --recon sense"
        )
    base = np.arange(lo, hi)
    src = _patches(kspace, base, offsets, width).astype(np.complex128)
    tgt = kspace[:, base[:, None] + targets[None, :], :]  # (coil, base, targets, k0)
    tgt = np.ascontiguousarray(tgt.transpose(1, 3, 0, 2)).reshape(len(base) * n0, n_coils * len(targets))
    src_h = np.conj(src.T)
    weights = _solve_normal(src_h @ src, src_h @ tgt.astype(np.complex128), config.lambda_rel)
    # apply at every acquired base line whose source lines were acquired
    out = kspace.copy()
    idx = np.flatnonzero(lines)
    pos = idx[:, None] + offsets[None, :]
    inside = np.all((pos >= 0) & (pos < n1), axis=1)
    ok = inside & np.all(lines[np.clip(pos, 0, n1 - 1)], axis=1)
    if not ok.any():
        return out
    rows = idx[ok].astype(np.intp)
    est = (_patches(kspace, rows, offsets, width).astype(np.complex128) @ weights).reshape(
        len(rows), n0, n_coils, len(targets)
    )
    for t_i, t in enumerate(targets):
        dest = rows + t
        keep = (dest < n1) & ~lines[np.minimum(dest, n1 - 1)]
        if keep.any():
            out[:, dest[keep], :] = est[keep, :, :, t_i].transpose(2, 0, 1).astype(np.complex64)
    return out


def _gather(
    kspace: NDArray, z: NDArray[np.intp], y: NDArray[np.intp], disp: NDArray[np.intp], width: int
) -> NDArray[np.complex128]:
    """Source matrix ``(len(z) * n0, coil * len(disp) * width)``; ``kspace`` is padded so all indices are valid.

    ``kspace`` is ``(coil, k2, k1, k0 + width - 1)``; row ``m * n0 + x`` holds, for target ``(z[m], y[m])`` and
    readout sample ``x``, the samples ``kspace[c, z + dz, y + dy, x : x + width]`` over coils and displacements.
    """
    n_coils = kspace.shape[0]
    n0 = kspace.shape[-1] - width + 1
    src = kspace[:, z[:, None] + disp[None, :, 0], y[:, None] + disp[None, :, 1], :]  # (coil, m, d, k0')
    win = np.lib.stride_tricks.sliding_window_view(src, width, axis=-1)  # (coil, m, d, n0, width)
    return np.ascontiguousarray(win.transpose(1, 3, 0, 2, 4), dtype=np.complex128).reshape(
        len(z) * n0, n_coils * len(disp) * width
    )


def _sources_acquired(lines: NDArray[np.bool_], disp: NDArray[np.intp], outside: bool) -> NDArray[np.bool_]:
    """Positions ``p`` of the (k2, k1) grid with ``lines[p + d]`` for every ``d`` in ``disp``.

    ``outside`` is what a source beyond the grid counts as (True: zero-padded k-space, False: not acquired).
    """
    n2, n1 = lines.shape
    h2, h1 = int(np.abs(disp[:, 0]).max()), int(np.abs(disp[:, 1]).max())
    padded = np.pad(lines, ((h2, h2), (h1, h1)), constant_values=outside)
    ok = np.ones((n2, n1), dtype=bool)
    for dz, dy in disp:
        ok &= padded[h2 + dz : h2 + dz + n2, h1 + dy : h1 + dy + n1]
    return ok


def _fit(
    cal: Complex, z: NDArray[np.intp], y: NDArray[np.intp], disp: NDArray[np.intp], width: int, lambda_rel: float
) -> NDArray[np.complex128]:
    """Kernel weights ``(coil * len(disp) * width, coil)`` from the training positions ``(z, y)`` of ``cal``.

    Normal equations accumulated in chunks (bounded memory), then the Tikhonov solve of :func:`_solve_normal`.
    """
    n_coils, c0 = cal.shape[0], cal.shape[-1]
    hw = width // 2
    n_cols = n_coils * len(disp) * width
    gram = np.zeros((n_cols, n_cols), dtype=np.complex128)
    rhs = np.zeros((n_cols, n_coils), dtype=np.complex128)
    step = max(1, _CHUNK_BYTES // (16 * c0 * n_cols))
    for s in range(0, len(z), step):
        zc, yc = z[s : s + step], y[s : s + step]
        src = _gather(cal, zc, yc, disp, width)
        tgt = cal[:, zc, yc, hw : c0 - (width - 1 - hw)]  # (coil, m, c0 - width + 1)
        tgt_mat = np.ascontiguousarray(tgt.transpose(1, 2, 0), dtype=np.complex128).reshape(-1, n_coils)
        src_h = np.conj(src.T)
        gram += src_h @ src
        rhs += src_h @ tgt_mat
    return _solve_normal(gram, rhs, lambda_rel)


def _displacements(lattice: Lattice, target: tuple[int, int], half: tuple[int, int]) -> NDArray[np.intp]:
    """Acquired lattice positions relative to a target of cell offset ``target`` within ``+-half`` (k2, k1)."""
    gz, gy = (g.ravel() for g in np.mgrid[-half[0] : half[0] + 1, -half[1] : half[1] + 1])
    on = lattice.on(lattice.period)[(target[0] + gz) % lattice.period[0], (target[1] + gy) % lattice.period[1]]
    return np.stack([gz[on], gy[on]], axis=-1).astype(np.intp)


@single_threaded_blas()
def grappa_volume(
    kspace: Complex, lines: NDArray[np.bool_], acs: tuple[slice, slice, slice], config: GrappaConfig
) -> Complex:
    """Fill the missing (k2, k1) readouts of one 3D volume ``(coil, k2, k1, k0)`` with 3D GRAPPA kernels.

    The sampling lattice is detected outside the calibration block (:func:`detect_lattice`: R_z x R_y,
    CAIPIRINHA shifts included). Each missing offset of the lattice cell gets its own kernel: the acquired lattice
    positions within ``+-(kernel_partitions // 2) * R_z`` along k2 and ``+-(kernel_lines // 2) * R_y`` along k1 of
    the target, each with ``kernel_readout`` readout samples, all coils; it predicts all coils at the target.
    Offsets with the same source geometry share one set of weights. The weights are fitted wherever the target
    and all its sources were acquired (the calibration region, whatever its shape; readouts within ``acs[2]``) by
    Tikhonov-regularised least squares, ``W = (S^H S + lambda I)^-1 S^H T`` with
    ``lambda = lambda_rel * sigma_max(S)^2``. Sources outside the grid, or in the cut corners of an elliptical
    corner cut, count as zero; a missing position is filled where all its other sources were acquired (cut
    corners stay zero). Acquired samples are kept exactly.

    Parameters
    ----------
    kspace
        K-space ``(coil, k2, k1, k0)``, zeros where not acquired.
    lines
        Acquired (k2, k1) readouts, shape ``(k2, k1)``.
    acs
        The fully sampled calibration box ``(k2, k1, k0)``.
    config
        Kernel size and regularisation.

    Returns
    -------
    NDArray[np.complex64]
        The filled k-space ``(coil, k2, k1, k0)``.

    Raises
    ------
    ReconstructionError
        If the pattern is not a lattice, or the calibration region gives fewer equations than kernel weights.

    Examples
    --------
    Four coils whose maps are linear phases shift the k-space by one sample along k2 and/or k1, so every missing
    sample of a 2 x 2 CAIPIRINHA lattice is an acquired sample of another coil: GRAPPA recovers it exactly.

    >>> from hifield.ops import fftc
    >>> from hifield.sampling.caipi import caipi_lattice
    >>> obj = np.random.default_rng(0).standard_normal((16, 24, 8))
    >>> z, y = np.meshgrid(np.arange(16) / 16, np.arange(24) / 24, indexing="ij")
    >>> maps = np.stack([np.exp(2j * np.pi * (a * z + b * y))[..., None] for a, b in [(0, 0), (1, 0), (0, 1), (1, 1)]])
    >>> full = fftc(maps * obj).astype(np.complex64)
    >>> lines = caipi_lattice((16, 24), ry=2, rz=2, shift=1)
    >>> lines[4:12, 6:18] = True  # 8 x 12 calibration block
    >>> acs = (slice(4, 12), slice(6, 18), slice(0, 8))
    >>> filled = grappa_volume(full * lines[..., None], lines, acs, GrappaConfig(kernel_readout=1, lambda_rel=1e-9))
    >>> inner = (slice(None), slice(2, -2), slice(2, -2))  # the circular shift wraps at the edges
    >>> err = np.linalg.norm((filled - full)[inner]) / np.linalg.norm(full[inner])
    >>> bool(err < 1e-5), bool(np.array_equal(filled[:, lines], full[:, lines]))
    (True, True)
    """
    n_coils, n2, n1, n0 = kspace.shape
    lines = np.asarray(lines, dtype=bool)
    lattice = detect_lattice(lines, (acs[0], acs[1]))
    out = kspace.copy()
    if lattice.acceleration <= 1:
        return out
    half = (max(1, int(config.kernel_partitions) // 2) * lattice.rz, max(1, int(config.kernel_lines) // 2) * lattice.ry)
    width = int(config.kernel_readout)
    hw = width // 2
    # calibration readout range; the kernel is fitted where its readout window fits inside it
    cal = kspace[:, :, :, acs[2]]
    c0 = cal.shape[-1]
    if c0 < width:
        raise ReconstructionError(
            f"calibration block of {c0} readout samples is narrower than the GRAPPA kernel ({width}); "
            "use a smaller kernel_readout or --recon sense"
        )
    padded = np.pad(kspace, ((0, 0), (half[0], half[0]), (half[1], half[1]), (hw, width - 1 - hw)))
    # group the missing cell offsets by their source geometry: one set of weights per group
    groups: dict[tuple[tuple[int, int], ...], list[tuple[int, int]]] = {}
    pz, py = lattice.period
    for tz in range(pz):
        for ty in range(py):
            if (tz, ty) in lattice.acquired:
                continue
            disp = _displacements(lattice, (tz, ty), half)
            groups.setdefault(tuple(map(tuple, disp.tolist())), []).append((tz, ty))
    zz, yy = np.meshgrid(np.arange(n2), np.arange(n1), indexing="ij")
    # a corner cut leaves its corners zero: they serve as (zero) sources and are not filled
    support = inscribed((n2, n1)) if lattice.corner_cut else np.ones((n2, n1), dtype=bool)
    known = lines | ~support
    for key, offsets in groups.items():
        disp = np.asarray(key, dtype=np.intp).reshape(-1, 2)
        if disp.size == 0:
            continue
        # training: every position where the target and all its sources were acquired (the calibration region)
        train_z, train_y = (a.astype(np.intp) for a in np.nonzero(lines & _sources_acquired(lines, disp, False)))
        n_rows, n_weights = train_z.size * (c0 - width + 1), n_coils * len(disp) * width
        if n_rows < n_weights:
            raise ReconstructionError(
                f"calibration region too small for a GRAPPA kernel at R={lattice.rz}x{lattice.ry}: {n_rows} "
                f"equations for {n_weights} weights; acquire a larger ACS block or use --recon sense"
            )
        weights = _fit(cal, train_z, train_y, disp, width, config.lambda_rel)
        # targets: missing positions of these offsets whose in-grid sources were all acquired
        of_group = np.zeros((pz, py), dtype=bool)
        for o in offsets:
            of_group[o] = True
        cand = ~lines & support & of_group[zz % pz, yy % py] & _sources_acquired(known, disp, True)
        z_t, y_t = (a.astype(np.intp) for a in np.nonzero(cand))
        step = max(1, _CHUNK_BYTES // (16 * n0 * weights.shape[0]))
        for s in range(0, len(z_t), step):
            zc, yc = z_t[s : s + step], y_t[s : s + step]
            est = (_gather(padded, zc + half[0], yc + half[1], disp, width) @ weights).reshape(len(zc), n0, n_coils)
            out[:, zc, yc, :] = est.transpose(2, 0, 1).astype(np.complex64)
    return out


def grappa_kspace(
    kspace: Complex, mask: NDArray[np.bool_], acs: tuple[slice, slice, slice] | None, config: GrappaConfig
) -> Complex:
    """GRAPPA-filled k-space of one frame ``(coil, k2, k1, k0)``; the path is chosen from the mask.

    Data accelerated along k1 only (every k2 plane sampled alike, or a single plane) go plane by plane through
    :func:`grappa_plane`, unless ``config.volume_kernel`` asks for 3D kernels; data accelerated along k2 (alone
    or with k1, CAIPIRINHA included) go through :func:`grappa_volume`'s 3D kernels.

    Parameters
    ----------
    kspace
        K-space ``(coil, k2, k1, k0)``, zeros where not acquired.
    mask
        Acquired positions, broadcastable to ``(k2, k1, k0)``; whole readouts must be acquired.
    acs
        The fully sampled calibration box ``(k2, k1, k0)`` (:func:`hifield.recon.calibration.calibration_region`).
    config
        Kernel size and regularisation.

    Raises
    ------
    ReconstructionError
        Without a calibration block, with partially acquired readouts, or as :func:`grappa_volume`.
    """
    if acs is None:
        raise ReconstructionError(_NO_ACS)
    mask = np.broadcast_to(np.asarray(mask, dtype=bool), kspace.shape[-3:])
    lines2d = np.asarray(np.any(mask, axis=-1), dtype=bool)  # (k2, k1)
    if not np.all(mask == lines2d[..., None]):
        raise ReconstructionError("GRAPPA needs fully sampled readouts (whole k0 lines); use --recon cs or sense")
    kspace = np.where(mask, kspace, np.complex64(0)).astype(np.complex64, copy=False)
    if lines2d.shape[0] > 1:
        if not np.all(lines2d == lines2d[:1]):
            return grappa_volume(kspace, lines2d, acs, config)
        if config.volume_kernel:
            try:
                lattice = detect_lattice(lines2d, (acs[0], acs[1]))
            except ReconstructionError:  # irregular k1 lines: the plane-by-plane path copes with those
                lattice = None
            if lattice is not None:
                return grappa_volume(kspace, lines2d, acs, config)
    full = kspace.copy()
    for z in range(kspace.shape[1]):
        if lines2d[z].any():
            full[:, z] = grappa_plane(kspace[:, z], lines2d[z], acs[1], config)
    return full


def recon_grappa(
    kspace: Complex, mask: NDArray[np.bool_], acs: tuple[slice, slice, slice] | None, config: GrappaConfig
) -> Complex:
    """GRAPPA of one frame ``(coil, k2, k1, k0)`` (see :func:`grappa_kspace`); RSS image ``(1, z, y, x)``."""
    from hifield.ops import ifftc
    from hifield.recon.cartesian import rss

    return rss(ifftc(grappa_kspace(kspace, mask, acs, config)))
