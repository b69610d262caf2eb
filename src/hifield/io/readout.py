"""Readout operations shared by the raw-data readers (ISMRMRD, fastMRI)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["crop_readout"]


def crop_readout(kspace: NDArray[np.complex64], n_out: int) -> NDArray[np.complex64]:
    """Remove readout oversampling: centred unitary inverse FFT along k0, keep the central ``n_out`` pixels, FFT back.

    Unitary transforms keep both the pixel values of a unitary-FFT reconstruction and the per-sample noise level.
    """
    n = kspace.shape[-1]
    img = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(kspace, axes=-1), axis=-1, norm="ortho"), axes=-1)
    start = n // 2 - n_out // 2
    img = img[..., start : start + n_out]
    out = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(img, axes=-1), axis=-1, norm="ortho"), axes=-1)
    return out.astype(np.complex64)
