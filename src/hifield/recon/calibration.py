"""The fully sampled calibration (ACS) region of Cartesian k-space, as the raw data state it, and its data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from hifield.data import CoilMaps, RawData


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


def _stated_box(calibration: NDArray[np.bool_]) -> tuple[slice, slice, slice] | None:
    """The calibration region as stated, when it is a box around the k-space centre (None otherwise)."""
    points = np.argwhere(calibration)
    if points.size == 0:
        return None
    lo, hi = points.min(axis=0), points.max(axis=0) + 1
    box = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    centre = [n // 2 for n in calibration.shape]
    inside = all(s.start <= c < s.stop for s, c in zip(box, centre, strict=True))
    return box if inside and calibration[box].all() else None


def calibration_region(raw: RawData, *, max_size: int | None = None) -> tuple[slice, slice, slice] | None:
    """The fully sampled box ``(k2, k1, k0)`` around the k-space centre, or None if there is none.

    Read from what the raw data state: the calibration region the scan's sampling pattern marked
    (``raw.calibration``, written by the simulator from the sequence's pattern and kept by the ISMRMRD flags), or
    all of k-space when fully sampled. Only data that state neither (a foreign file without calibration flags) or
    whose region is not a box (an elliptical one) have the box detected, grown from the centre over the sampled
    positions. A box that is a single line or plane along an axis with more than one sample counts as none.

    Parameters
    ----------
    raw
        Cartesian raw data.
    max_size
        Crop the box to at most this many samples per axis, centred (None: no cap).
    """
    shape = raw.kspace.shape[-3:]
    box: tuple[slice, slice, slice] | None
    if raw.calibration is not None:
        full = np.broadcast_to(raw.calibration, shape) & raw.sampling_mask
        box = _stated_box(full)
        if box is None:
            box = _grow_box(np.asarray(full))
    elif raw.mask is None:
        box = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    else:
        box = _grow_box(np.asarray(raw.sampling_mask))
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


CALIBRATION_PRESCAN_BELOW = 16
"""Non-Cartesian data whose k-space centre is Nyquist-covered over fewer cells than this take their coil maps from
a separate calibration prescan (as scanners do before accelerated spiral scans)."""


def needs_calibration_prescan(raw: RawData) -> bool:
    """Whether ``raw`` is non-Cartesian with too sparse a centre for self-calibrated coil maps.

    Radial spokes cover their centre densely; an interleaved spiral played with few interleaves leaves gaps between
    its turns even at the centre (see :func:`hifield.recon.nyquist_box`).
    """
    if raw.trajectory is None:
        return False
    from hifield.recon.noncartesian import nyquist_box

    return nyquist_box(raw) < CALIBRATION_PRESCAN_BELOW


def scan_coil_maps(raw: RawData, *, prescan: Callable[[], RawData]) -> tuple[CoilMaps, RawData | None]:
    """ESPIRiT coil maps for reconstructing ``raw``: self-calibrated, or from a calibration prescan when needed.

    Parameters
    ----------
    raw
        The scan to reconstruct.
    prescan
        Acquires the calibration prescan (raw data marked with their calibration region); called only when
        :func:`needs_calibration_prescan` says so.

    Returns
    -------
    tuple
        The coil maps and the prescan's raw data (None when the scan calibrated itself).
    """
    from hifield.recon.coil_maps import estimate_coil_maps

    if needs_calibration_prescan(raw):
        calibration = prescan()
        return estimate_coil_maps(calibration, method="espirit"), calibration
    return estimate_coil_maps(raw, method="espirit"), None
