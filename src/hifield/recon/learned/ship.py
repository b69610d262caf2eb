"""Turn a training checkpoint into shipped weights: conformal calibration on held-out simulations, and metadata.

``python -m hifield.recon.learned.ship runs/varnet_256/checkpoint.pt`` simulates ``n_calibration`` held-out cases
(seeded apart from training and validation), calibrates the conformal factor of the 90 % interval on them, measures
its empirical coverage on ``n_test`` further held-out cases, and writes ``weights/<model>_small.pt`` with the state
dict, the model's parameters and the metadata: training command, config, git commit, calibration and coverage.
Given shipped weights instead of a checkpoint, it re-calibrates them and keeps how they were trained.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from hifield.recon.learned import require_torch
from hifield.recon.learned.data import CasePool, make_sample
from hifield.recon.learned.infer import WEIGHTS, run_slice
from hifield.recon.learned.train import TrainConfig

VERSION = 1
ALPHA = 0.1


def _git_commit(path: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def scored_cases(model: Any, config: TrainConfig, n: int, seed: int) -> list[tuple[Any, Any, Any, float]]:
    """``(|x|, width u, truth, R)`` of ``n`` held-out simulated samples (data seeded by ``seed``), in data units;
    ``u`` without the acceleration factor (power 0), ``R`` the sample's acceleration."""
    from hifield.recon.learned import uncertainty as unc

    pool = CasePool(config.data, n, seed)
    pool.refresh(0)
    rng = np.random.default_rng([seed, 7])
    out = []
    for case in pool.cases:
        sample = make_sample(case, rng, config.data)
        y, mask = sample["y"], sample["mask"][0]
        x, yv, maps = run_slice(config.model, model, y, mask, config.data.n_virtual)
        _, res_i = unc.dc_residual(x, yv, maps, mask)
        null = unc.null_space_component(x, maps, mask)
        correction = unc.dc_correction(x, yv, maps, mask)
        truth = sample["target"].astype(np.float32)  # same units as x: both divided by the sample's scale
        width = unc.heuristic_width(x, null, res_i, correction)
        out.append((np.abs(x).astype(np.float32), width, truth, float(1.0 / np.mean(mask))))
    return out


