"""Benchmark the shipped learned reconstructions (varnet, modl) against zero-filled, SENSE, L1-wavelet CS and TV.

Test sets, all 256 x 256 with 16 coils and never trained on (the data seeds differ from training's; (b), (c) and
(d) lie outside its distribution):

* (a) the default exam (3 T, T1 GRE, brain, variable density, 24 calibration lines; 19 at R = 12, where 24 would
  leave no other lines) at R = 4, 6, 8, 12;
* (b) STIR at 5 T (protocol and field left out of training), R = 8;
* (c) the Shepp-Logan phantom (outside the training distribution), R = 8;
* (d) the default exam at R = 4 and R = 8 with lesions of sizes and contrasts the training never drew (training:
  0-3 white-matter discs of 2-8 % of the field of view with T1 x 1.2-1.8 and T2 x 1.5-3): three small discs
  (radius 1 % of the field of view) with T1 x 0.6 (bright on T1 weighting) and one large disc (radius 11 %) with
  T1 x 1.5, T2 x 2. Per lesion and method: the lesion's contrast against a ring around it,
  ``(mean(lesion) - mean(ring)) / mean(ring)``, and its error relative to the truth's; for the learned methods also
  how far the hallucination (null-space) map and the data-consistency residual image stand out over the lesion
  (their mean over it minus their mean over the ring) against the lesion's absolute error. A lesion passes if its
  contrast is within 20 % of the truth's, or if a map flags it: it stands out by at least half the error of the
  lesion's mean (a map that is high everywhere shows nothing). R = 4 asks whether a network keeps what the data
  hold (CS keeps most of these lesions there); R = 8 whether it flags what they do not.

Every method runs through ``hifield.pipeline.scan`` (the same raw data per row, scored against the noise-free fully
sampled RSS image with ``hifield.metrics`` as fastMRI computes SSIM); the time is the pipeline's per-method time on
one slice (coil maps included for sense/cs/tv, the uncertainty maps included for the learned methods). A separate
timing runs the learned models alone on a 256 x 256, 16-coil slice (with and without the uncertainty maps).
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
    methods: dict[str, dict[str, float]] = {
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
    return {
        "set": name,
        "R": r,
        "acceleration": result.summary["acceleration"],
        "calibration_lines": result.summary["calibration_lines"],
        "methods": methods,
    }


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


def lesion_contrasts(
    truth: Any, images: dict[str, Any], maps: dict[str, dict[str, Any]], masks: list[Any]
) -> list[Any]:
    """Per lesion: its contrast in the truth and in each method's image, the relative error, and for learned
    methods how far each map (``maps[method]``: ``null_space``, ``dc_residual_image``) stands out over the lesion,
    its mean there minus its mean over the ring, against the absolute error of the lesion's mean; a map flags the
    lesion if it stands out by at least half that error (a map high everywhere flags nothing)."""
    from scipy.ndimage import binary_dilation

    n = truth.shape[-1]
    out = []
    for i, mask in enumerate(masks):
        frac = _on_image_grid(mask, n)
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
            entry = {"contrast": round(c, 4), "relative_error": round(err, 4), "kept": bool(err <= 0.2)}
            if method in maps:
                abs_err = abs(float(img[core].mean()) - float(truth[core].mean()))
                entry["abs_error"] = round(abs_err, 5)
                excess = {name: float(m[core].mean() - m[outer].mean()) for name, m in maps[method].items()}
                entry["null_space_excess"] = round(excess["null_space"], 5)
                entry["residual_excess"] = round(excess["dc_residual_image"], 5)
                entry["flagged"] = bool(max(excess.values()) >= 0.5 * abs_err)
            entry["passes"] = bool(entry["kept"] or entry.get("flagged", False))
            row[method] = entry
        out.append(row)
    return out


def run_lesion_row(r: float) -> tuple[dict[str, Any], list[Any]]:
    """Set (d): the default exam at ``r`` with unseen lesions; the scores and the per-lesion contrasts."""
    masks: list[Any] = []
    cfg = ScanConfig(acceleration=r, matrix=256, n_calibration=24, recons=METHODS, write_files=False, seed=1234)
    with lesions_inserted(masks):
        result = scan(cfg)
    n = 256
    truth = result.truth.reshape(-1, n, n)[0]
    images = {m: result.images[m].reshape(-1, n, n)[0] for m in METHODS}
    maps = {
        m: {k: np.asarray(result.recon_images[m].extras[k]).reshape(-1, n, n)[0] for k in LESION_MAPS}
        for m in METHODS
        if "null_space" in result.recon_images[m].extras
    }
    row = scores("(d) 3T T1 GRE brain 256, unseen lesions", r, result)
    return row, [d | {"acceleration": r} for d in lesion_contrasts(truth, images, maps, masks)]


LESION_MAPS = ("null_space", "dc_residual_image")
"""The learned methods' maps that may flag a lesion they lost."""


