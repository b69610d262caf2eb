"""GRAPPA (Griswold et al. 2002): missing phase-encode lines from neighbouring acquired lines across coils."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ReconstructionError
from hifield.recon.config import GrappaConfig

Complex = NDArray[np.complex64]


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


def grappa_plane(kspace: Complex, lines: NDArray[np.bool_], acs: slice, config: GrappaConfig) -> Complex:
    """Fill the missing k1 lines of one ``(coil, k1, k0)`` plane; acquired lines are kept as they are.

    Parameters
    ----------
    kspace
        K-space of one k2 plane, zeros on missing lines.
    lines
        Acquired k1 lines (bool, length k1).
    acs
        The fully sampled k1 block used to fit the kernel.
    config
        Kernel size and regularisation.
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
    gram = np.conj(src.T) @ src
    lam = config.lambda_rel * float(np.real(np.trace(gram))) / gram.shape[0]
    weights = np.linalg.solve(gram + lam * np.eye(gram.shape[0]), np.conj(src.T) @ tgt.astype(np.complex128))
    # apply at every acquired base line whose source lines were acquired
    out = kspace.copy()
    idx = np.flatnonzero(lines)
    ok = [b for b in idx if all(0 <= b + o < n1 and lines[b + o] for o in offsets)]
    if not ok:
        return out
    rows = np.asarray(ok, dtype=np.intp)
    est = (_patches(kspace, rows, offsets, width).astype(np.complex128) @ weights).reshape(
        len(rows), n0, n_coils, len(targets)
    )
    for t_i, t in enumerate(targets):
        dest = rows + t
        keep = (dest < n1) & ~lines[np.minimum(dest, n1 - 1)]
        if keep.any():
            out[:, dest[keep], :] = est[keep, :, :, t_i].transpose(2, 0, 1).astype(np.complex64)
    return out


def recon_grappa(
    kspace: Complex, mask: NDArray[np.bool_], acs: tuple[slice, slice, slice], config: GrappaConfig
) -> Complex:
    """GRAPPA of one frame ``(coil, k2, k1, k0)`` undersampled along k1; RSS image ``(1, z, y, x)``."""
    from hifield.ops import ifftc

    lines2d = np.asarray(np.any(mask, axis=-1), dtype=bool)  # (k2, k1)
    if not np.all(mask == lines2d[..., None]):
        raise ReconstructionError("GRAPPA needs fully sampled readouts (whole k0 lines); use --recon cs or sense")
    full = kspace.copy()
    for z in range(kspace.shape[1]):
        if lines2d[z].any():
            full[:, z] = grappa_plane(kspace[:, z], lines2d[z], acs[1], config)
    images = ifftc(full)
    rss = np.sqrt(np.sum(images.real**2 + images.imag**2, axis=0, dtype=np.float64))
    return rss[None].astype(np.complex64)
