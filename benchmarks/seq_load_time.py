"""Time to ``import hifield`` and load a community 128 x 128 GRE ``.seq`` in a fresh process, step by step.

Steps (each in the same fresh interpreter, in this order): ``import hifield``; ``import pypulseq`` (which hifield
defers until a sequence is needed; pypulseq imports matplotlib.pyplot, scipy.signal and scipy.interpolate at import
time); ``read_seq`` (pypulseq's parser); ``built_from_seq`` (hifield's description: labels, TE/TR, flip angle and the
Cartesian detection from the k-space of the readouts). The target of issue 19 is 0.3 s for all four together.

Run on an idle machine: ``python benchmarks/seq_load_time.py [--repeats 5]``. Refuses above a load average of 1.0
unless ``--force``. Writes ``benchmarks/results/seq_load_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hifield  # noqa: F401
t1 = time.perf_counter()
import pypulseq  # noqa: F401
t2 = time.perf_counter()
from hifield.sequence.seq_io import built_from_seq, read_seq
seq = read_seq(sys.argv[1])
t3 = time.perf_counter()
built = built_from_seq(seq)
t4 = time.perf_counter()
print(json.dumps({"import_hifield_s": t1 - t0, "import_pypulseq_s": t2 - t1, "read_s": t3 - t2,
                  "describe_s": t4 - t3, "total_s": t4 - t0, "trajectory": built.trajectory}))
"""


def write_flash(path: Path, n: int = 128) -> None:
    """The community FLASH of the tests (pypulseq ``write_gradient_echo`` layout) written to ``path``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sequence"))
    from community import community_flash  # type: ignore[import-not-found]

    community_flash(n).write(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--matrix", type=int, default=128)
    parser.add_argument("--force", action="store_true", help="run even on a loaded machine (numbers are then rough)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.0 and not args.force:
        raise SystemExit(f"load average {load:.2f} is above 1.0: timings would not mean much; rerun when idle")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"gre_{args.matrix}.seq"
        write_flash(path, args.matrix)
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True, env=os.environ
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {key: min(r[key] for r in runs) for key in runs[0] if key.endswith("_s")}
    result = {"matrix": args.matrix, "load_average": load, "best_of": args.repeats, **best}
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "seq_load_time.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
