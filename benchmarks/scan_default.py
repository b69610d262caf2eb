"""Benchmark: wall time of the default ``hifield scan`` (3 T whole-brain stack of 24 slices, 256 x 256, 16 coils,
R = 4), end to end.

Runs the real command in a fresh process (imports and file writing included) ``--repeats`` times and writes
``benchmarks/results/scan_default.json`` and ``.md`` with the median, the spread, the per-step timings of the median
run and the machine it ran on.

Usage: ``python benchmarks/scan_default.py [--repeats 3] [--slices N]``. Without ``--slices`` it times the command
as a user types it (the whole-brain stack; per-step timings ``setup``, ``slices`` and ``write``); ``--slices N``
times another stack (``--slices 1``: one slice, per-step timings of the single-slice pipeline) and writes
``scan_default_N_slices.json``. It refuses to time on a busy machine (1-minute load average above 1.0).
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
    parser.add_argument("--slices", type=int, default=None)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.0:
        raise SystemExit(f"1-minute load average is {load:.2f} > 1.0: time on a quiet machine")
    extra = ("--slices", str(args.slices)) if args.slices is not None else ()
    stem = "scan_default" if args.slices is None else f"scan_default_{args.slices}_slices"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.repeats):
            wall, summary = run_once(Path(tmp) / f"run{index}", extra)
            runs.append((wall, summary))
            print(f"run {index + 1}: {wall:.1f} s", flush=True)
    walls = sorted(w for w, _ in runs)
    median = statistics.median(walls)
    median_summary = min(runs, key=lambda r: abs(r[0] - median))[1]
    what = "default: the whole-brain stack" if args.slices is None else f"--slices {args.slices}"
    loads = (load, os.getloadavg()[0])
    result = {
        "benchmark": f"hifield scan ({what}; 3T brain, gre_t1_2d, 256x256, 16 coils, R=4, fft+sense+cs)",
        "load_average_1min": {"start": round(loads[0], 2), "end": round(loads[1], 2)},
        "n_slices": median_summary.get("n_slices", 1),
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
        f"# `hifield scan` ({what}: {result['n_slices']} slice(s))",
        "",
        f"{result['date']}, {os.cpu_count()} CPUs, Python {platform.python_version()}; median of {args.repeats} runs "
        f"in fresh processes (imports and file writing included); 1-minute load average {loads[0]:.2f} at the "
        f"start, {loads[1]:.2f} at the end.",
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
