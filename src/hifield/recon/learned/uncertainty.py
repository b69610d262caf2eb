"""Uncertainty of a learned image: data-consistency residual, null-space (hallucination) map, conformal interval.

* The **data-consistency residual** ``r = M (F S x - y)`` per coil says how far the image departs from what was
  measured; its RSS over coils is reported in k-space and, transformed back, in image space.
* The **data-consistency correction** ``Re(conj(x / |x|) E^+ (y - E x))`` is what the measurements would add to
  the image, signed along its phase: a few CG iterations of SENSE on the residual. Where the network erased
  (or invented) a feature the data hold, it shows a positive (negative) blob of about the lost contrast; the
  plain residual image above shows it only at about ``1 / R`` of its size, smeared into aliases.
* The **null-space map** is the component of the image that the measurements cannot see (Bhadra et al., TMI 2021):
  ``x_null = x - E^+ E x`` with ``E = M F S``, computed with hifield's operators
  (:class:`hifield.ops.CartesianSenseNormalOp`) and conjugate gradients, not estimated by a network. Whatever
  the network put there came from its training, not from the data.
* The **conformal interval** scales a heuristic per-pixel width
  ``u = (|x_null| + |residual image| + |correction| + floor * max|x|) R^p`` by ``lambda``, set by conformal risk
  control (Angelopoulos et al. 2022) on held-out simulated images so that a new image has, in expectation, at least
  ``1 - alpha`` of its object pixels inside ``|x| +- lambda u``. The factor ``R^p`` of the acceleration ``R`` (``p``
  chosen on a separate tuning set by :func:`fit_acceleration_power`) keeps the coverage about level across ``R``
  rather than high at low ``R`` and low at high ``R`` with the same mean.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.ops import CartesianSenseNormalOp, FFTOp, MaskOp, SensitivityOp
from hifield.solvers import conjugate_gradient

Complex = NDArray[np.complex64]
Real = NDArray[np.float32]
FLOOR = 0.02
"""Width floor relative to the image maximum (keeps u > 0 where residual and null-space component vanish)."""
SUPPORT = 0.05
"""Pixels with ``|x|`` above this fraction of the maximum form the object region scored by the interval."""


def encoding(maps: Complex, mask: NDArray[Any]) -> Any:
    """``E = M F S`` of one slice (maps ``(coil, y, x)``, mask ``(y, x)``): ``(1, 1, y, x)`` -> ``(coil, 1, y, x)``."""
    sens = SensitivityOp(np.asarray(maps)[None, :, None])
    return MaskOp(np.asarray(mask)[None], sens.oshape) @ FFTOp(sens.oshape, axes=(-2, -1)) @ sens


def residual(x: Complex, y: Complex, maps: Complex, mask: NDArray[Any]) -> tuple[Any, Complex]:
    """The encoding ``E`` of :func:`encoding` and the residual ``E x - M y`` ``(coil, 1, y, x)`` of image ``x``
    ``(y, x)`` against coil k-space ``y`` ``(coil, y, x)``, in the units of ``y``."""
    e = encoding(maps, mask)
    return e, e.apply(x[None, None].astype(np.complex64)) - (np.asarray(y) * mask)[:, None].astype(np.complex64)


def dc_residual(x: Complex, y: Complex, maps: Complex, mask: NDArray[Any]) -> tuple[Real, Real]:
    """Data-consistency residual of image ``x`` ``(y, x)`` against coil k-space ``y`` ``(coil, y, x)``.

    Returns the RSS over coils of ``r = M (F S x - y)`` in k-space and of ``F^H r`` in image space, both ``(y, x)``.
    """
    _, r = residual(x, y, maps, mask)
    img = FFTOp(r.shape, axes=(-2, -1)).apply_adjoint(r)
    rss_k = np.sqrt(np.sum(np.abs(r[:, 0]) ** 2, axis=0)).astype(np.float32)
    rss_i = np.sqrt(np.sum(np.abs(img[:, 0]) ** 2, axis=0)).astype(np.float32)
    return rss_k, rss_i


def dc_correction(x: Complex, y: Complex, maps: Complex, mask: NDArray[Any], *, n_iter: int = 5) -> Real:
    """What the measured data ``y`` ``(coil, y, x)`` would add to image ``x`` ``(y, x)``: ``w = E^+ (y - E x)``
    by ``n_iter`` CG iterations from zero on ``E^H E w = E^H (y - E x)``, returned as ``Re(conj(x / |x|) w)``
    ``(y, x)`` float32 in the units of ``x``.

    Positive where the data say the image should be brighter (a lost bright lesion), negative where darker. Few
    iterations keep the noise of an ill-conditioned ``E^H E`` out (the first CG iterates are the smooth,
    well-determined part of the solution).

    Examples
    --------
    Fully sampled, one coil: the correction is exactly what the image lacks.

    >>> from hifield.ops.fft import fftc
    >>> truth = np.ones((8, 8), np.complex64); x = truth.copy(); x[3:5, 3:5] = 0.5
    >>> c = dc_correction(x, fftc(truth, axes=(0, 1))[None], np.ones((1, 8, 8), np.complex64), np.ones((8, 8)))
    >>> bool(np.allclose(c, np.real(truth - x), atol=1e-5))
    True
    """
    e, r = residual(x, y, maps, mask)
    op = CartesianSenseNormalOp(np.asarray(maps)[None, :, None], np.asarray(mask)[None])
    w, _ = conjugate_gradient(op.apply, -e.apply_adjoint(r), max_iter=n_iter, tol=1e-8)
    phase = np.exp(-1j * np.angle(x))
    return np.real(phase * w[0, 0]).astype(np.float32)


def null_space_component(x: Complex, maps: Complex, mask: NDArray[Any], *, n_iter: int = 30) -> Complex:
    """``x - E^+ E x``: the part of ``x`` ``(y, x)`` in the null space of ``E = M F S`` (maps ``(coil, y, x)``).

    ``E^+ E x`` solves ``E^H E v = E^H E x`` by CG from zero, which stays in the range of ``E^H`` (the row space),
    so ``v`` is the projection of ``x`` onto it.

    Examples
    --------
    One coil with unit sensitivity: the null space is what the mask leaves out of k-space.

    >>> from hifield.ops.fft import fftc, ifftc
    >>> x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.complex64)
    >>> mask = np.zeros((8, 8)); mask[::2] = 1
    >>> nul = null_space_component(x, np.ones((1, 8, 8), np.complex64), mask)
    >>> bool(np.allclose(nul, ifftc(fftc(x, axes=(0, 1)) * (1 - mask), axes=(0, 1)), atol=1e-4))
    True
    """
    op = CartesianSenseNormalOp(np.asarray(maps)[None, :, None], np.asarray(mask)[None])
    xx = x[None, None].astype(np.complex64)
    rhs = op.apply(xx)
    v, _ = conjugate_gradient(op.apply, rhs, max_iter=n_iter, tol=1e-6)
    return (xx - v)[0, 0].astype(np.complex64)


NOISE_CORNER = 0.375
"""k-space samples farther than this fraction of the matrix from the centre along both axes (the four corners,
1/8 of each axis) estimate the receive noise where no noise scan is at hand: the object's signal is weakest there,
though not absent (on the default 256 x 256 brain exam the corners hold 1-3 times as much signal power as noise, so
the variance comes out 2-4 times too high)."""
SIGNIFICANCE_RADII_PX = (1.5, 3.0, 6.0)
"""Blob radii (pixels) at which :func:`dc_significance` tests for a lost or invented feature."""


def kspace_noise_covariance(y: Complex, mask: NDArray[Any], *, corner: float = NOISE_CORNER) -> NDArray[np.complex128]:
    """Receive-noise covariance ``(coil, coil)`` per complex k-space sample, estimated from the acquired samples of
    ``y`` ``(coil, ky, kx)`` (mask ``(ky, kx)``) in the corners of k-space (:data:`NOISE_CORNER`), where a
    Cartesian image's signal is weakest (what signal is left there counts as noise: an upper bound); the whole outer
    band, then every sample, stands in where too few corner samples were acquired (fewer than ten per coil). Coils
    without any data (padding) get a zero row and column. A noise scan, where the data carry one, is the better
    source (:func:`hifield.recon.whitening.noise_covariance`).

    Examples
    --------
    White noise of standard deviation 0.1 in two coils: the estimate is about ``0.01 I``.

    >>> rng = np.random.default_rng(0)
    >>> y = 0.1 * (rng.standard_normal((2, 64, 64)) + 1j * rng.standard_normal((2, 64, 64))) / np.sqrt(2)
    >>> (np.round(kspace_noise_covariance(y, np.ones((64, 64))).real, 2) + 0.0).tolist()
    [[0.01, 0.0], [0.0, 0.01]]
    """
    data = np.asarray(y)
    acquired = np.asarray(mask) > 0
    ny, nx = acquired.shape
    far_y = np.abs(np.arange(ny) - ny // 2)[:, None] > corner * ny
    far_x = np.abs(np.arange(nx) - nx // 2)[None, :] > corner * nx
    for region in (far_y & far_x, far_y | far_x, np.ones_like(acquired)):
        samples = data[:, acquired & region].astype(np.complex128)
        if samples.shape[1] >= 10 * data.shape[0]:
            break
    return (samples @ samples.conj().T) / max(samples.shape[1], 1)  # type: ignore[no-any-return]


def _blob_kernel(radius_px: float) -> NDArray[np.float64]:
    """Zero-mean blob-contrast kernel: the mean over a disc of ``radius_px`` minus the mean over the ring from
    ``radius_px + 1`` to ``2 radius_px + 2`` around it."""
    half = math.ceil(2 * radius_px + 2)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    d = np.hypot(yy, xx)
    disc = (d <= radius_px).astype(np.float64)
    ring = ((d > radius_px + 1) & (d <= 2 * radius_px + 2)).astype(np.float64)
    return disc / disc.sum() - ring / ring.sum()  # type: ignore[no-any-return]


def dc_significance(
    x: Complex,
    y: Complex,
    maps: Complex,
    mask: NDArray[Any],
    *,
    radii_px: tuple[float, ...] = SIGNIFICANCE_RADII_PX,
    noise_covariance: NDArray[np.complexfloating] | None = None,
) -> Real:
    """How strongly the measured data say that image ``x`` ``(y, x)`` lacks (positive) or invents (negative) a
    blob at each pixel, in standard deviations of the receive noise: a matched-filter test of the residual.

    For a blob ``b`` (the contrast kernel of :func:`_blob_kernel`: disc minus surrounding ring) at pixel ``p``,
    signed along the phase of ``x``, the statistic is ``z = Re<W E b, W (y - E x)> / sd`` with ``W`` the noise
    whitening and ``sd = ||W E b|| / sqrt(2)``, the standard deviation of the numerator under noise alone. ``W``
    comes from ``noise_covariance`` (``(coil, coil)`` per k-space sample, e.g. from a noise scan); when None, from
    white noise of the mean variance that :func:`kspace_noise_covariance` finds, which counts any signal in the
    corners of k-space as noise, so ``z`` comes out lower. If ``x`` were the
    truth, ``z`` would be a standard normal variable at every pixel; a feature the network erased, though the data
    hold it, gives ``z`` of about its amplitude times ``||W E b||`` (the data's SNR for that feature). Unlike the
    correction ``E^+ (y - E x)`` of :func:`dc_correction`, it asks only for one number per blob, which the data
    determine well even where they do not determine the image, and it is in units of the noise, so the same level
    means the same thing everywhere. A covariance that is not positive definite over the coils with data (a dead or
    duplicated channel) raises :class:`~hifield.errors.ReconstructionError`. Each pixel carries the radius (of
    ``radii_px``) with the largest ``|z|`` (so noise alone gives a spread a little above 1); where the maps vanish
    (no coil sees the pixel) ``z`` is 0.
    ``sd`` uses ``||W E b_p||^2 ~ sum_c |(W S)_c(p)|^2 ||M F b||^2`` (coil maps smooth over the blob).

    Examples
    --------
    One coil, fully sampled, the image lacks a small disc of amplitude 1 that the data (noise 0.05) hold:

    >>> from hifield.ops.fft import fftc
    >>> truth = np.ones((64, 64), np.complex64); truth[30:34, 30:34] = 2
    >>> rng = np.random.default_rng(0)
    >>> noise = (rng.standard_normal((1, 64, 64)) + 1j * rng.standard_normal((1, 64, 64))) / np.sqrt(2)
    >>> y = fftc(truth, axes=(0, 1))[None] + 0.05 * noise
    >>> lost = np.ones((64, 64), np.complex64)
    >>> z = dc_significance(lost, y, np.ones((1, 64, 64), np.complex64), np.ones((64, 64)))
    >>> bool(z[31, 31] > 20 and np.unravel_index(np.argmax(z), z.shape) in [(31, 31), (31, 32), (32, 31), (32, 32)])
    True
    """
    from scipy.signal import fftconvolve

    from hifield.ops.fft import fftc, ifftc

    m = np.asarray(mask, dtype=np.float32)
    _, diff = residual(x, y, maps, m)
    r = -diff[:, 0]  # M (y - E x), (coil, ky, kx)
    if noise_covariance is None:  # the corners' estimate, pooled: one variance for every coil that has data
        variances = np.real(np.diag(kspace_noise_covariance(y, m)))
        psi = np.diag(np.where(variances > 0, variances[variances > 0].mean(), 0.0)).astype(np.complex128)
    else:
        psi = np.asarray(noise_covariance)
    from hifield.recon.whitening import whitening_matrix

    active = np.real(np.diag(psi)) > 0
    kept = psi[np.ix_(active, active)]
    # L^-1 of kept = L L^H (whitening_matrix keeps the mean variance: divide it out); a singular one is refused
    white = (whitening_matrix(kept) / np.sqrt(np.mean(np.real(np.diag(kept))))).astype(np.complex64)

    def whiten(a: NDArray[Any]) -> NDArray[Any]:
        return (white @ a[active].reshape(int(active.sum()), -1)).reshape(-1, *a.shape[1:])

    r_w, s_w = whiten(r), whiten(np.asarray(maps, dtype=np.complex64))
    back = np.sum(np.conj(s_w) * ifftc(r_w, axes=(-2, -1)), axis=0)  # (W E)^H W r
    signed = np.real(np.exp(-1j * np.angle(x)) * back)
    gain = np.sqrt(np.sum(np.abs(s_w) ** 2, axis=0))
    seen = gain > 1e-3 * float(gain.max())  # outside the coils' reach (maps zeroed) no blob is seen: z = 0
    ny, nx = x.shape
    best = np.zeros((ny, nx))
    for radius in radii_px:
        kernel = _blob_kernel(radius)
        placed = np.zeros((ny, nx), np.complex128)
        h = kernel.shape[0] // 2
        placed[ny // 2 - h : ny // 2 + h + 1, nx // 2 - h : nx // 2 + h + 1] = kernel
        blob_norm = float(np.sqrt(np.sum(np.abs(fftc(placed, axes=(0, 1))) ** 2 * m)))
        sd = np.where(seen, gain * blob_norm / np.sqrt(2), np.inf)
        z = fftconvolve(signed, kernel, mode="same") / sd
        best = np.where(np.abs(z) > np.abs(best), z, best)
    return best.astype(np.float32)


WIDTH_TERMS = ("null_space", "dc_residual_image", "dc_correction")
"""What the heuristic width of the shipped models adds up (recorded in their metadata as ``conformal_width``)."""


def heuristic_width(
    x: Complex,
    null: Complex,
    residual_image: Real,
    correction: Real | None = None,
    *,
    acceleration: float = 1.0,
    acceleration_power: float = 0.0,
) -> Real:
    """The per-pixel width ``u = (|x_null| + |residual image| + |correction| + FLOOR * max|x|) R^p`` that the
    conformal factor scales, ``R`` the ``acceleration`` of the slice's sampling and ``p`` the
    ``acceleration_power`` its weights were calibrated with (0: no factor, as in weights calibrated before it
    existed). ``correction`` (:func:`dc_correction`) widens the interval where the data say the image is wrong,
    e.g. over a lesion the network erased; ``None`` leaves it out, as in weights calibrated before it existed."""
    extra = np.abs(correction) if correction is not None else 0.0
    u = np.abs(null) + residual_image + extra + FLOOR * float(np.abs(x).max())
    return (u * float(acceleration) ** float(acceleration_power)).astype(np.float32)


def miscoverage(pred: Real, width: Real, truth: Real, lam: float) -> float:
    """Fraction of the object pixels (``pred > SUPPORT * max``) whose truth lies outside ``pred +- lam * width``."""
    region = pred > SUPPORT * float(pred.max())
    if not region.any():
        return 0.0
    return float(np.mean(np.abs(truth - pred)[region] > lam * width[region]))


def image_miscoverage(preds: list[Real], widths: list[Real], truths: list[Real], lam: float) -> NDArray[np.float64]:
    """Per image, the fraction of its object pixels whose truth lies outside ``pred +- lam * width``."""
    return np.array([miscoverage(p, w, t, lam) for p, w, t in zip(preds, widths, truths, strict=True)])


def calibrate(preds: list[Real], widths: list[Real], truths: list[Real], *, alpha: float = 0.1) -> float:
    """Conformal risk control of the per-image miscoverage (Angelopoulos et al., "Conformal risk control", 2022).

    The loss of image ``i`` is ``L_i(lambda)``, the fraction of its object pixels (``pred > SUPPORT * max``) whose
    truth lies outside ``pred +- lambda u``: it lies in ``[0, 1]`` and falls as ``lambda`` grows. With ``n``
    calibration images, ``lambda`` is the smallest value with ``n / (n + 1) * mean_i L_i(lambda) + 1 / (n + 1) <=
    alpha``; then a new image drawn like them has expected miscoverage at most ``alpha``, i.e. expected coverage
    of its object pixels at least ``1 - alpha``. Each image counts once, however many pixels its object has: the
    pixels of one image are not exchangeable with each other, the images are. The guarantee costs about
    ``1 / (n + 1)`` of coverage above ``1 - alpha`` (``n = 100``: the calibration aims at 0.909 for 0.90).
    Returns ``inf`` when ``(n + 1) alpha < 1``: too few images for ``alpha``.

    Examples
    --------
    ``n`` images of one pixel each, the ``k``-th with an error ``k`` times its width: 8 images are too few for
    ``alpha = 0.1``, 10 must all be covered, and of 19 one may be left out.

    >>> one = [np.ones((1, 1), np.float32)]
    >>> def lam(n): return calibrate(one * n, one * n, [np.full((1, 1), 1.0 + k, np.float32) for k in range(1, n + 1)])
    >>> lam(8), lam(10), lam(19)
    (inf, 10.0, 18.0)
    """
    n = len(preds)
    target = (alpha * (n + 1) - 1) / max(n, 1)  # the largest mean loss the calibration images may keep
    if n == 0 or target < 0:
        return math.inf
    ratios, weights = [], []
    for p, w, t in zip(preds, widths, truths, strict=True):
        region = p > SUPPORT * float(p.max())
        if region.any():
            ratios.append((np.abs(t - p) / w)[region].astype(np.float64))
            weights.append(np.full(int(region.sum()), 1.0 / (n * int(region.sum()))))
    if not ratios:
        return 0.0  # no object anywhere: nothing to cover
    r = np.concatenate(ratios)
    order = np.argsort(r, kind="stable")
    r, wt = r[order], np.concatenate(weights)[order]
    # mean_i L_i(lambda) at lambda = r[k]: the weight of the ratios above r[k] (ties with r[k] are inside)
    last = np.searchsorted(r, r, side="right") - 1
    tail = wt.sum() - np.cumsum(wt)[last]
    return float(r[np.nonzero(tail <= target + 1e-12)[0][0]])  # the last ratio has tail 0: always found


ACCELERATION_BINS = (3.0, 5.0, 8.0)
"""Edges of the acceleration bins over which :func:`fit_acceleration_power` levels the coverage (R < 3, 3-5, 5-8,
>= 8)."""
ACCELERATION_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
"""The powers :func:`fit_acceleration_power` chooses from."""


def acceleration_bin(acceleration: float) -> int:
    """Index of the :data:`ACCELERATION_BINS` bin of ``acceleration`` (0 for R < 3, ..., 3 for R >= 8)."""
    return int(np.searchsorted(ACCELERATION_BINS, acceleration, side="right"))


def _binned(values: NDArray[Any], accelerations: NDArray[Any]) -> dict[str, NDArray[Any]]:
    """``values`` split by the :data:`ACCELERATION_BINS` bin of their ``accelerations``, labelled ``R<3`` ...
    ``R>=8``; bins without values left out."""
    e = ACCELERATION_BINS
    labels = [f"R<{e[0]:g}"] + [f"{a:g}<=R<{b:g}" for a, b in itertools.pairwise(e)] + [f"R>={e[-1]:g}"]
    bins = np.array([acceleration_bin(r) for r in accelerations])
    chosen = {label: np.asarray(values)[bins == k] for k, label in enumerate(labels)}
    return {label: v for label, v in chosen.items() if v.size}


def coverage_by_acceleration(coverage: NDArray[Any], accelerations: NDArray[Any]) -> dict[str, tuple[float, int]]:
    """Mean per-image ``coverage`` and image count per acceleration bin, bins without images left out.

    >>> coverage_by_acceleration(np.array([0.9, 0.8, 1.0]), np.array([2.0, 9.0, 12.0]))
    {'R<3': (0.9, 1), 'R>=8': (0.9, 2)}
    """
    return {label: (float(v.mean()), int(v.size)) for label, v in _binned(coverage, accelerations).items()}


def coverage_range_by_acceleration(
    coverage: NDArray[Any], accelerations: NDArray[Any], *, quantiles: tuple[float, float] = (0.1, 0.9)
) -> dict[str, tuple[float, float]]:
    """The ``quantiles`` (default 10th and 90th percentile) of the per-image ``coverage`` per acceleration bin:
    how far one image's coverage strays from the mean at its R, e.g. to judge a single exam's coverage.

    >>> coverage_range_by_acceleration(np.array([0.8, 0.9, 1.0, 0.7]), np.array([9.0, 9.0, 9.0, 2.0]), quantiles=(0, 1))
    {'R<3': (0.7, 0.7), 'R>=8': (0.8, 1.0)}
    """
    return {
        label: (float(np.quantile(v, quantiles[0])), float(np.quantile(v, quantiles[1])))
        for label, v in _binned(coverage, accelerations).items()
    }


def fit_acceleration_power(
    preds: list[Real],
    widths: list[Real],
    truths: list[Real],
    accelerations: list[float],
    *,
    alpha: float = 0.1,
    powers: tuple[float, ...] = ACCELERATION_POWERS,
) -> tuple[float, dict[float, float]]:
    """The power ``p`` of the width factor ``R^p`` (:func:`heuristic_width`) that levels the coverage across
    accelerations, chosen on a tuning set of images (never the calibration set: the choice would then void the
    conformal guarantee). For each ``p`` in ``powers``: ``lambda`` by :func:`calibrate` on the tuning images with
    widths ``u R^p``, then the spread (largest minus smallest) of the mean per-image coverage over the
    :data:`ACCELERATION_BINS` bins; the ``p`` with the smallest spread wins (ties: the smaller ``p``). Returns it
    and the spread of every ``p``.

    Examples
    --------
    Errors that grow as ``sqrt(R)`` times the width: ``p = 0.5`` levels the coverage.

    >>> rng = np.random.default_rng(0)
    >>> rs = [2.0, 4.0, 6.0, 10.0] * 20
    >>> truths = [np.ones((8, 8), np.float32) for _ in rs]
    >>> preds = [(1 + np.sqrt(r) * 0.01 * rng.standard_normal((8, 8))).astype(np.float32) for r in rs]
    >>> widths = [np.full((8, 8), 0.01, np.float32) for _ in rs]
    >>> fit_acceleration_power(preds, widths, truths, rs)[0]
    0.5
    """
    r = np.asarray(accelerations, dtype=np.float64)
    spreads = {}
    for p in powers:
        scaled = [w * float(a) ** p for w, a in zip(widths, r, strict=True)]
        lam = calibrate(preds, scaled, truths, alpha=alpha)
        coverage = 1.0 - image_miscoverage(preds, scaled, truths, lam)
        per_bin = [mean for mean, _ in coverage_by_acceleration(coverage, r).values()]
        spreads[p] = float(max(per_bin) - min(per_bin))
    best = min(powers, key=lambda p: (spreads[p], p))
    return best, spreads


def interval(pred: Real, width: Real, lam: float) -> tuple[Real, Real]:
    """The conformal interval ``(max(pred - lam u, 0), pred + lam u)`` per pixel."""
    half = (lam * width).astype(np.float32)
    return np.maximum(pred - half, 0).astype(np.float32), (pred + half).astype(np.float32)
