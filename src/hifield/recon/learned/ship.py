"""Turn a training checkpoint into shipped weights: conformal calibration on held-out simulations, and metadata.

``python -m hifield.recon.learned.ship runs/varnet_256/checkpoint.pt`` simulates ``n_calibration`` held-out cases
(seeded apart from training and validation), calibrates the conformal factor of the 90 % interval on them, measures
its empirical coverage on ``n_test`` further held-out cases, and writes ``weights/<model>_small.pt`` with the state
dict, the model's parameters and the metadata: training command, config, git commit, calibration and coverage.
Given shipped weights instead of a checkpoint, it re-calibrates them and keeps how they were trained; the new
calibration goes into the calibration file beside them (``<model>_small.calibration.json``) and the network file is
left as it was, so a re-calibration does not add another copy of the network to the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from hifield.recon.learned import require_torch
from hifield.recon.learned.data import make_sample, simulate_case
from hifield.recon.learned.infer import (
    WEIGHTS,
    calibration_path,
    load_model,
    read_calibration,
    run_slice,
    weights_digest,
)
from hifield.recon.learned.train import TrainConfig

VERSION = 1
ALPHA = 0.1
CALIBRATION_KEYS = ("conformal_", "name", "version", "calibration_commit")
"""Metadata that a re-calibration of shipped weights writes into their calibration file (prefixes)."""


def _git_commit(path: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def scored_cases(
    model: Any, config: TrainConfig, n: int, seed: int, *, cache: Path | None = None
) -> list[tuple[Any, Any, Any, float]]:
    """``(|x|, width u, truth, R)`` of ``n`` held-out simulated samples, in data units; ``u`` without the
    acceleration factor (power 0), ``R`` the sample's acceleration.

    Case ``i`` is drawn from generators seeded ``(seed, i)`` (the slice) and ``(seed, 7, i)`` (pattern and
    noise), so it does not depend on the cases before it; one case is simulated at a time. With ``cache`` (a
    folder), each scored case is kept there as ``<seed>-<i>.npz`` and read back on the next call instead of
    being simulated again: an interrupted calibration resumes where it stopped, and a second calibration of the
    same weights on the same seeds costs no simulation. The folder must belong to one set of weights and one
    data config (:func:`ship` names it after both).
    """
    from hifield.recon.learned import uncertainty as unc

    exams: dict[Any, Any] = {}
    out = []
    for i in range(n):
        kept = cache / f"{seed}-{i:05d}.npz" if cache is not None else None
        if kept is not None and kept.exists():
            with np.load(kept) as f:
                out.append((f["x"], f["width"], f["truth"], float(f["acceleration"])))
            continue
        case = simulate_case(config.data, np.random.default_rng([seed, i]), exams=exams)
        sample = make_sample(case, np.random.default_rng([seed, 7, i]), config.data)
        y, mask = sample["y"], sample["mask"][0]
        x, yv, maps, _ = run_slice(config.model, model, y, mask, config.data.n_virtual)
        _, res_i = unc.dc_residual(x, yv, maps, mask)
        null = unc.null_space_component(x, maps, mask)
        correction = unc.dc_correction(x, yv, maps, mask)
        truth = sample["target"].astype(np.float32)  # same units as x: both divided by the sample's scale
        width = unc.heuristic_width(x, null, res_i, correction)
        scored = (np.abs(x).astype(np.float32), width, truth, float(1.0 / np.mean(mask)))
        if kept is not None:
            tmp = kept.with_name(kept.stem + ".tmp.npz")
            np.savez(tmp, x=scored[0], width=scored[1], truth=scored[2], acceleration=scored[3])
            tmp.replace(kept)
        out.append(scored)
    return out


def cache_folder(root: Path, state_dict: Any, config: TrainConfig) -> Path:
    """The folder under ``root`` where :func:`scored_cases` keeps the cases of the network ``state_dict``: named
    after the model, the network's :func:`~hifield.recon.learned.infer.weights_digest` and a hash of the data
    config, so other weights or another config never read them."""
    import hashlib

    data = hashlib.sha256(json.dumps(config.as_dict()["data"], sort_keys=True, default=str).encode())
    return root / f"{config.model}-{weights_digest(state_dict)[:12]}-{data.hexdigest()[:8]}"


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
    cache: Path | None = None,
) -> Path:
    """Write the shipped weights of ``checkpoint`` (see the module docstring); returns their path.

    ``checkpoint`` is a training checkpoint, or shipped weights to re-calibrate: then their network, how they were
    trained (command, config, commits, steps) and their name are kept, the conformal calibration is done anew and
    its commit recorded as ``calibration_commit``. ``command`` is the training command (required for a training
    checkpoint). ``commits`` are the git commits the training ran on, oldest first (a resumed run may span
    several); the last is recorded as ``commit``. Default: the current ``HEAD``. ``name`` (default
    ``hifield-<model>-small``) and ``version`` are how DICOM and reports name the model. ``out`` defaults to
    ``weights/<model>_small.pt`` inside the package. Shipped weights get their new calibration in the calibration
    file beside ``out`` (:func:`~hifield.recon.learned.infer.calibration_path`; the weights are copied there
    unchanged when ``out`` is elsewhere); a training checkpoint is written whole, metadata inside, and a calibration
    file left beside ``out`` by earlier weights is removed. ``cache`` (a folder) keeps every scored case
    (:func:`scored_cases`, in a subfolder named by :func:`cache_folder`), so an interrupted run resumes.

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
    shipped = "metadata" in state
    if shipped:  # shipped weights: keep how they were trained, calibrate anew
        old = {**state["metadata"], **read_calibration(checkpoint, state["model"])}
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
    kept = cache_folder(cache, state["model"], config) if cache is not None else None
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
    power: float = 0.0
    spreads: dict[float, float] = {}
    if n_tune > 0:  # the width's acceleration factor, chosen on images of its own
        tune = scored_cases(model, config, n_tune, config.seed + 40_000, cache=kept)
        power, spreads = unc.fit_acceleration_power(*(list(v) for v in zip(*tune, strict=True)), alpha=ALPHA)

    def scaled(cases: list[tuple[Any, Any, Any, float]]) -> tuple[list[Any], list[Any], list[Any]]:
        return [c[0] for c in cases], [c[1] * c[3] ** power for c in cases], [c[2] for c in cases]

    cal = scored_cases(model, config, n_calibration, config.seed + 20_000, cache=kept)
    lam = unc.calibrate(*scaled(cal), alpha=ALPHA)
    test = scored_cases(model, config, n_test, config.seed + 30_000, cache=kept)
    per_image = 1.0 - unc.image_miscoverage(*scaled(test), lam)
    test_r = np.array([c[3] for c in test])
    by_r = unc.coverage_by_acceleration(per_image, test_r)
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
        "conformal_test_coverage_p10_p90_by_acceleration": unc.coverage_range_by_acceleration(per_image, test_r),
    }
    path = out or WEIGHTS / f"{config.model}_small.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    side = calibration_path(path)
    if shipped:  # the network is unchanged: only the calibration is new, and it goes beside the weights
        if not path.exists() or not path.samefile(checkpoint):
            shutil.copyfile(checkpoint, path)
        calibration = {k: v for k, v in meta.items() if k.startswith(CALIBRATION_KEYS)}
        text = json.dumps({"weights_sha256": weights_digest(state["model"]), "metadata": calibration}, indent=1)
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(side)
        return path
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": config.model, "params": dict(config.params), "model": state["model"], "metadata": meta}, tmp)
    tmp.replace(path)
    side.unlink(missing_ok=True)  # a calibration of the weights that were there before
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
    parser.add_argument("--cache", type=Path, default=None, help="Keep the scored cases here (resumes a stopped run).")
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
            cache=args.cache,
        )
    except ValueError as exc:
        parser.error(str(exc))
    _, meta = load_model(str(path))  # with the calibration file laid over
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB): lambda {meta['conformal_lambda']:.3f}, "
        f"acceleration power {meta['conformal_acceleration_power']:g}, "
        f"test coverage {meta['conformal_test_coverage']:.3f} +- {meta['conformal_test_coverage_se']:.3f}, by R "
        + ", ".join(f"{k}: {v[0]:.3f} ({v[1]})" for k, v in meta["conformal_test_coverage_by_acceleration"].items())
    )


if __name__ == "__main__":
    main()
