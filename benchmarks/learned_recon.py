"""Benchmark the shipped learned reconstructions (varnet, modl) against zero-filled, SENSE, L1-wavelet CS and TV.

Test sets, all 256 x 256 with 16 coils and never trained on (the data seeds differ from training's; (b), (c) and
(d) lie outside its distribution):

* (a) the default exam (3 T, T1 GRE, brain, variable density, 24 calibration lines; 19 at R = 12, where 24 would
  leave no other lines) at R = 4, 6, 8, 12;
* (b) STIR at 5 T (protocol and field left out of training), R = 8;
* (c) the Shepp-Logan phantom (outside the training distribution), R = 8;
* (d) the default exam at R = 4, 6 and 8 with lesions of sizes and contrasts the training never drew (training:
  0-3 white-matter discs of 2-8 % of the field of view with T1 x 1.2-1.8 and T2 x 1.5-3; modl's fine-tuning at 256
  also 0-8 small discs of 0.4-0.8 %, bright with T1 x 0.3-0.5 or dark): three small discs
  (radius 1 % of the field of view) with T1 x 0.6 (bright on T1 weighting) and one large disc (radius 11 %) with
  T1 x 1.5, T2 x 2. Per lesion and method: the lesion's contrast against a ring around it,
  ``(mean(lesion) - mean(ring)) / mean(ring)``, and its error relative to the truth's; for the learned methods also
  how far each map (the null-space map, the data-consistency residual image and the signed data-consistency
  correction ``E^+ (y - E x)``) stands out over the lesion (its mean over it minus its mean over the ring; the
  correction counted in the direction of the lesion's error) against the lesion's absolute error, and how often the
  same lesion-and-ring shape stands out as far at 200 other places in the object (false alarms); and the
  significance map (a matched-filter test of the residual for a missing or invented blob, in standard deviations
  of the receive noise from the noise scan) by its mean over the lesion. A lesion passes if its contrast is within
  20 % of the truth's, or if a map flags it: it stands out by at least half the error of the lesion's mean (the
  significance map: by at least 3 noise standard deviations) with at most 5 % false alarms (a map that is high, or
  noisy, everywhere shows nothing). R = 4 asks
  whether a network keeps what the data hold (CS keeps most of these lesions there); R = 8 whether it flags what
  they do not. What the sampling itself determines is shown beside it: the lesion's contrast in the noise-free
  minimum-norm image, ``E^+ E x`` of the noise-free truth with the exact coil maps (:func:`encoding_limit`), the most
  any data-consistent reconstruction gets without a prior that knows the lesion.

Where a learned method scores below CS (the issue's target on (c): no worse than CS, or the uncertainty shows
where), :func:`where_worse` asks whether its interval is wide where it is worse: over the object pixels whose error
exceeds CS's by more than 5 % of the truth's maximum, the area under the ROC curve of the interval's width as a
detector of those pixels (0.5: no better than chance) and the interval's coverage there.

Every method runs through ``hifield.pipeline.scan`` (the same raw data per row, scored against the noise-free fully
sampled RSS image with ``hifield.metrics`` as fastMRI computes SSIM); the time is the pipeline's per-method time on
one slice (coil maps included for sense/cs/tv, the uncertainty maps included for the learned methods). A separate
timing, first of all, runs the learned models alone on a 256 x 256, 16-coil slice (with and without the uncertainty
maps).
The load average before and after is recorded.

Run: ``python benchmarks/learned_recon.py``; writes ``benchmarks/results/learned_recon.json`` and ``.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hifield.pipeline import scan
from hifield.scan_config import ScanConfig

METHODS = ("fft", "sense", "cs", "tv", "varnet", "modl")
RESULTS = Path(__file__).parent / "results"


def _n_calibration(matrix: int, r: float) -> int:
    if matrix >= 256:
        return min(24, int(matrix / r) - 2)
    return min(8, int(matrix / r))


def scores(name: str, r: float, result: Any) -> dict[str, Any]:
    """A row of the table from a scan's result: SSIM/PSNR/NMSE and seconds per method; for the learned methods
    also the empirical coverage of their 90 % conformal interval (the fraction of object pixels, ``|x|`` above 5 %
    of its maximum, whose truth lies inside it) and the correlation of the interval's width with the error."""
    n = result.truth.shape[-1]
    truth = result.truth.reshape(-1, n, n)[0]
    methods: dict[str, dict[str, Any]] = {
        m["method"]: {k: round(float(m[k]), 4) for k in ("ssim", "psnr", "nmse", "time_s")}
        for m in result.summary["reconstructions"]
    }
    for method, image in result.recon_images.items():
        extras = image.extras
        if "conformal_lower" not in extras:
            continue
        pred = result.images[method].reshape(-1, n, n)[0]
        lower, upper = (np.asarray(extras[k]).reshape(-1, n, n)[0] for k in ("conformal_lower", "conformal_upper"))
        region = pred > 0.05 * float(pred.max())
        inside = (truth >= lower) & (truth <= upper)
        error = np.abs(truth - pred)[region]
        methods[method]["coverage"] = round(float(inside[region].mean()), 4)
        methods[method]["width_error_corr"] = round(float(np.corrcoef(upper[region] - lower[region], error)[0, 1]), 4)
        if "cs" in result.images:
            cs = result.images["cs"].reshape(-1, n, n)[0]
            z = np.asarray(extras["dc_significance"]).reshape(-1, n, n)[0] if "dc_significance" in extras else None
            methods[method]["where_worse_than_cs"] = where_worse(truth, pred, cs, lower, upper, region, z)
    return {
        "set": name,
        "R": r,
        "acceleration": result.summary["acceleration"],
        "calibration_lines": result.summary["calibration_lines"],
        "methods": methods,
    }


