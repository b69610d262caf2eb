"""Benchmark the shipped learned reconstructions (varnet, modl) against zero-filled, SENSE, L1-wavelet CS and TV.

Test sets (never trained on: the data seeds differ from training's, and (b), (c) lie outside its distribution):

* (a) the default exam (3 T, T1 GRE, brain, 16 coils, variable density, 256 x 256, 24 calibration lines; 19 at
  R = 12, where 24 would leave no other lines) at R = 4, 6, 8, 12; the shipped models were trained at 64 x 64 only,
  so (a64) repeats R = 4 and 8 at the 64 x 64 training resolution (8 calibration lines);
* (b) STIR at 5 T (protocol and field left out of training), R = 8, 64 x 64;
* (c) the Shepp-Logan phantom (outside the training distribution), R = 8, 64 x 64.

Every method runs through ``hifield.pipeline.scan`` (the same raw data per row, scored against the noise-free fully
sampled RSS image with ``hifield.metrics`` as fastMRI computes SSIM); the time is the pipeline's per-method time on
one slice (coil maps included for sense/cs/tv, the uncertainty maps included for the learned methods). A separate
timing runs the learned models alone on a 256 x 256, 16-coil slice (with and without the uncertainty maps).
The load average before and after is recorded: the machine is shared.

Run: ``python benchmarks/learned_recon.py``; writes ``benchmarks/results/learned_recon.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import time
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


def run_row(name: str, *, r: float, matrix: int = 64, **options: Any) -> dict[str, Any]:
    """One scan with every method: SSIM/PSNR/NMSE and seconds per method."""
    cfg = ScanConfig(
        acceleration=r,
        matrix=matrix,
        n_calibration=_n_calibration(matrix, r),
        recons=METHODS,
        write_files=False,
        seed=1234,
        **options,
    )
    result = scan(cfg)
    return {
        "set": name,
        "R": r,
        "acceleration": result.summary["acceleration"],
        "calibration_lines": result.summary["calibration_lines"],
        "methods": {
            m["method"]: {k: round(float(m[k]), 4) for k in ("ssim", "psnr", "nmse", "time_s")}
            for m in result.summary["reconstructions"]
        },
    }


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


def main() -> None:
    """Run every row and write the JSON and Markdown tables."""
    import torch

    from hifield.recon.learned.infer import load_model, weights_path

    torch.set_num_threads(2)
    load_before = os.getloadavg()
    rows = [run_row("(a) 3T T1 GRE brain 256", r=r, matrix=256) for r in (4.0, 6.0, 8.0, 12.0)]
    rows += [run_row("(a64) 3T T1 GRE brain 64", r=r) for r in (4.0, 8.0)]
    rows.append(run_row("(b) STIR 5T brain 64 (held out)", r=8.0, protocol="stir_2d", field="5T"))
    rows.append(run_row("(c) Shepp-Logan 64 (out of distribution)", r=8.0, phantom="shepp-logan"))
    timing = time_256()
    load_after = os.getloadavg()
    meta = {k: load_model(str(weights_path(k)))[1] for k in ("varnet", "modl")}
    report = {
        "rows": rows,
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
            for k, m in meta.items()
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "learned_recon.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Learned reconstruction vs classical methods",
        "",
        f"`python benchmarks/learned_recon.py`; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(2 shared cores, torch threads {torch.get_num_threads()}). 16 coils, seed 1234; SSIM as fastMRI computes "
        "it (`hifield.metrics`) against the noise-free fully sampled RSS image; time per slice in seconds (coil maps "
        "included for sense/cs/tv, uncertainty maps included for varnet/modl). The models were trained at 64 x 64.",
        "",
        "| set | R | ACS | "
        + " | ".join(f"{m} SSIM" for m in METHODS)
        + " | "
        + " | ".join(f"{m} s" for m in METHODS)
        + " |",
        "|---|---|---|" + "---|" * (2 * len(METHODS)),
    ]
    for row in rows:
        ms = row["methods"]
        lines.append(
            f"| {row['set']} | {row['acceleration']:.2f} | {row['calibration_lines']} | "
            + " | ".join(f"{ms[m]['ssim']:.4f}" for m in METHODS)
            + " | "
            + " | ".join(f"{ms[m]['time_s']:.2f}" for m in METHODS)
            + " |"
        )
    lines += ["", "Learned models alone on a 256 x 256, 16-coil slice (median of 2 after a warm-up, seconds):", ""]
    lines += [f"- {k}: {v:.3f} s" for k, v in timing.items()]
    lines += ["", "Shipped models:", ""]
    for m in report["models"].values():
        lines.append(
            f"- {m['name']} v{m['version']} (commit {m['commit'][:10]}): {m['trained_steps']} steps, validation SSIM "
            f"{m['val_ssim']:.4f}; conformal lambda {m['conformal_lambda']:.3f}, held-out coverage "
            f"{m['conformal_test_coverage']:.3f} (nominal 0.90); `{m['training_command']}`"
        )
    (RESULTS / "learned_recon.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
