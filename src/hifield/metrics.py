"""Image quality metrics computed exactly as the fastMRI evaluation does: NMSE, PSNR and SSIM on magnitude volumes.

The reference is ``fastmri/evaluate.py`` (facebookresearch/fastMRI): volumes are real magnitude arrays shaped
``(slices, y, x)``; ``data_range`` defaults to ``gt.max()`` of the whole volume; SSIM is scikit-image's
``structural_similarity`` with its default 7 x 7 uniform window, averaged over slices.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hifield.errors import ConfigError


def _as_volume(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        arr = np.abs(arr)
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim < 2:
        raise ConfigError(f"{name} must have at least 2 axes (y, x); got shape {arr.shape}")
    return arr.reshape((-1, *arr.shape[-2:]))


def _pair(gt: ArrayLike, pred: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    g = _as_volume(gt, "ground truth")
    p = _as_volume(pred, "prediction")
    if g.shape != p.shape:
        raise ConfigError(f"ground truth shape {g.shape} and prediction shape {p.shape} differ; compare like with like")
    return g, p


def nmse(gt: ArrayLike, pred: ArrayLike) -> float:
    """Normalised mean squared error ``||gt - pred||^2 / ||gt||^2`` (dimensionless).

    Parameters
    ----------
    gt, pred
        Volumes ``(slices, y, x)`` (any leading axes are flattened into slices; complex input is taken as magnitude).

    Examples
    --------
    >>> round(nmse([[1.0, 2.0]], [[1.0, 1.0]]), 12)
    0.2
    """
    g, p = _pair(gt, pred)
    return float(np.linalg.norm(g - p) ** 2 / np.linalg.norm(g) ** 2)


def psnr(gt: ArrayLike, pred: ArrayLike, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio [dB], ``10 log10(data_range^2 / mse)`` with ``data_range = gt.max()`` by default.

    Examples
    --------
    >>> round(psnr([[1.0, 0.0]], [[0.9, 0.0]]), 6)
    23.0103
    """
    from skimage.metrics import peak_signal_noise_ratio

    g, p = _pair(gt, pred)
    maxval = float(g.max()) if data_range is None else float(data_range)
    return float(peak_signal_noise_ratio(g, p, data_range=maxval))


def ssim(gt: ArrayLike, pred: ArrayLike, *, data_range: float | None = None) -> float:
    """Structural similarity, mean over slices of scikit-image's SSIM with ``data_range = gt.max()`` by default.

    Each slice must be at least 7 x 7 (the default window).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((2, 16, 16))
    >>> ssim(x, x)
    1.0
    """
    from skimage.metrics import structural_similarity

    g, p = _pair(gt, pred)
    if min(g.shape[-2:]) < 7:
        raise ConfigError(f"SSIM needs slices of at least 7 x 7 pixels; got {g.shape[-2:]}")
    maxval = float(g.max()) if data_range is None else float(data_range)
    total = 0.0
    for gs, ps in zip(g, p, strict=True):
        total += float(structural_similarity(gs, ps, data_range=maxval))
    return total / g.shape[0]
