"""Print the SAR of every library protocol for a slice stack (default 24 x 5 mm) at the given fields.

Usage: ``python tools/sar_table.py [--slices 24] [--fields 3T,7T] [--matrix 64]``. SAR depends on the RF played per
TR, not on the matrix (more lines only lengthen the scan), so a small matrix gives the same SAR quickly. 3D protocols
are listed with their slab. ``limits``: refusal (exit 2 in ``hifield scan``) with what would pass.
"""

from __future__ import annotations

import argparse
import math
import re

from hifield.errors import HifieldError
from hifield.hardware.scanner import Scanner
from hifield.sequence import assess, get_protocol, protocol_names
from hifield.sequence.protocol import SliceProtocol
from hifield.sequence.sar_limits import sar_refusal_message, suggest_sar_changes, worst_sar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=24)
    parser.add_argument("--fields", default="3T,7T")
    parser.add_argument("--matrix", type=int, default=64)
    args = parser.parse_args()
    print("| field | protocol | slices | TR [ms] | head 6 min | head 10 s | body 6 min | body 10 s | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for field in args.fields.split(","):
        scanner = Scanner.resolve(field)
        for name in protocol_names():
            p = get_protocol(name).with_changes(matrix=args.matrix)
            if isinstance(p, SliceProtocol):
                p = p.with_changes(n_slices=args.slices)
            try:
                built = p.build(scanner)
            except HifieldError as err:
                # the stack does not fit the TR: list it at the shortest TR that fits (marked *)
                found = re.search(r"repetition time tr_ms = [\d.]+ ms is below the minimum ([\d.]+) ms", str(err))
                if found is None:
                    print(f"| {field} | {name} | {p.n_slices} | {p.tr_s * 1e3:g} | - | - | - | - | {err} |")
                    continue
                p = p.with_changes(tr_s=math.ceil(float(found.group(1)) / 10) * 0.01)
                built = p.build(scanner)
                name = f"{name} (TR*)"
            r = assess(built, scanner)
            excess = worst_sar(r)
            verdict = (
                "ok" if excess.ratio <= 1 + 1e-6 else sar_refusal_message(excess, suggest_sar_changes(p, built, excess))
            )
            print(
                f"| {field} | {name} | {p.n_slices} | {built.tr_s * 1e3:.0f} | {r.sar_head_6min_w_per_kg:.2f} | "
                f"{r.sar_head_10s_w_per_kg:.2f} | {r.sar_whole_body_6min_w_per_kg:.2f} | "
                f"{r.sar_whole_body_10s_w_per_kg:.2f} | {verdict} |"
            )


if __name__ == "__main__":
    main()