WORSE_MARGIN = 0.05
"""A pixel counts as worse than CS where its error exceeds CS's by more than this fraction of the truth's maximum."""


def roc_auc(score: Any, positive: Any) -> float:
    """Area under the ROC curve of ``score`` as a detector of ``positive`` (boolean, same shape): the probability that
    a positive pixel scores above a negative one, ties counted half (Mann-Whitney U / (n_pos n_neg)).

    >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True]))
    0.75
    """
    from scipy.stats import rankdata

    ranks = rankdata(np.ravel(score))
    pos = np.ravel(positive).astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def where_worse(
    truth: Any, pred: Any, cs: Any, lower: Any, upper: Any, region: Any, significance: Any = None
) -> dict[str, float]:
    """Does a learned image's interval show where it is worse than CS? Over the object ``region``, the pixels where
    ``|truth - pred|`` exceeds ``|truth - cs|`` by more than :data:`WORSE_MARGIN` of the truth's maximum: their share
    of the object, the ROC AUC of the interval's width as a detector of them (:func:`roc_auc`) and the interval's
    coverage over them (``nan`` where there are none); with a ``significance`` map, also the AUC of its magnitude
    (does the data's disagreement show them?)."""
    worse = np.abs(truth - pred) > np.abs(truth - cs) + WORSE_MARGIN * float(truth.max())
    worse_in = worse[region]
    inside = (truth >= lower) & (truth <= upper)
    out = {
        "fraction": round(float(worse_in.mean()), 4),
        "width_auc": round(roc_auc((upper - lower)[region], worse_in), 4),
        "coverage": round(float(inside[region][worse_in].mean()), 4) if worse_in.any() else float("nan"),
    }
    if significance is not None:
        out["significance_auc"] = round(roc_auc(np.abs(significance)[region], worse_in), 4)
    return out


def run_row(name: str, *, r: float, matrix: int = 64, **options: Any) -> dict[str, Any]:
    """One scan with every method: :func:`scores` of its result."""
    cfg = ScanConfig(
        acceleration=r,
        matrix=matrix,
        n_calibration=_n_calibration(matrix, r),
        recons=METHODS,
        write_files=False,
        seed=1234,
        **options,
    )
    return scores(name, r, scan(cfg))


SMALL_BRIGHT = [(0.35, 0.20, 0.01), (0.70, 0.75, 0.01), (0.25, 0.55, 0.01)]
"""Small lesions ``(centre_y, centre_x, radius)`` as fractions of the field of view: cortex, cortex, white matter."""
LARGE_DARK = [(0.58, 0.40, 0.11)]
"""One large lesion across white and grey matter."""


