"""Benchmark: wall time of the default ``hifield scan`` (3 T brain, 256 x 256, 16 coils, R = 4), end to end.

Runs the real command in a fresh process (imports and file writing included) ``--repeats`` times and writes
``benchmarks/results/scan_default.json`` and ``.md`` with the median, the spread, the per-step timings of the median
run and the machine it ran on.

Usage: ``python benchmarks/scan_default.py [--repeats 3] [--slices 24]`` (``--slices``: the whole-brain stack,
written to ``scan_default_24_slices.json``; the per-step timings then hold ``setup``, ``slices`` and ``write``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run_once(out: Path, extra: tuple[str, ...] = ()) -> tuple[float, dict[str, object]]:
    """Run ``hifield scan --json`` once; return its wall time [s] and summary."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", "scan", "--out", str(out), "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"hifield scan failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=1)
    args = parser.parse_args()
    extra = ("--slices", str(args.slices)) if args.slices > 1 else ()
    stem = "scan_default" if args.slices == 1 else f"scan_default_{args.slices}_slices"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.repeats):
            wall, summary = run_once(Path(tmp) / f"run{index}", extra)
            runs.append((wall, summary))
            print(f"run {index + 1}: {wall:.1f} s", flush=True)
    walls = sorted(w for w, _ in runs)
    median = statistics.median(walls)
    median_summary = min(runs, key=lambda r: abs(r[0] - median))[1]
    result = {
        "benchmark": "hifield scan (default: 3T brain, gre_t1_2d, 256x256, 16 coils, R=4, fft+sense+cs)",
        "repeats": args.repeats,
        "wall_time_s": {"median": round(median, 2), "min": round(walls[0], 2), "max": round(walls[-1], 2)},
        "target_s": 60.0,
        "ratio_to_target": round(median / 60.0, 3),
        "steps_s": median_summary.get("timings_s", {}),
        "reconstructions": median_summary.get("reconstructions", []),
        "scan_time_s": median_summary.get("scan_time_s"),
        "scan_time_full_s": median_summary.get("scan_time_full_s"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# `hifield scan` default run",
        "",
        f"{result['date']}, {os.cpu_count()} CPUs, Python {platform.python_version()}; median of {args.repeats} runs "
        f"in fresh processes (imports and file writing included).",
        "",
        f"**Wall time: {median:.1f} s** (min {walls[0]:.1f}, max {walls[-1]:.1f}); target <= 60 s "
        f"(ratio {median / 60:.2f}).",
        "",
        "| step | time [s] |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in result["steps_s"].items()],  # type: ignore[union-attr]
        "",
        "| method | NMSE | PSNR [dB] | SSIM | recon time [s] |",
        "|---|---|---|---|---|",
        *[
            f"| {r['method']} | {r['nmse']:.4f} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['time_s']:.2f} |"
            for r in result["reconstructions"]  # type: ignore[union-attr]
        ],
        "",
        f"Scan time: {result['scan_time_s']} s accelerated, {result['scan_time_full_s']} s fully sampled.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
