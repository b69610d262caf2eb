"""Find and extract the fully sampled calibration (ACS) region of Cartesian k-space."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData


def _grow_box(full: NDArray[np.bool_]) -> tuple[slice, slice, slice] | None:
    """Largest box around the k-space centre (grown greedily, readout first) that is all True in ``full``."""
    shape = full.shape
    centre = [n // 2 for n in shape]
    if not full[tuple(centre)]:
        return None
    lo = list(centre)
    hi = [c + 1 for c in centre]
    for axis in (2, 1, 0):
        for direction in (-1, 1):
            while True:
                new_lo, new_hi = list(lo), list(hi)
                if direction < 0:
                    if new_lo[axis] == 0:
                        break
                    new_lo[axis] -= 1
                else:
                    if new_hi[axis] == shape[axis]:
                        break
                    new_hi[axis] += 1
                box = tuple(slice(a, b) for a, b in zip(new_lo, new_hi, strict=True))
                if not full[box].all():
                    break
                lo, hi = new_lo, new_hi
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))


def calibration_region(raw: RawData, *, max_size: int | None = None) -> tuple[slice, slice, slice] | None:
    """The fully sampled box ``(k2, k1, k0)`` around the k-space centre, or None if there is none.

    Uses ``raw.calibration`` when given, else detects the box from ``raw.mask`` (all of k-space when fully
    sampled). A box that is a single line or plane along an axis with more than one sample counts as none.

    Parameters
    ----------
    raw
        Cartesian raw data.
    max_size
        Crop the box to at most this many samples per axis, centred (None: no cap).
    """
    shape = raw.kspace.shape[-3:]
    full = raw.sampling_mask if raw.calibration is None else np.broadcast_to(raw.calibration, shape)
    if raw.calibration is not None:
        full = full & raw.sampling_mask
    box = _grow_box(np.asarray(full))
    if box is None:
        return None
    sizes = [s.stop - s.start for s in box]
    # a usable calibration region needs extent along every axis that has more than a few samples
    if any(size < min(n, 2) for size, n in zip(sizes, shape, strict=True)):
        return None
    if any(size < 4 and n >= 4 for size, n in zip(sizes, shape, strict=True)):
        return None
    if max_size is not None:
        cropped = []
        for s, n in zip(box, shape, strict=True):
            size = s.stop - s.start
            if size > max_size:
                c = n // 2
                start = max(s.start, c - max_size // 2)
                stop = min(s.stop, start + max_size)
                cropped.append(slice(start, stop))
            else:
                cropped.append(s)
        box = (cropped[0], cropped[1], cropped[2])
    return box


def calibration_data(raw: RawData, *, max_size: int | None = None) -> NDArray[np.complex64] | None:
    """The calibration k-space ``(coil, c2, c1, c0)`` of the first ``other`` index, or None without ACS."""
    box = calibration_region(raw, max_size=max_size)
    if box is None:
        return None
    kspace = raw.kspace.reshape((-1, *raw.kspace.shape[-4:]))[0]
    return np.ascontiguousarray(kspace[(slice(None), *box)])