@contextlib.contextmanager
def lesions_inserted(masks: list[Any]) -> Iterator[None]:
    """While open, the pipeline's phantom carries the (d) lesions; ``masks`` receives each lesion's mask on the
    phantom's grid (a plain wrapper of :func:`hifield.pipeline.phantom_for_protocol`, restored on exit)."""
    import hifield.pipeline as pipeline
    from hifield.recon.learned.data import lesion_discs

    original = pipeline.phantom_for_protocol

    def with_lesions(kind: str, protocol: Any, **options: Any) -> Any:
        phantom = original(kind, protocol, **options)
        phantom, small = lesion_discs(phantom, SMALL_BRIGHT, t1_factor=0.6, t2_factor=1.0, name="lesion-bright")
        phantom, large = lesion_discs(phantom, LARGE_DARK, t1_factor=1.5, t2_factor=2.0, name="lesion-dark")
        masks[:] = small + large
        return phantom

    pipeline.phantom_for_protocol = with_lesions
    try:
        yield
    finally:
        pipeline.phantom_for_protocol = original


def _on_image_grid(mask: Any, n: int) -> Any:
    """A phantom-grid mask averaged onto the ``n x n`` image grid (the phantom is an integer factor finer)."""
    m = np.asarray(mask, dtype=np.float32)
    f = m.shape[-1] // n
    return m.reshape(n, f, n, f).mean(axis=(1, 3))


FALSE_ALARM_MAX = 0.05
"""A map flags a lesion only if at most this fraction of same-shaped places elsewhere in the object stand out as
far (its blob must be one a reader could pick out, not one of many)."""
SIGNED_MAPS = ("dc_correction", "dc_significance")
"""Maps with a sign (what the data would add): they must stand out in the direction of the lesion's error."""
SIGNIFICANCE_MAPS = ("dc_significance",)
"""Maps of a test statistic in noise standard deviations that already contrast each blob with its ring (a matched
filter): read as their mean over the lesion (no ring subtracted), and they flag at :data:`Z_FLAG` or more."""
Z_FLAG = 3.0
"""A significance map flags a lesion at a mean of at least this many noise standard deviations over it (one-sided
p < 0.0014 for one blob under noise alone), besides the false-alarm limit."""


def stand_out(m: Any, core: Any, outer: Any, *, ring: bool = True) -> float:
    """How far map ``m`` stands out over ``core``: its mean there minus its mean over the ring ``outer`` (only the
    mean over ``core`` when not ``ring``)."""
    return float(m[core].mean() - (m[outer].mean() if ring else 0.0))


def false_alarm_rate(
    m: Any, core: Any, outer: Any, region: Any, level: float, *, n: int = 200, ring: bool = True
) -> float:
    """Fraction of ``n`` places in ``region`` (a fixed random draw) where the same core and ring, moved there,
    stand out (:func:`stand_out`) by ``|.| >= level`` in map ``m``."""
    cy, cx = np.argwhere(core).mean(axis=0).round().astype(int)
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        return 0.0
    picks = np.random.default_rng(0).choice(ys.size, size=min(n, ys.size), replace=False)
    hits = [
        abs(stand_out(m, np.roll(core, shift, (0, 1)), np.roll(outer, shift, (0, 1)), ring=ring)) >= level
        for shift in ((int(ys[k] - cy), int(xs[k] - cx)) for k in picks)
    ]
    return float(np.mean(hits))