def ship(
    checkpoint: Path,
    *,
    command: str = "",
    n_calibration: int = 160,
    n_test: int = 60,
    n_tune: int = 60,
    commits: list[str] | None = None,
    name: str = "",
    version: int = VERSION,
    out: Path | None = None,
) -> Path:
    """Write the shipped weights of ``checkpoint`` (see the module docstring); returns their path.

    ``checkpoint`` is a training checkpoint, or shipped weights to re-calibrate: then their network, how they were
    trained (command, config, commits, steps) and their name are kept, the conformal calibration is done anew and
    its commit recorded as ``calibration_commit``. ``command`` is the training command (required for a training
    checkpoint). ``commits`` are the git commits the training ran on, oldest first (a resumed run may span
    several); the last is recorded as ``commit``. Default: the current ``HEAD``. ``name`` (default
    ``hifield-<model>-small``) and ``version`` are how DICOM and reports name the model. ``out`` defaults to
    ``weights/<model>_small.pt`` inside the package.

    First, on ``n_tune`` further held-out cases, :func:`~hifield.recon.learned.uncertainty.fit_acceleration_power`
    chooses the power ``p`` of the width's acceleration factor ``R^p`` that levels the coverage across
    accelerations (0 cases: ``p = 0``, no factor); the held-out coverage per acceleration bin is recorded too.

    Risk control needs ``(n_calibration + 1) * alpha >= 1``, and it covers about ``1 / (n_calibration + 1)`` more
    than ``1 - alpha``: 160 images aim at 0.906 for 0.90, 80 at 0.911 (with per-image coverages spread over
    0.8-1.0, 80 left too little of a 2-point tolerance for the test set's own sampling error).
    """
    torch = require_torch()
    from hifield.recon.learned import uncertainty as unc
    from hifield.recon.learned.nets import build_model

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    head = _git_commit(Path(__file__).parent)
    if "metadata" in state:  # shipped weights: keep how they were trained, calibrate anew
        old = state["metadata"]
        keep = ("config", "training_command", "commit", "training_commits", "trained_steps", "final_loss", "val_ssim")
        trained = {k: old[k] for k in keep}
        name = name or old["name"]
    else:
        if not command:
            raise ValueError("a training checkpoint needs the training command (--command) for its metadata")
        trained = {
            "config": state["config"],
            "training_command": command,
            "commit": (commits or [head])[-1],
            "training_commits": commits or [head],
            "trained_steps": int(state["step"]),
            "final_loss": float(state["loss"]),
            "val_ssim": float(state["val_ssim"]),
        }
    config = TrainConfig.load_dict(trained["config"])
    model = build_model(config.model, dict(config.params))
    model.load_state_dict(state["model"])
    model.eval()
    power: float = 0.0
    spreads: dict[float, float] = {}
    if n_tune > 0:  # the width's acceleration factor, chosen on images of its own
        tune = scored_cases(model, config, n_tune, config.seed + 40_000)
        power, spreads = unc.fit_acceleration_power(*(list(v) for v in zip(*tune, strict=True)), alpha=ALPHA)

    def scaled(cases: list[tuple[Any, Any, Any, float]]) -> tuple[list[Any], list[Any], list[Any]]:
        return [c[0] for c in cases], [c[1] * c[3] ** power for c in cases], [c[2] for c in cases]

    cal = scored_cases(model, config, n_calibration, config.seed + 20_000)
    lam = unc.calibrate(*scaled(cal), alpha=ALPHA)
    test = scored_cases(model, config, n_test, config.seed + 30_000)
    per_image = 1.0 - unc.image_miscoverage(*scaled(test), lam)
    by_r = unc.coverage_by_acceleration(per_image, np.array([c[3] for c in test]))
    meta = {
        "name": name or f"hifield-{config.model}-small",
        "version": version,
        "kind": config.model,
        "n_virtual": config.data.n_virtual,
        **trained,
        "calibration_commit": head,
        "conformal_alpha": ALPHA,
        "conformal_method": "conformal risk control of the per-image miscoverage (Angelopoulos et al. 2022)",
        "conformal_width": list(unc.WIDTH_TERMS),
        "conformal_lambda": lam,
        "conformal_acceleration_power": power,
        "conformal_n_tune": n_tune,
        "conformal_tune_spreads": {str(k): v for k, v in spreads.items()},
        "conformal_n_calibration": n_calibration,
        "conformal_test_coverage": float(per_image.mean()),
        "conformal_test_coverage_se": float(per_image.std(ddof=1) / np.sqrt(len(per_image))) if n_test > 1 else 0.0,
        "conformal_test_coverage_range": [float(per_image.min()), float(per_image.max())],
        "conformal_n_test": n_test,
        "conformal_test_coverage_by_acceleration": by_r,
    }
    path = out or WEIGHTS / f"{config.model}_small.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": config.model, "params": dict(config.params), "model": state["model"], "metadata": meta}, tmp)
    tmp.replace(path)
    return path


def main() -> None:
    """Command line: ``python -m hifield.recon.learned.ship CHECKPOINT --command "hifield train ..."``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--command", default="", help="The training command, recorded in the metadata.")
    parser.add_argument("--n-calibration", type=int, default=160)
    parser.add_argument("--n-test", type=int, default=60)
    parser.add_argument(
        "--n-tune", type=int, default=60, help="Cases that choose the width's acceleration power (0: none)."
    )
    parser.add_argument("--commit", action="append", help="A commit the training ran on (repeat, oldest first).")
    parser.add_argument("--name", default="", help="The model's name (default hifield-<model>-small).")
    parser.add_argument("--version", type=int, default=VERSION, help="The model's version number.")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    parser.add_argument("--out", type=Path, default=None, help="Where to write (default: inside the package).")
    args = parser.parse_args()
    torch = require_torch()
    torch.set_num_threads(args.threads)
    try:
        path = ship(
            args.checkpoint,
            command=args.command,
            n_calibration=args.n_calibration,
            n_test=args.n_test,
            n_tune=args.n_tune,
            commits=args.commit,
            name=args.name,
            version=args.version,
            out=args.out,
        )
    except ValueError as exc:
        parser.error(str(exc))
    meta = torch.load(path, weights_only=False)["metadata"]
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB): lambda {meta['conformal_lambda']:.3f}, "
        f"acceleration power {meta['conformal_acceleration_power']:g}, "
        f"test coverage {meta['conformal_test_coverage']:.3f} +- {meta['conformal_test_coverage_se']:.3f}, by R "
        + ", ".join(f"{k}: {v[0]:.3f} ({v[1]})" for k, v in meta["conformal_test_coverage_by_acceleration"].items())
    )


if __name__ == "__main__":
    main()