def time_256(repeats: int = 2) -> dict[str, float]:
    """Seconds per 256 x 256 16-coil slice of each learned model, with and without the uncertainty maps."""
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
    out: dict[str, float] = {}
    for kind in ("varnet", "modl"):
        for unc in (False, True):
            cfg = LearnedConfig(uncertainty=unc)
            reconstruct_learned(kind, problem, cfg)  # warm-up (loads the weights)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                reconstruct_learned(kind, problem, cfg)
                times.append(time.perf_counter() - start)
            out[f"{kind}{'+uncertainty' if unc else ''}"] = round(float(np.median(times)), 3)
    return out


def lesion_lines(lesions: list[Any]) -> list[str]:
    """The Markdown table of set (d): contrast per lesion and method, relative error, and the learned methods'
    null-space flag."""
    lines = [
        "",
        "Set (d), per lesion: contrast against a ring around it (truth, then each method with its error relative to "
        "the truth's); for the learned methods how far the null-space map and the data-consistency residual image "
        "stand out over the lesion (mean over it minus mean over the ring) / the absolute error of the lesion's mean. "
        "Pass: error <= 20 %, or a map stands out by >= half the absolute error (flagged).",
        "",
        "| R | lesion | pixels | truth | " + " | ".join(METHODS) + " |",
        "|---|---|---|---|" + "---|" * len(METHODS),
    ]
    for row in lesions:
        cells = []
        for m in METHODS:
            e = row[m]
            cell = f"{e['contrast']:+.3f} ({100 * e['relative_error']:.0f} %)"
            if "null_space_excess" in e:
                cell += f" null {e['null_space_excess']:+.3f}, residual {e['residual_excess']:+.3f}"
                cell += f" / {e['abs_error']:.3f}"
            elif "null_space_mean" in e:  # runs before the ring-excess criterion
                cell += f" map {e['null_space_mean']:.3f}/{e['abs_error']:.3f}"
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
        "Conformal 90 % interval of the learned methods on each set: empirical coverage of the object pixels, and the "
        "correlation of the interval's width with the error |truth - |x|| (where the interval is wide, is the error "
        "large?).",
        "",
        "| set | R | " + " | ".join(f"{m} coverage | {m} width-error corr." for m in learned) + " |",
        "|---|---|" + "---|---|" * len(learned),
    ]
    lines += table_rows(
        report["rows"],
        lambda row, ms: [
            f"{ms[m][k]:{f}}" for m in learned for k, f in (("coverage", ".3f"), ("width_error_corr", ".2f"))
        ],
    )
    lines += lesion_lines(report["lesions"])
    lines += ["", "Learned models alone on a 256 x 256, 16-coil slice (median of 2 after a warm-up, seconds):", ""]
    lines += [f"- {k}: {v:.3f} s" for k, v in report["time_256x256_16coil_s"].items()]
    lines += ["", "Shipped models:", ""]
    for m in report["models"].values():
        lines.append(
            f"- {m['name']} v{m['version']} (commit {m['commit'][:10]}): {m['trained_steps']} steps, validation SSIM "
            f"{m['val_ssim']:.4f}; conformal lambda {m['conformal_lambda']:.3f}, held-out coverage "
            f"{m['conformal_test_coverage']:.3f} (nominal 0.90); `{m['training_command']}`"
        )
    return "\n".join(lines) + "\n"


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
    rows = [run_row("(a) 3T T1 GRE brain 256", r=r, matrix=256) for r in (4.0, 6.0, 8.0, 12.0)]
    rows.append(run_row("(b) STIR 5T brain 256 (held out)", r=8.0, matrix=256, protocol="stir_2d", field="5T"))
    rows.append(run_row("(c) Shepp-Logan 256 (out of distribution)", r=8.0, matrix=256, phantom="shepp-logan"))
    lesions = []
    for r in (4.0, 8.0):
        lesion_row, per_lesion = run_lesion_row(r)
        rows.append(lesion_row)
        lesions += per_lesion
    timing = time_256()
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
