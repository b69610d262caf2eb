"""Run the installed CLI on hostile option values and count the outcomes by exit code (issue 20's sweep).

Usage: ``python tools/hostile_cli.py [--timeout 120] [--report out.json]``. Each input runs ``python -m
hifield.cli.main ...`` in a fresh empty folder; a run counts as a traceback when stderr holds "Traceback" or
"please report", and as a hang when it passes the timeout. Prints the counts and every traceback or hang.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BAD_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e308", "abc", "", "99999999999999999999", "0x10", "1,5"]
BAD_TEXT = ["", " ", "-", "--", "\u00e9\u00e8", "a" * 300, "../../../etc/passwd", "nul\x01byte", "-1"]

SMALL = ["--matrix", "32", "--calib", "8", "--recon", "fft"]
CASES: list[list[str]] = []
for option in ("--seed", "--matrix", "--accel", "--calib", "--coils"):
    for value in BAD_NUMBERS:
        CASES.append(["scan", *[a for a in SMALL if a != option], option, value])
for option in ("--protocol", "--field", "--phantom", "--engine", "--pattern", "--recon", "--out", "--pacs"):
    for value in BAD_TEXT:
        CASES.append(["scan", *SMALL, option, value])
for option in ("--seed", "--matrix", "--accel", "--coils"):
    for value in BAD_NUMBERS:
        CASES.append(["simulate", "--out", "s.h5", "--matrix", "32", option, value])
for value in BAD_TEXT:
    CASES.append(["simulate", "--out", value, "--matrix", "32"])
    CASES.append(["recon", value, "--out", "r.nii.gz"])
    CASES.append(["check", value])
    CASES.append(["export", value])
    CASES.append(["undersample", value, "--out", "u.h5"])
for option in ("--acceleration", "--n", "--matrix"):
    for value in BAD_NUMBERS:
        CASES.append(["coils", "--matrix", "32", "--out", "c.png", option, value])
for value in BAD_NUMBERS:
    CASES.append(["export", ".", "--timeout", value, "--pacs", "127.0.0.1:1"])
    CASES.append(["phantom", "--matrix", value, "--out", "p.png"])
    CASES.append(["--max-memory", value, "protocols"])
CASES += [["scna"], ["scan", "--matrix"], ["simulate"], ["recon"], ["scan", "--field", "3 T", *SMALL]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    counts: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "hifield.cli.main", *case],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                counts["hang"] += 1
                problems.append(f"hang: {case}")
                continue
        if "Traceback" in proc.stderr or "please report" in proc.stderr:
            counts["traceback"] += 1
            problems.append(f"traceback: {case}: {proc.stderr.strip().splitlines()[-1][:200]}")
        else:
            counts[f"exit {proc.returncode}"] += 1
    summary = {"inputs": len(CASES), **dict(sorted(counts.items()))}
    print(json.dumps(summary, indent=2))
    for line in problems:
        print(line)
    if args.report:
        args.report.write_text(json.dumps({"summary": summary, "problems": problems}, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
