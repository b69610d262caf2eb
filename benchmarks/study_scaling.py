"""Benchmark: a 16-exam study (128 x 128, 8 coils) on a LocalCluster of 1 and of 2 workers.

Reports, for each worker count, the study's wall time with warm workers (each worker has run one small exam
first, so imports and Numba compilation are not counted), the speed-up over 1 worker (target >= 1.7x on 2 cores),
the scheduler overhead per task (a few hundred empty tasks through the same cluster, and the study's wall time x
workers minus the exams' own wall times, per exam) and the peak resident memory of each worker. Writes
``benchmarks/results/study_scaling.json`` and ``.md``.

Run it on an otherwise idle machine: on a shared one the numbers say nothing.

Usage: ``python benchmarks/study_scaling.py [--workers 1,2] [--matrix 128] [--coils 8] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
N_NOOP = 300
"""Empty tasks timed for the scheduler overhead."""
OVERHEAD_NOTE = (
    "\n"
    "Overhead/exam is (wall x workers - sum of the exams' own wall times) / exams. It is negative since "
    "an exam's reconstructions run as tasks of their own (issue 16, method granularity): an exam's wall "
    "time then includes the time its task waits, outside its worker's slot, while other tasks use that "
    "slot, so the exams' times overlap. The scheduler overhead per task (empty tasks through the same "
    "cluster) is the figure to read."
    "\n"
)
"""Read with the table: why overhead/exam can be negative."""


def study_spec(matrix: int, coils: int, quick: bool) -> dict[str, Any]:
    """16 exams: 4 fields x 4 accelerations of the 2D T1 GRE brain, fft + SENSE + CS each."""
    return {
        "name": f"scaling ({matrix} x {matrix}, {coils} coils)",
        "fixed": {"matrix": matrix, "n_coils": coils, "n_calibration": 16, "phantom": "brain", "write_files": True},
        "methods": ["fft", "sense", "cs"],
        "axes": {
            "fields": ["3T"] if quick else ["1.5T", "3T", "5T", "7T"],
            "accelerations": [2, 4] if quick else [2, 4, 6, 8],
        },
    }


def _noop(i: int) -> int:
    return i


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n_workers: int, spec: dict[str, Any], matrix: int, coils: int) -> dict[str, Any]:
    """Time the study on a fresh LocalCluster of ``n_workers`` single-threaded worker processes."""
    from distributed import Client, LocalCluster, wait
    from hifield.distributed import Exam, batch, study_from_dict

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
        tempfile.TemporaryDirectory() as tmp,
    ):
        warm = Exam(matrix=64, n_coils=coils, n_calibration=12, recons=("fft", "sense", "cs"), write_files=True)
        client.run(lambda: __import__("hifield.distributed").distributed.run_exam(warm, tmp + "/warm"))

        start = time.perf_counter()
        futures = client.map(_noop, range(N_NOOP), pure=False)
        wait(futures)
        noop_s = (time.perf_counter() - start) / N_NOOP
        del futures

        start = time.perf_counter()
        result = batch(study_from_dict(spec), out=Path(tmp) / "study", scheduler=client, report=False)
        wall = time.perf_counter() - start
        exams = {row["exam_id"]: row["wall_time_s"] for row in result.rows if row["wall_time_s"] is not None}
        peaks = client.run(_peak_rss_mib)
    busy = sum(exams.values())
    return {
        "workers": n_workers,
        "exams": len(exams),
        "ok": result.status.counts.get("ok", 0),
        "wall_s": round(wall, 2),
        "exam_time_sum_s": round(busy, 2),
        "overhead_per_exam_s": round((wall * n_workers - busy) / max(len(exams), 1), 3),
        "scheduler_overhead_per_task_ms": round(noop_s * 1e3, 3),
        "peak_rss_per_worker_mib": sorted(round(v, 1) for v in peaks.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2", help="Comma-separated worker counts.")
    parser.add_argument("--matrix", type=int, default=128)
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 exams only: check the script runs.")
    parser.add_argument("--force", action="store_true", help="Run even when the machine is busy (load > 1.0).")
    args = parser.parse_args()
    load_start = os.getloadavg()
    if load_start[0] > 1.0 and not args.force and not args.quick:
        raise SystemExit(
            f"the 1-minute load average is {load_start[0]:.2f} (> 1.0): timings would measure the machine; "
            "run on an idle machine (or --force for a smoke test, whose numbers are not results)"
        )
    spec = study_spec(args.matrix, args.coils, args.quick)
    runs = []
    for n in (int(v) for v in args.workers.split(",")):
        runs.append(run(n, spec, args.matrix, args.coils))
        print(json.dumps(runs[-1]), flush=True)
    base = runs[0]["wall_s"]
    for entry in runs:
        entry["speedup"] = round(base / entry["wall_s"], 3)
    result = {
        "benchmark": f"study of {runs[0]['exams']} exams, {args.matrix}x{args.matrix}, {args.coils} coils, "
        "fft+sense+cs, LocalCluster (processes, 1 thread each), warm workers",
        "target_speedup_2_workers": 1.7,
        "runs": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_start": load_start,
            "load_avg_end": os.getloadavg(),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    name = "study_scaling_quick" if args.quick else "study_scaling"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# {result['benchmark']}",
        "",
        f"machine: {os.cpu_count()} CPUs, 1-minute load average {load_start[0]:.2f} at the start (the benchmark "
        f"itself loads the machine: {os.getloadavg()[0]:.1f} at the end)",
        "",
        "| workers | wall [s] | speed-up | overhead/exam [s] | scheduler overhead/task [ms] | peak RSS/worker [MiB] |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['workers']} | {r['wall_s']} | {r['speedup']} | {r['overhead_per_exam_s']} | "
            f"{r['scheduler_overhead_per_task_ms']} | {', '.join(str(v) for v in r['peak_rss_per_worker_mib'])} |"
        )
    lines.append(OVERHEAD_NOTE)
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
