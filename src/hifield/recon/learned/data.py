"""Training data streamed from hifield's own simulator: varied anatomy, protocol, field, coils, noise and sampling.

A *case* is one fully sampled, noise-free multi-coil slice simulated with the ``fast`` engine (the expensive part,
about 2 s at 64 x 64): the brain phantom with a random elastic deformation, random tissue intensities and inserted
lesions, or random ellipses of brain tissues; a protocol (T1 GRE, T2 TSE, FLAIR), a field and a coil array drawn at
random. A *sample* is made from a case cheaply and anew at every step: a random sampling pattern and R, complex
Gaussian noise at a random level, and SVD coil compression to ``n_virtual`` channels (so batches stack). Nothing is
written to disk: :class:`CasePool` simulates a pool once per epoch and :func:`make_sample` varies it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.recon.compression import svd_compression_matrix

PROTOCOLS = ("gre_t1_2d", "tse_t2_2d", "flair_2d")
FIELDS = ("1.5T", "3T", "7T")
COILS = (8, 12, 16, 24, 32)
PATTERNS = ("variable-density", "equispaced")


@dataclass(frozen=True)
class DataConfig:
    """What the training data vary over (defaults: the issue's ranges, 5 T and STIR held out for testing)."""

    matrix: int = 64
    """In-plane matrix of the simulated slices."""
    protocols: tuple[str, ...] = PROTOCOLS
    """Protocols drawn from."""
    fields: tuple[str, ...] = FIELDS
    """Scanner presets drawn from."""
    coils: tuple[int, ...] = COILS
    """Receive array sizes drawn from."""
    patterns: tuple[str, ...] = PATTERNS
    """Sampling patterns drawn from."""
    r_min: float = 2.0
    """Smallest acceleration."""
    r_max: float = 12.0
    """Largest acceleration."""
    n_calibration: int = 8
    """ACS lines at 64 (scaled with the matrix)."""
    calibration_spread: float = 0.0
    """Each mask's ACS count is drawn uniformly from ``n_calibration * (1 -+ calibration_spread)`` (scaled)."""
    noise_min: float = 0.002
    """Smallest noise standard deviation (per coil image pixel, real and imaginary parts together) relative to the
    peak coil-image magnitude; the default 3 T exam at 256 x 256 has about 0.012."""
    noise_max: float = 0.03
    """Largest noise standard deviation relative to the peak coil-image magnitude."""
    p_ellipses: float = 0.25
    """Probability of a random-ellipse object instead of the brain."""
    n_virtual: int = 8
    """Virtual coils after SVD compression."""
    small_lesions_max: int = 0
    """Besides the 0-3 lesions of :func:`vary_brain`, up to this many small ones per brain (0-``small_lesions_max``
    drawn uniformly), each bright on T1 (T1 x 0.3-0.5) or dark (T1 x 1.2-1.8, T2 x 1.5-3) at random."""
    small_lesion_radius: tuple[float, ...] = (0.004, 0.008)
    """Range of the small lesions' radii as fractions of the field of view (drawn log-uniformly)."""


@dataclass(frozen=True)
class Case:
    """One simulated fully sampled slice."""

    kspace: NDArray[np.complex64]
    """Noise-free coil k-space ``(coil, y, x)``, compressed to ``n_virtual`` channels."""
    target: NDArray[np.float32]
    """RSS image of the fully sampled coil images ``(y, x)`` (the truth, as the fastMRI convention has it)."""
    info: dict[str, Any]
    """What was drawn (protocol, field, coils, object)."""
    lesions: NDArray[np.float32] | None = None
    """Fraction of each pixel ``(y, x)`` filled by the small inserted lesions (for a loss that weighs them)."""


def _deform(fractions: NDArray[np.float32], rng: np.random.Generator, amplitude_px: float) -> NDArray[np.float32]:
    from scipy.ndimage import gaussian_filter, map_coordinates

    _, _, ny, nx = fractions.shape
    sigma = ny / 8
    dy = gaussian_filter(rng.standard_normal((ny, nx)), sigma)
    dx = gaussian_filter(rng.standard_normal((ny, nx)), sigma)
    scale = amplitude_px / max(np.abs(dy).max(), np.abs(dx).max(), 1e-12)
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    coords = [yy + scale * dy, xx + scale * dx]
    out = np.stack([map_coordinates(f[0], coords, order=1, mode="constant") for f in fractions])[:, None]
    total = out.sum(axis=0, keepdims=True)
    return (out / np.maximum(total, 1.0)).astype(np.float32)


def _disc(ny: int, nx: int, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0) -> NDArray[np.bool_]:
    yy, xx = np.meshgrid(np.arange(ny) - cy, np.arange(nx) - cx, indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * yy + s * xx, -s * yy + c * xx
    return (u / ry) ** 2 + (v / rx) ** 2 <= 1.0  # type: ignore[no-any-return]


def vary_brain(
    phantom: Any,
    rng: np.random.Generator,
    *,
    lesions: int | None = None,
    small_max: int = 0,
    small_radius: tuple[float, ...] = (0.004, 0.008),
) -> Any:
    """The brain ``phantom`` with a random elastic deformation, tissue intensities scaled by 0.8-1.2 and 0-3 lesions
    (discs of 2-8 % of the field of view, white matter with longer T1 and T2), and with ``small_max`` > 0 also
    0-``small_max`` small lesions (radius log-uniform in ``small_radius``, fractions of the field of view), each
    bright on T1 (T1 x 0.3-0.5) or dark (T1 x 1.2-1.8, T2 x 1.5-3), drawn after everything else (so a config without
    them draws the same brains as before they existed)."""
    fr = _deform(phantom.fractions, rng, amplitude_px=rng.uniform(0, 0.04) * phantom.shape[-1])
    tissues = [dataclasses.replace(t, pd=t.pd * float(rng.uniform(0.8, 1.2))) for t in phantom.tissues]
    n_lesions = int(rng.integers(0, 4)) if lesions is None else lesions
    _, _, ny, nx = fr.shape
    brain = fr.sum(axis=0)[0]
    inside = np.argwhere(brain > 0.9)
    if n_lesions and len(inside):
        wm = phantom.tissues[phantom.tissue_index("wm")] if "wm" in phantom.tissue_names else phantom.tissues[0]
        lesion = dataclasses.replace(
            wm, name="lesion", t1_s=wm.t1_s * float(rng.uniform(1.2, 1.8)), t2_s=wm.t2_s * float(rng.uniform(1.5, 3.0))
        )
        region = np.zeros((ny, nx), dtype=np.float32)
        for _ in range(n_lesions):
            cy, cx = inside[rng.integers(len(inside))]
            r = rng.uniform(0.02, 0.08) * nx
            region = np.maximum(region, _disc(ny, nx, cy, cx, r, r * rng.uniform(0.6, 1.4), rng.uniform(0, np.pi)))
        varied = with_lesion(phantom.replace(fractions=fr, tissues=tuple(tissues)), region * (brain > 0.5), lesion)
    else:
        varied = phantom.replace(fractions=fr, tissues=tuple(tissues))
    if small_max > 0 and len(inside):
        varied = _small_lesions(varied, phantom, rng, inside, small_max, small_radius, brain > 0.5)
    return varied


def _small_lesions(
    varied: Any,
    base: Any,
    rng: np.random.Generator,
    inside: NDArray[Any],
    n_max: int,
    radius: tuple[float, ...],
    brain: NDArray[np.bool_],
) -> Any:
    """``varied`` with 0-``n_max`` small discs, each in a T1-bright or a dark lesion tissue (see :func:`vary_brain`)."""
    _, _, ny, nx = varied.fractions.shape
    wm = base.tissues[base.tissue_index("wm")] if "wm" in base.tissue_names else base.tissues[0]
    regions = {"bright": np.zeros((ny, nx), np.float32), "dark": np.zeros((ny, nx), np.float32)}
    lo, hi = np.log(radius[0]), np.log(radius[1])
    for _ in range(int(rng.integers(0, n_max + 1))):
        cy, cx = inside[rng.integers(len(inside))]
        r = float(np.exp(rng.uniform(lo, hi))) * nx
        kind = "bright" if rng.uniform() < 0.5 else "dark"
        regions[kind] = np.maximum(regions[kind], _disc(ny, nx, cy, cx, r, r))
    t1_bright, t1_dark, t2_dark = rng.uniform(0.3, 0.5), rng.uniform(1.2, 1.8), rng.uniform(1.5, 3.0)
    tissues = {
        "bright": dataclasses.replace(wm, name="lesion-small-bright", t1_s=wm.t1_s * float(t1_bright)),
        "dark": dataclasses.replace(
            wm, name="lesion-small-dark", t1_s=wm.t1_s * float(t1_dark), t2_s=wm.t2_s * float(t2_dark)
        ),
    }
    for kind, region in regions.items():
        if region.any():
            varied = with_lesion(varied, region * brain, tissues[kind])
    return varied


def with_lesion(phantom: Any, region: NDArray[Any], lesion: Any) -> Any:
    """``phantom`` with the tissue ``lesion`` filling ``region`` ``(y, x)`` (weights 0-1 on the phantom's grid):
    there the other tissues' fractions are scaled by ``1 - region`` and the lesion takes what they gave up."""
    fr = phantom.fractions
    lesion_fr = (fr.sum(axis=0) * region)[None]
    fractions = np.concatenate([fr * (1 - region), lesion_fr]).astype(np.float32)
    return phantom.replace(fractions=fractions, tissues=(*phantom.tissues, lesion))


def lesion_discs(
    phantom: Any,
    discs: list[tuple[float, float, float]],
    *,
    t1_factor: float,
    t2_factor: float,
    name: str = "lesion",
) -> tuple[Any, list[NDArray[np.bool_]]]:
    """``phantom`` with white-matter-based lesions of T1 x ``t1_factor``, T2 x ``t2_factor`` in the given discs
    ``(centre_y, centre_x, radius)``, each as a fraction of the field of view from its top left corner (for test
    sets of lesions the training never drew), as a tissue called ``name``; returns the phantom and each disc's mask
    on the phantom's grid.

    Examples
    --------
    >>> from hifield.phantom import make_phantom
    >>> p, masks = lesion_discs(make_phantom("brain", matrix=32), [(0.5, 0.4, 0.05)], t1_factor=0.6, t2_factor=1)
    >>> p.tissue_names[-1], int(masks[0].sum()) > 0
    ('lesion', True)
    """
    _, _, ny, nx = phantom.fractions.shape
    masks = [_disc(ny, nx, cy * ny, cx * nx, r * nx, r * nx) for cy, cx, r in discs]
    wm = phantom.tissues[phantom.tissue_index("wm")]
    lesion = dataclasses.replace(wm, name=name, t1_s=wm.t1_s * t1_factor, t2_s=wm.t2_s * t2_factor)
    region = np.any(masks, axis=0).astype(np.float32)
    return with_lesion(phantom, region, lesion), masks


def random_ellipses(phantom: Any, rng: np.random.Generator) -> Any:
    """A Shepp-Logan-like object on ``phantom``'s grid: 4-12 random ellipses, each filled with one of its tissues."""
    _, _, ny, nx = phantom.fractions.shape
    n_t = len(phantom.tissues)
    labels = np.full((ny, nx), -1)
    for i in range(int(rng.integers(4, 13))):
        big = i == 0
        ry = ny * (rng.uniform(0.3, 0.45) if big else rng.uniform(0.03, 0.2))
        rx = nx * (rng.uniform(0.25, 0.4) if big else rng.uniform(0.03, 0.2))
        cy, cx = (ny / 2, nx / 2) if big else (ny * rng.uniform(0.3, 0.7), nx * rng.uniform(0.3, 0.7))
        region = _disc(ny, nx, cy, cx, ry, rx, rng.uniform(0, np.pi))
        if not big:
            region &= labels >= 0
        labels[region] = rng.integers(n_t)
    fr = np.zeros((n_t, 1, ny, nx), dtype=np.float32)
    for t in range(n_t):
        fr[t, 0] = labels == t
    return phantom.replace(fractions=fr, off_resonance_hz=np.zeros_like(phantom.off_resonance_hz), name="ellipses")


def _exam(protocol_name: str, field: str, n_coils: int, matrix: int) -> tuple[Any, Any, Any]:
    """Scanner, fully sampled sequence and base brain phantom of one (protocol, field, coils) draw.

    The library protocol gets its per-field defaults (the TI that nulls CSF for FLAIR), the matrix, and the least
    change that meets the SAR limit at that field (as ``hifield scan --adapt`` does).
    """
    from hifield import sequence as sq
    from hifield.hardware import Scanner
    from hifield.phantom import make_phantom, tissue_properties
    from hifield.sequence.field_tuning import tune_for_field

    scanner = Scanner.resolve(field).with_receive_coils(n_coils)

    def t1_of(tissue: str) -> tuple[float, str]:
        props = tissue_properties(tissue, scanner.b0_t)
        return props.t1_s, props.source

    protocol, _ = tune_for_field(sq.get_protocol(protocol_name), t1_of)
    protocol = protocol.with_changes(matrix=matrix)
    protocol, full, _ = sq.limit_sar(protocol, protocol.build(scanner), scanner, adapt=True)
    phantom = make_phantom(
        "brain",
        b0_t=scanner.b0_t,
        matrix=protocol.matrix,
        fov_m=protocol.fov_m,
        oversampling=2,
        n_slices=protocol.n_partitions,
        slab_thickness_m=protocol.slab_thickness_m,
    )
    return scanner, full, phantom


def simulate_case(config: DataConfig, rng: np.random.Generator, *, exams: dict[Any, Any] | None = None) -> Case:
    """One fully sampled, noise-free slice drawn from ``config`` and simulated with the ``fast`` engine.

    ``exams`` caches the scanners, sequences and base phantoms by (protocol, field, coils) between calls.
    """
    from hifield.sim import simulate
    from hifield.sim.field_effects import FieldEffects, apply_field_effects

    exams = {} if exams is None else exams
    protocol = str(rng.choice(config.protocols))
    field = str(rng.choice(config.fields))
    n_coils = int(rng.choice(config.coils))
    key = (protocol, field, n_coils)
    if key not in exams:
        exams[key] = _exam(protocol, field, n_coils, config.matrix)
    scanner, full, base = exams[key]
    ellipses = rng.uniform() < config.p_ellipses
    phantom = (
        random_ellipses(base, rng)
        if ellipses
        else vary_brain(base, rng, small_max=config.small_lesions_max, small_radius=config.small_lesion_radius)
    )
    lesions = lesion_fraction(phantom, config.matrix, prefix="lesion-small")
    phantom, _ = apply_field_effects(phantom, FieldEffects(), head=not ellipses)
    raw = simulate(phantom, full, scanner, engine="fast", noise=False, seed=int(rng.integers(2**31)))
    k = np.asarray(raw.kspace)[:, 0].astype(np.complex64)  # (coil, y, x) of the one slice
    from hifield.ops.fft import ifftc

    target = np.sqrt(np.sum(np.abs(ifftc(k, axes=(-2, -1))) ** 2, axis=0)).astype(np.float32)
    u = svd_compression_matrix(k, min(config.n_virtual, k.shape[0]))
    kc = np.einsum("cv,c...->v...", np.conj(u), k).astype(np.complex64)
    info = {"protocol": protocol, "field": field, "n_coils": n_coils, "object": "ellipses" if ellipses else "brain"}
    return Case(kspace=kc, target=target, info=info, lesions=lesions)


def lesion_fraction(phantom: Any, matrix: int, *, prefix: str = "lesion") -> NDArray[np.float32]:
    """The fraction of each pixel of the ``matrix`` x ``matrix`` image grid that ``phantom``'s tissues named
    ``prefix...`` fill, from its first slice averaged over the finer phantom grid."""
    fr = np.asarray(phantom.fractions)[:, 0]
    picks = [i for i, name in enumerate(phantom.tissue_names) if name.startswith(prefix)]
    total = fr[picks].sum(axis=0) if picks else np.zeros(fr.shape[1:], np.float32)
    fy, fx = (int(s) // matrix for s in np.shape(total)[-2:])
    return total[: matrix * fy, : matrix * fx].reshape(matrix, fy, matrix, fx).mean(axis=(1, 3)).astype(np.float32)


def make_mask(n: int, rng: np.random.Generator, config: DataConfig) -> tuple[NDArray[np.float32], float]:
    """A random k1 sampling mask ``(n, n)`` (lines along k0 fully sampled) and its R, from hifield's patterns."""
    from hifield.sampling import make_pattern

    r = float(np.exp(rng.uniform(np.log(config.r_min), np.log(config.r_max))))
    name = str(rng.choice(config.patterns))
    if name == "equispaced":
        r = float(round(r))
    spread = config.calibration_spread
    n_cal = max(2, round(config.n_calibration * float(rng.uniform(1 - spread, 1 + spread)) * n / 64))
    n_cal = min(n_cal, max(2, int(n / r) - 2))
    pattern = make_pattern(name, n, acceleration=r, n_calibration=n_cal, seed=int(rng.integers(2**31)))
    lines: NDArray[np.bool_] = np.asarray(np.asarray(pattern.mask).reshape(-1, n).any(axis=0))
    return np.repeat(lines[:, None], n, axis=1).astype(np.float32), r


def make_sample(case: Case, rng: np.random.Generator, config: DataConfig) -> dict[str, NDArray[Any]]:
    """A training sample from ``case``: undersampled noisy k-space ``(coil, y, x)``, its mask ``(1, y, x)`` and the
    target ``(y, x)``, all divided by one scale (the 99th percentile of the zero-filled RSS image), and the small
    lesions' fraction ``(y, x)`` (zeros where the case has none)."""
    k = case.kspace
    n = k.shape[-2]
    mask, _ = make_mask(n, rng, config)
    sigma = noise_sigma(k, float(np.exp(rng.uniform(np.log(config.noise_min), np.log(config.noise_max)))))
    noise = (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * sigma / np.sqrt(2)
    y = ((k + noise) * mask).astype(np.complex64)
    scale = data_scale(y)
    lesions = case.lesions if case.lesions is not None else np.zeros(case.target.shape, np.float32)
    return {"y": y / scale, "mask": mask[None], "target": case.target / scale, "lesions": lesions}


def noise_sigma(k: NDArray[np.complex64], relative: float) -> float:
    """K-space noise standard deviation that puts ``relative`` x the peak coil-image magnitude of noise on each
    coil-image pixel (the centred FFT is orthonormal, so the noise has the same standard deviation in both spaces).

    Examples
    --------
    >>> import numpy as np
    >>> k = np.fft.fft2(np.ones((1, 4, 4)), norm="ortho")  # coil image of ones
    >>> round(noise_sigma(k, 0.01), 6)
    0.01
    """
    from hifield.ops.fft import ifftc

    return relative * float(np.abs(ifftc(k, axes=(-2, -1))).max())


def data_scale(y: NDArray[np.complex64]) -> float:
    """Normalising scale of undersampled coil k-space ``(coil, y, x)``: the 99th percentile of its zero-filled RSS."""
    from hifield.ops.fft import ifftc

    img = np.sqrt(np.sum(np.abs(ifftc(y, axes=(-2, -1))) ** 2, axis=0))
    return max(float(np.percentile(img, 99)), 1e-12)


class CasePool:
    """Cases simulated once per epoch; :meth:`batch` draws samples from them with fresh pattern and noise."""

    def __init__(self, config: DataConfig, n_cases: int, seed: int) -> None:
        self.config = config
        self.n_cases = n_cases
        self.seed = seed
        self.cases: list[Case] = []
        self._exams: dict[Any, Any] = {}

    def refresh(self, epoch: int, progress: Any = None) -> None:
        """Simulate the pool of ``epoch`` (seeded by the pool's seed and the epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        self.cases = []
        for _ in range(self.n_cases):
            self.cases.append(simulate_case(self.config, rng, exams=self._exams))
            if progress is not None:
                progress()

    def batch(self, rng: np.random.Generator, size: int) -> dict[str, NDArray[Any]]:
        """``size`` samples stacked: ``y`` ``(b, coil, y, x)``, ``mask`` ``(b, 1, y, x)``, ``target`` ``(b, y, x)``."""
        picks = [make_sample(self.cases[int(rng.integers(len(self.cases)))], rng, self.config) for _ in range(size)]
        return {key: np.stack([p[key] for p in picks]) for key in picks[0]}