def lesion_contrasts(
    truth: Any,
    images: dict[str, Any],
    maps: dict[str, dict[str, Any]],
    masks: list[Any],
    intervals: dict[str, tuple[Any, Any]] | None = None,
) -> list[Any]:
    """Per lesion: its contrast in the truth and in each method's image, the relative error, and for learned
    methods, per map in ``maps[method]`` (e.g. ``null_space``, ``dc_residual_image``, ``dc_correction``), how far
    it stands out over the lesion (:func:`stand_out`; a signed map counted in the direction of the lesion's error)
    against the absolute error of the lesion's mean, and its false-alarm rate (:func:`false_alarm_rate` at that
    stand-out, over the object away from every lesion). A map flags the lesion if it stands out by at least half
    the error and at most :data:`FALSE_ALARM_MAX` of other places stand out as far (a map high everywhere, or
    noisy everywhere, flags nothing); a significance map (:data:`SIGNIFICANCE_MAPS`) by its mean over the lesion,
    at :data:`Z_FLAG` noise standard deviations or more, with the same false-alarm limit. Where
    ``intervals[method]`` gives its conformal ``(lower, upper)``, the entry also says which fraction of the lesion's
    pixels hold their true value inside (``interval_covers``)."""
    from scipy.ndimage import binary_dilation

    n = truth.shape[-1]
    grids = [_on_image_grid(mask, n) for mask in masks]
    near_lesion = binary_dilation(np.any([g > 0 for g in grids], axis=0), iterations=8)
    region = (truth > 0.1 * float(truth.max())) & ~near_lesion
    out = []
    for i, frac in enumerate(grids):
        core = frac >= 0.9
        if core.sum() < 4:
            core = frac >= 0.5
        outer = binary_dilation(frac > 0, iterations=4) & ~binary_dilation(frac > 0, iterations=1)

        def contrast(img: Any, core: Any = core, outer: Any = outer) -> float:
            ring = float(img[outer].mean())
            return (float(img[core].mean()) - ring) / ring

        c_true = contrast(truth)
        row: dict[str, Any] = {"lesion": i, "pixels": int(core.sum()), "truth_contrast": round(c_true, 4)}
        for method, img in images.items():
            c = contrast(img)
            err = abs(c - c_true) / abs(c_true)
            entry: dict[str, Any] = {"contrast": round(c, 4), "relative_error": round(err, 4), "kept": bool(err <= 0.2)}
            if method in maps:
                lack = float(truth[core].mean()) - float(img[core].mean())
                abs_err = abs(lack)
                entry["abs_error"] = round(abs_err, 5)
                entry["maps"] = {}
                for name, m in maps[method].items():
                    ring = name not in SIGNIFICANCE_MAPS
                    excess = stand_out(m, core, outer, ring=ring) * (np.sign(lack) if name in SIGNED_MAPS else 1.0)
                    alarms = false_alarm_rate(m, core, outer, region, abs(excess), ring=ring)
                    enough = excess >= Z_FLAG if name in SIGNIFICANCE_MAPS else excess >= 0.5 * abs_err
                    entry["maps"][name] = {
                        "excess": round(excess, 5),
                        "false_alarm": round(alarms, 3),
                        "flags": bool(enough and alarms <= FALSE_ALARM_MAX),
                    }
                entry["flagged"] = any(v["flags"] for v in entry["maps"].values())
            if intervals and method in intervals:
                lower, upper = intervals[method]
                inside = (truth[core] >= lower[core]) & (truth[core] <= upper[core])
                entry["interval_covers"] = round(float(inside.mean()), 3)
            entry["passes"] = bool(entry["kept"] or entry.get("flagged", False))
            row[method] = entry
        out.append(row)
    return out


ENCODING = "encoding_limit"
"""The set (d) entry of :func:`encoding_limit`'s image (a column of its own, not a method)."""
ENCODING_ITER = 1000
"""CG iterations of :func:`encoding_limit` (noise-free, so many iterations only add detail; float32 CG drifts from
about 3000 on)."""


