"""Time to ``import hifield`` and load a community 128 x 128 GRE ``.seq`` in a fresh process, step by step.

Steps (each in the same fresh interpreter, in this order): ``import hifield``; pypulseq's import as hifield does
it (:func:`hifield._pypulseq.import_pypulseq`: matplotlib, scipy.signal and scipy.interpolate, which pypulseq
imports at module level, load only when pypulseq uses them); ``read_seq`` (validation and pypulseq's parser);
``built_from_seq`` (hifield's description: labels, TE/TR, flip angle and the Cartesian detection from the k-space
of the readouts). The target of issue 19 is 0.3 s for all four together.

For comparison, alternated run by run in the same loop: ``plain pypulseq`` — the same file read by pypulseq alone
(``import pypulseq``, ``Sequence.read``, ``calculate_kspace`` for the readouts' k-space), as a script without hifield
would do it.

Run on an idle machine: ``python benchmarks/seq_load_time.py [--repeats 7]``. Refuses above a load average of 1.0
unless ``--force``. Writes ``benchmarks/results/seq_load_time.json`` and ``.md`` (median and best of the runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hifield  # noqa: F401
t1 = time.perf_counter()
from hifield._pypulseq import import_pypulseq
import_pypulseq()
t2 = time.perf_counter()
from hifield.sequence.seq_io import built_from_seq, read_seq
seq = read_seq(sys.argv[1])
t3 = time.perf_counter()
built = built_from_seq(seq)
t4 = time.perf_counter()
print(json.dumps({"import_hifield_s": t1 - t0, "import_pypulseq_s": t2 - t1, "read_s": t3 - t2,
                  "describe_s": t4 - t3, "total_s": t4 - t0, "trajectory": built.trajectory}))
"""

_PLAIN = r"""
import json, sys, time
t0 = time.perf_counter()
import pypulseq
t1 = time.perf_counter()
seq = pypulseq.Sequence()
seq.read(sys.argv[1])
t2 = time.perf_counter()
seq.calculate_kspace()
t3 = time.perf_counter()
print(json.dumps({"import_pypulseq_s": t1 - t0, "read_s": t2 - t1, "kspace_s": t3 - t2, "total_s": t3 - t0}))
"""


def write_flash(path: Path, n: int = 128) -> None:
    """The community FLASH of the tests (pypulseq ``write_gradient_echo`` layout) written to ``path``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sequence"))
    from community import community_flash  # type: ignore[import-not-found]

    community_flash(n).write(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--matrix", type=int, default=128)
    parser.add_argument("--force", action="store_true", help="run even on a loaded machine (numbers are then rough)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.0 and not args.force:
        raise SystemExit(f"load average {load:.2f} is above 1.0: timings would not mean much; rerun when idle")
    runs: dict[str, list[dict[str, float]]] = {"hifield": [], "plain pypulseq": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"gre_{args.matrix}.seq"
        write_flash(path, args.matrix)
        for _ in range(args.repeats):
            for name, child in (("hifield", _CHILD), ("plain pypulseq", _PLAIN)):  # alternated run by run
                out = subprocess.run(
                    [sys.executable, "-c", child, str(path)], check=True, capture_output=True, text=True, env=os.environ
                )
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {
        name: {
            key: {"median": statistics.median(r[key] for r in rows), "best": min(r[key] for r in rows)}
            for key in rows[0]
            if key.endswith("_s")
        }
        for name, rows in runs.items()
    }
    result = {
        "matrix": args.matrix,
        "load_average_1min_start": load,
        "load_average_1min_end": os.getloadavg()[0],
        "repeats": args.repeats,
        "python": sys.version.split()[0],
        "summary": summary,
        "runs": runs,
    }
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "seq_load_time.json").write_text(json.dumps(result, indent=1))
    ours, plain = summary["hifield"], summary["plain pypulseq"]
    lines = [
        "# `import hifield` + loading a community GRE `.seq`",
        "",
        f"`python benchmarks/seq_load_time.py --repeats {args.repeats}` — community FLASH {args.matrix} x "
        f"{args.matrix} (pypulseq `write_gradient_echo` layout), each run a fresh interpreter, the two columns "
        f"alternated run by run; 1-minute load average {load:.2f} at the start, {result['load_average_1min_end']:.2f}"
        " at the end. Target (issue 19): hifield's total at most 0.3 s.",
        "",
        "| step | hifield median [s] | hifield best [s] |",
        "|---|---:|---:|",
        *(f"| {key[:-2]} | {v['median']:.3f} | {v['best']:.3f} |" for key, v in ours.items()),
        "",
        "| step | plain pypulseq median [s] | plain pypulseq best [s] |",
        "|---|---:|---:|",
        *(f"| {key[:-2]} | {v['median']:.3f} | {v['best']:.3f} |" for key, v in plain.items()),
        "",
        f"Ratio of the medians, plain pypulseq / hifield: "
        f"{plain['total_s']['median'] / ours['total_s']['median']:.1f}x.",
        "",
    ]
    (results / "seq_load_time.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
