"""Where the learned models lose small lesions: set (d)'s lesions from R = 1 to 4, equispaced and variable density.

``benchmarks/learned_recon.py`` found that varnet erases small unseen lesions at R = 4 where CS keeps them. This
benchmark asks from which R on, with which sampling, and whether a fine-tuned network does better: the default exam
(3 T T1 GRE brain, 256 x 256, 16 coils, 24 calibration lines) with the lesions of ``learned_recon.py``'s set (d)
(three small discs of radius 1 % of the field of view with T1 x 0.6, one of radius 11 % with T1 x 1.5, T2 x 2), at
R = 1, 2, 3, 4 with equispaced and variable-density lines. Per case: SSIM against the noise-free truth and, per
lesion and method, the error of its contrast against a ring around it relative to the truth's (as in
``learned_recon.py``); for the learned methods also how far the signed data-consistency correction stands out over
each lesion against the lesion's absolute error, with its false-alarm rate, the significance map's level over it
(noise standard deviations) with its false-alarm rate, and whether any map flags the lesion
(``learned_recon.lesion_contrasts``: stands out by >= half the error, or a significance of >= 3, with <= 5 % false
alarms).

The learned methods are the shipped ``varnet`` and ``modl`` and each ``--weights NAME=PATH`` (shipped weights or a
training checkpoint of either model, e.g. ``runs/varnet_256_lesions/checkpoint.pt``), all reconstructing the same
raw data.

Run: ``python benchmarks/learned_lesions.py [--weights NAME=PATH ...]``; writes
``benchmarks/results/learned_lesions.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from learned_recon import BOUNDS, LESION_MAPS, lesion_contrasts, lesions_inserted

from hifield.metrics import ssim
from hifield.pipeline import scan
from hifield.scan_config import ScanConfig

RESULTS = Path(__file__).parent / "results"
CLASSICAL = ("sense", "cs")
CASES = [(p, r) for p in ("equispaced", "variable-density") for r in (1.0, 2.0, 3.0, 4.0)]
"""(pattern, R) pairs; R = 1 is fully sampled (the pattern is then the same)."""


def as_weights_file(path: str, folder: str) -> tuple[str, str]:
    """The model kind in ``path`` and a weights file of it: ``path`` itself if it holds shipped weights, for a
    training checkpoint a file written in ``folder``."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    if "kind" in state:
        return str(state["kind"]), path
    cfg = state["config"]
    out = str(Path(folder) / f"{Path(path).parent.name}_step{state['step']}.pt")
    meta = {"name": f"checkpoint {path}", "version": 0, "commit": "", "n_virtual": cfg["data"]["n_virtual"]}
    torch.save({"kind": cfg["model"], "params": cfg["params"], "model": state["model"], "metadata": meta}, out)
    return str(cfg["model"]), out


def run_case(pattern: str, r: float, learned: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """One (pattern, R): SSIM per method and the per-lesion contrast errors (and residual flags of learned ones)."""
    from hifield.recon import reconstruct
    from hifield.recon.learned import LearnedConfig

    masks: list[Any] = []
    cfg = ScanConfig(
        acceleration=r, pattern=pattern, matrix=256, n_calibration=24, recons=CLASSICAL, write_files=False, seed=1234
    )
    with lesions_inserted(masks):
        result = scan(cfg)
    n = 256
    truth = result.truth.reshape(-1, n, n)[0]
    images = {m: result.images[m].reshape(-1, n, n)[0] for m in CLASSICAL}
    maps: dict[str, dict[str, Any]] = {}
    intervals: dict[str, tuple[Any, Any]] = {}
    for name, (kind, path) in learned.items():
        image = reconstruct(result.raw, method=kind, config=LearnedConfig(weights=path))
        images[name] = np.abs(np.asarray(image.data)).reshape(-1, n, n)[0]
        maps[name] = {k: np.asarray(image.extras[k]).reshape(-1, n, n)[0] for k in LESION_MAPS}
        lower, upper = (np.asarray(image.extras[k]).reshape(-1, n, n)[0] for k in BOUNDS)
        intervals[name] = (lower, upper)
    lesions = lesion_contrasts(truth, images, maps, masks, intervals)
    return {
        "pattern": pattern,
        "acceleration": r,
        "ssim": {m: round(float(ssim(truth, img)), 4) for m, img in images.items()},
        "lesions": lesions,
    }


def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of the report."""
    methods = list(report["cases"][0]["ssim"])
    learned = [m for m in methods if m not in CLASSICAL]
    lines = [
        "# Small lesions and the learned models, R = 1 to 4",
        "",
        "Default exam (3 T T1 GRE brain, 256 x 256, 16 coils, 24 calibration lines) with set (d)'s lesions of "
        "`benchmarks/learned_recon.py`. Per lesion: the error of its contrast against a ring around it, relative to "
        "the truth's (kept: <= 20 %); for the learned models, after the slash, how far the signed data-consistency "
        "correction stands out over the lesion / the lesion's absolute error, with its false alarms (the fraction of "
        "other places in the object standing out as far), then z: the significance map's mean over the lesion in "
        "noise standard deviations, with its false alarms, and whether a map flags a lost lesion (correction >= 0.5 "
        "or z >= 3, with <= 5 % false alarms); last, the fraction of the lesion's pixels whose truth lies in the "
        "90 % conformal interval (in). FAIL: neither kept nor flagged. Lesions 0-2: small bright (radius 1 % of the "
        "FOV), 3: large dark. "
        f"Load average before {report['load_average_before'][0]:.2f}.",
        "",
        "Models: " + "; ".join(f"`{k}`: {v}" for k, v in report["models"].items()),
        "",
        "| sampling | R | method | SSIM | lesion 0 | lesion 1 | lesion 2 | lesion 3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        for m in methods:
            cells = []
            for row in case["lesions"]:
                e = row[m]
                cell = f"{100 * e['relative_error']:.0f} %"
                if m in learned and e.get("abs_error"):
                    corr, z = e["maps"]["dc_correction"], e["maps"]["dc_significance"]
                    cell += f" / {corr['excess'] / e['abs_error']:.2f} ({corr['false_alarm']:.0%})"
                    cell += f", z {z['excess']:.1f} ({z['false_alarm']:.0%})"
                    cell += " flagged" if e["flagged"] and e["relative_error"] > 0.2 else ""  # a lost lesion
                    cell += f", in {e['interval_covers']:.0%}" if "interval_covers" in e else ""
                cell += "" if e["passes"] else " FAIL"
                cells.append(cell)
            lines.append(
                f"| {case['pattern']} | {case['acceleration']:.0f} | {m} | {case['ssim'][m]:.4f} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run every case and write the JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", default=[], help="NAME=PATH of further varnet weights")
    args = parser.parse_args()
    import torch

    from hifield.recon.learned.infer import load_model, weights_path

    torch.set_num_threads(2)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        learned = {kind: (kind, str(weights_path(kind))) for kind in ("varnet", "modl")}
        for item in args.weights:
            name, _, path = item.partition("=")
            learned[name] = as_weights_file(path, tmp)
        models = {}
        for name, (_, path) in learned.items():
            meta = load_model(path)[1]
            models[name] = f"{meta['name']} v{meta['version']}" + (
                f" (git {meta['commit'][:7]})" if meta["commit"] else ""
            )
        cases = [run_case(p, r, learned) for p, r in CASES if not (r == 1.0 and p != CASES[0][0])]
    report = {
        "cases": cases,
        "models": models,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learned_lesions.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (RESULTS / "learned_lesions.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