def encoding_limit(cfg: ScanConfig, *, n_iter: int = ENCODING_ITER) -> Any:
    """What the sampling of ``cfg``'s exam determines of the current phantom: ``|E^+ E x|`` ``(n, n)``, the
    minimum-norm image consistent with its noise-free undersampled data, with the exact coil maps (``coil / RSS`` of
    the noise-free fully sampled scan, so ``x`` is the RSS truth and ``E x`` its data exactly), by
    :func:`hifield.recon.learned.uncertainty.null_space_component` (``x`` minus its null-space part). Whatever it
    lacks of a lesion lies where the data barely see, and only a prior can put it back."""
    import hifield.pipeline as pipeline
    from hifield.ops.fft import ifftc
    from hifield.recon.learned.uncertainty import null_space_component

    cfg = cfg.validated()
    exam = pipeline.exam_for(cfg)
    full, accelerated = pipeline.simulate_exam(cfg, exam, pipeline.exam_phantom(cfg, exam)[0], noise=False)
    coil = ifftc(full.kspace[:, 0], axes=(-2, -1))  # (coil, y, x) of the single slice
    rss = np.sqrt(np.sum(np.abs(coil) ** 2, axis=0))
    maps = (coil / np.maximum(rss, 1e-6 * float(rss.max()))).astype(np.complex64)
    lines = accelerated.sampling_mask[0].any(axis=-1, keepdims=True)
    mask = np.broadcast_to(lines, rss.shape).astype(np.float32)
    x = rss.astype(np.complex64)
    return np.abs(x - null_space_component(x, maps, mask, n_iter=n_iter)).astype(np.float32)


def run_lesion_row(r: float) -> tuple[dict[str, Any], list[Any]]:
    """Set (d): the default exam at ``r`` with unseen lesions; the scores and the per-lesion contrasts, with the
    contrast the sampling itself determines (:func:`encoding_limit`) as entry :data:`ENCODING`."""
    masks: list[Any] = []
    cfg = ScanConfig(acceleration=r, matrix=256, n_calibration=24, recons=METHODS, write_files=False, seed=1234)
    with lesions_inserted(masks):
        result = scan(cfg)
        limit = encoding_limit(cfg)
    n = 256
    truth = result.truth.reshape(-1, n, n)[0]
    images = {m: result.images[m].reshape(-1, n, n)[0] for m in METHODS} | {ENCODING: limit}
    maps = {
        m: {k: np.asarray(result.recon_images[m].extras[k]).reshape(-1, n, n)[0] for k in LESION_MAPS}
        for m in METHODS
        if "null_space" in result.recon_images[m].extras
    }
    intervals = {
        m: tuple(np.asarray(result.recon_images[m].extras[k]).reshape(-1, n, n)[0] for k in BOUNDS) for m in maps
    }
    row = scores("(d) 3T T1 GRE brain 256, unseen lesions", r, result)
    return row, [d | {"acceleration": r} for d in lesion_contrasts(truth, images, maps, masks, intervals)]


BOUNDS = ("conformal_lower", "conformal_upper")


LESION_MAPS = ("null_space", "dc_residual_image", "dc_correction", "dc_significance")
"""The learned methods' maps that may flag a lesion they lost."""


def time_256(repeats: int = 5) -> dict[str, float]:
    """Seconds per 256 x 256 16-coil slice of each learned model, with and without the uncertainty maps (median of
    ``repeats`` after a warm-up, the models alternated run by run)."""
    from hifield.recon.learned import LearnedConfig
    from hifield.recon.learned.infer import reconstruct_learned
    from hifield.recon.problem import EncodingProblem

    n, c = 256, 16
    rng = np.random.default_rng(0)
    lines = rng.random(n) < 1 / 8
    lines[n // 2 - 12 : n // 2 + 12] = True
    mask = np.broadcast_to(lines[None, :, None], (1, n, n))
    y = ((rng.standard_normal((c, 1, n, n)) + 1j * rng.standard_normal((c, 1, n, n))) * mask).astype(np.complex64)
    problem = EncodingProblem(header=None, shape=(1, n, n), frames=y[None], other_shape=(), y=y, mask=mask)  # type: ignore[arg-type]
    kinds = ("varnet", "modl")
    times: dict[str, list[float]] = {}
    for unc in (False, True):
        cfg = LearnedConfig(uncertainty=unc)
        for kind in kinds:
            reconstruct_learned(kind, problem, cfg)  # warm-up (loads the weights)
        for _ in range(repeats):  # the models alternate run by run
            for kind in kinds:
                start = time.perf_counter()
                reconstruct_learned(kind, problem, cfg)
                times.setdefault(f"{kind}{'+uncertainty' if unc else ''}", []).append(time.perf_counter() - start)
    out = {name: round(float(np.median(t)), 3) for name, t in sorted(times.items())}
    return out


MAP_LABELS = {
    "null_space": "null",
    "dc_residual_image": "residual",
    "dc_correction": "correction",
    "dc_significance": "significance",
}


def lesion_lines(lesions: list[Any]) -> list[str]:
    """The Markdown table of set (d): contrast per lesion and method, relative error, and the learned methods'
    map flags."""
    lines = [
        "",
        "Set (d), per lesion: contrast against a ring around it (truth, then each method with its error relative to "
        "the truth's); for the learned methods, per map (null space, data-consistency residual image, signed "
        "data-consistency correction), how far it stands out over the lesion (mean over it minus mean over the "
        "ring, the correction in the direction of the error) / the absolute error of the lesion's mean, and in "
        "brackets the fraction of other places in the object that stand out as far (false alarms); for the "
        "significance map (a matched-filter test of the residual, in noise standard deviations), its mean over the "
        "lesion in the direction of the error, with its false alarms. "
        f"Pass: error <= 20 %, or a map stands out by >= half the error (the significance map: >= {Z_FLAG:g} sd) "
        f"with <= {FALSE_ALARM_MAX:.0%} false alarms (flagged). Last, the fraction of the lesion's pixels whose "
        "true value lies inside the 90 % conformal interval (not part of the pass rule). The column 'sampling' is "
        "what the sampling itself determines: the "
        "lesion's contrast in the noise-free minimum-norm image with the exact coil maps (`E^+ E x` of the truth, "
        f"{ENCODING_ITER} CG iterations), the most a data-consistent reconstruction keeps without a prior that knows "
        "the lesion.",
        "",
        "| R | lesion | pixels | truth | sampling | " + " | ".join(METHODS) + " |",
        "|---|---|---|---|---|" + "---|" * len(METHODS),
    ]
    for row in lesions:
        limit = row.get(ENCODING)
        cells = [f"{limit['contrast']:+.3f} ({100 * limit['relative_error']:.0f} %)" if limit else "-"]
        for m in METHODS:
            e = row[m]
            cell = f"{e['contrast']:+.3f} ({100 * e['relative_error']:.0f} %)"
            if "maps" in e:
                cell += " " + ", ".join(
                    f"{MAP_LABELS.get(k, k)} "
                    + (
                        f"{v['excess']:.1f} sd"
                        if k in SIGNIFICANCE_MAPS
                        else f"{v['excess'] / max(e['abs_error'], 1e-12):.2f}"
                    )
                    + f" ({v['false_alarm']:.0%})"
                    for k, v in e["maps"].items()
                )
            if "interval_covers" in e:
                cell += f", interval holds {e['interval_covers']:.0%}"
            cells.append(cell + (" pass" if e["passes"] else " FAIL"))
        kind = "small bright" if row["lesion"] < len(SMALL_BRIGHT) else "large dark"
        lines.append(
            f"| {row.get('acceleration', 8.0):.0f} | {row['lesion']} {kind} | {row['pixels']} | "
            f"{row['truth_contrast']:+.3f} | " + " | ".join(cells) + " |"
        )
    return lines


def table_rows(rows: list[dict[str, Any]], cells: Any) -> list[str]:
    """Markdown rows ``| set | R | cells... |`` of the table's rows; ``cells(row, methods)`` gives the rest."""
    return [
        f"| {row['set']} | {row['acceleration']:.2f} | " + " | ".join(cells(row, row["methods"])) + " |" for row in rows
    ]


def markdown(report: dict[str, Any]) -> str:
    """The Markdown tables of a run's ``report`` (what the .json holds)."""
    before, after = report["load_average_before"][0], report["load_average_after"][0]
    lines = [
        "# Learned reconstruction vs classical methods",
        "",
        f"`python benchmarks/learned_recon.py`; load average {before:.2f} before, {after:.2f} after "
        f"(2 shared cores, torch threads {report['cpu_threads']}). 16 coils, seed 1234; SSIM as fastMRI computes "
        "it (`hifield.metrics`) against the noise-free fully sampled RSS image; time per slice in seconds (coil maps "
        "included for sense/cs/tv, uncertainty maps included for varnet/modl). Training matrix: "
        + ", ".join(f"{k} {m['trained_matrix']} x {m['trained_matrix']}" for k, m in report["models"].items())
        + ".",
        "",
        "| set | R | ACS | "
        + " | ".join(f"{m} SSIM" for m in METHODS)
        + " | "
        + " | ".join(f"{m} s" for m in METHODS)
        + " |",
        "|---|---|---|" + "---|" * (2 * len(METHODS)),
    ]
    lines += table_rows(
        report["rows"],
        lambda row, ms: (
            [str(row["calibration_lines"])]
            + [f"{ms[m]['ssim']:.4f}" for m in METHODS]
            + [f"{ms[m]['time_s']:.2f}" for m in METHODS]
        ),
    )
    learned = [m for m in METHODS if "coverage" in report["rows"][0]["methods"].get(m, {})]
    lines += [
        "",
        "Conformal 90 % interval of the learned methods on each set: empirical coverage of the object pixels; the "
        "10th-90th percentile of the per-image coverage of the weights' held-out test images in the same R bin "
        "(the 90 % holds on average over images; one image strays this far from it); and the correlation of the "
        "interval's width with the error |truth - |x|| (where the interval is wide, is the error large?).",
        "",
        "| set | R | "
        + " | ".join(f"{m} coverage | {m} held-out images at this R | {m} width-error corr." for m in learned)
        + " |",
        "|---|---|" + "---|---|---|" * len(learned),
    ]
    lines += table_rows(
        report["rows"],
        lambda row, ms: [
            cell
            for m in learned
            for cell in (
                f"{ms[m]['coverage']:.3f}",
                held_out_range(report["models"].get(m, {}), row["acceleration"]),
                f"{ms[m]['width_error_corr']:.2f}",
            )
        ],
    )
    if any("where_worse_than_cs" in row["methods"].get(m, {}) for row in report["rows"] for m in learned):
        lines += [
            "",
            "Where the learned image is worse than CS (its error above CS's by more than "
            f"{WORSE_MARGIN:.0%} of the truth's maximum): that share of the object pixels, the ROC AUC of the "
            "interval's width as a detector of them (0.5: chance), the interval's coverage over them, and the ROC "
            "AUC of the significance map's magnitude |z| as a detector of them. Rows where the learned SSIM is below "
            "CS's are marked *.",
            "",
            "| set | R | "
            + " | ".join(f"{m} worse share | {m} width AUC | {m} covered there | {m} abs(z) AUC" for m in learned)
            + " |",
            "|---|---|" + "---|---|---|---|" * len(learned),
        ]

        def worse_cells(row: dict[str, Any], ms: dict[str, Any]) -> list[str]:
            out = []
            for m in learned:
                w = ms[m].get("where_worse_than_cs")
                if w is None:
                    out += ["-"] * 4
                    continue
                star = "*" if ms[m]["ssim"] < ms["cs"]["ssim"] else ""
                out += [f"{w['fraction']:.3f}{star}", f"{w['width_auc']:.2f}", f"{w['coverage']:.3f}"]
                out += [f"{w['significance_auc']:.2f}" if "significance_auc" in w else "-"]
            return out

        lines += table_rows(report["rows"], worse_cells)
    lines += lesion_lines(report["lesions"])
    lines += [
        "",
        "Learned models alone on a 256 x 256, 16-coil slice (timed first, on the quiet machine; median of 5 after a "
        "warm-up, the two models alternated run by run, seconds):",
        "",
    ]
    lines += [f"- {k}: {v:.3f} s" for k, v in report["time_256x256_16coil_s"].items()]
    lines += ["", "Shipped models:", ""]
    for m in report["models"].values():
        lines.append(
            f"- {m['name']} v{m['version']} (commit {m['commit'][:10]}): {m['trained_steps']} steps, validation SSIM "
            f"{m['val_ssim']:.4f}; conformal lambda {m['conformal_lambda']:.3f}{calibration(m)}, held-out coverage "
            f"{m['conformal_test_coverage']:.3f}{coverage_se(m)} (nominal 0.90); `{m['training_command']}`"
        )
    return "\n".join(lines) + "\n"


def calibration(m: dict[str, Any]) -> str:
    """How a shipped model's conformal factor was calibrated, as a bracket for the Markdown ('' if not recorded)."""
    if not m.get("conformal_method"):
        return ""
    width = " + ".join(m.get("conformal_width") or [])
    if m.get("conformal_acceleration_power"):
        width = f"({width} + floor) x R^{m['conformal_acceleration_power']:g}"
    else:
        width += " + floor"
    commit = (m.get("calibration_commit") or "")[:10]
    return f" ({m['conformal_method']}, width {width}, {m['conformal_n_calibration']} images, commit {commit})"


def held_out_range(m: dict[str, Any], acceleration: float) -> str:
    """``lo-hi``: the 10th-90th percentile of the per-image coverage of the model's held-out test images in the R
    bin of ``acceleration`` (- where the weights do not record it)."""
    from hifield.recon.learned.uncertainty import coverage_range_by_acceleration

    ranges = m.get("conformal_test_coverage_p10_p90_by_acceleration") or {}
    label = next(iter(coverage_range_by_acceleration(np.array([0.0]), np.array([acceleration]))))
    if label not in ranges:
        return "-"
    lo, hi = ranges[label]
    return f"{lo:.2f}-{hi:.2f}"


def coverage_se(m: dict[str, Any]) -> str:
    """`` +- SE on N images`` of the held-out coverage where recorded."""
    if m.get("conformal_test_coverage_se") is None:
        return ""
    by_r = m.get("conformal_test_coverage_by_acceleration") or {}
    per_bin = "; by R " + ", ".join(f"{k} {v[0]:.3f} ({v[1]})" for k, v in by_r.items()) if by_r else ""
    return f" +- {m['conformal_test_coverage_se']:.3f} on {m['conformal_n_test']} images{per_bin}"


def main() -> None:
    """Run every row and write the JSON and Markdown tables (``--markdown-from FILE.json``: render a saved run's
    Markdown again, run nothing)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown-from", type=Path, help="render the .md of a saved .json again, run nothing")
    args = parser.parse_args()
    if args.markdown_from is not None:
        args.markdown_from.with_suffix(".md").write_text(markdown(json.loads(args.markdown_from.read_text())))
        return
    import torch

    from hifield.recon.learned.infer import load_model, weights_path

    torch.set_num_threads(2)
    load_before = os.getloadavg()
    timing = time_256()  # first, on the machine as quiet as it was found (the scans below leave it busier)
    rows = [run_row("(a) 3T T1 GRE brain 256", r=r, matrix=256) for r in (4.0, 6.0, 8.0, 12.0)]
    rows.append(run_row("(b) STIR 5T brain 256 (held out)", r=8.0, matrix=256, protocol="stir_2d", field="5T"))
    rows.append(run_row("(c) Shepp-Logan 256 (out of distribution)", r=8.0, matrix=256, phantom="shepp-logan"))
    lesions = []
    for r in (4.0, 6.0, 8.0):
        lesion_row, per_lesion = run_lesion_row(r)
        rows.append(lesion_row)
        lesions += per_lesion
    load_after = os.getloadavg()
    meta = {k: load_model(str(weights_path(k)))[1] for k in ("varnet", "modl")}
    report = {
        "rows": rows,
        "lesions": lesions,
        "time_256x256_16coil_s": timing,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpu_threads": torch.get_num_threads(),
        "models": {
            k: {
                key: m[key]
                for key in (
                    "name",
                    "version",
                    "commit",
                    "trained_steps",
                    "val_ssim",
                    "conformal_lambda",
                    "conformal_test_coverage",
                    "training_command",
                )
            }
            | {
                key: m.get(key)  # recorded by the calibration since risk control (absent in older weights)
                for key in (
                    "calibration_commit",
                    "conformal_method",
                    "conformal_width",
                    "conformal_n_calibration",
                    "conformal_n_test",
                    "conformal_test_coverage_se",
                    "conformal_acceleration_power",
                    "conformal_test_coverage_by_acceleration",
                    "conformal_test_coverage_p10_p90_by_acceleration",
                )
            }
            | {"trained_matrix": m["config"]["data"]["matrix"]}
            for k, m in meta.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learned_recon.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (RESULTS / "learned_recon.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
