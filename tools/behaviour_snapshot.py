"""Behaviour snapshot for refactors: every library protocol's .seq at 3 T and 7 T, and scans of five protocols.

Run ``python tools/behaviour_snapshot.py record DIR`` before a refactor and ``python tools/behaviour_snapshot.py
compare DIR`` after it: the .seq files must match byte for byte (signature line aside), the scan metrics to 1e-6 and
the reconstructed images to float32 round-off.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

SCANS = {
    "gre_t1_2d": {},
    "tse_t2_2d": {},
    "flair_2d": {},
    "epi_se_2d": {"matrix": 64, "n_calibration": 12},
    "radial_gre_2d": {},
}
FIELDS = ("3T", "7T")


def _seq_files(out: Path) -> None:
    from hifield.hardware import Scanner
    from hifield.sequence import get_protocol, protocol_names
    from hifield.sequence.seq_io import write_seq

    for field in FIELDS:
        scanner = Scanner.preset(field)
        for name in protocol_names():
            protocol = get_protocol(name)
            if name in {"gre_t1_3d", "mprage_3d"}:
                built = protocol.build(
                    scanner, phase_encode_lines=range(0, protocol.matrix, 16), partition_lines=[0, 10]
                )
            else:
                built = protocol.build(scanner)
            write_seq(built, out / f"{name}_{field}.seq", check_timing=False)


def _scans(out: Path) -> None:
    from hifield.pipeline import ScanConfig, scan

    for name, extra in SCANS.items():
        options = {"matrix": 96, **extra}
        with tempfile.TemporaryDirectory() as tmp:
            result = scan(ScanConfig(protocol=name, out=Path(tmp) / "o", write_files=False, **options))
        metrics = {
            entry["method"]: {k: v for k, v in entry.items() if k in ("nmse", "psnr", "ssim")}
            for entry in result.summary["reconstructions"]
        }
        metrics["_scan"] = {k: result.summary[k] for k in ("scan_time_s", "scan_time_full_s", "acceleration")}
        (out / f"scan_{name}.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
        np.savez(out / f"scan_{name}.npz", truth=result.truth, **result.images)


def _strip(text: bytes) -> bytes:
    return b"\n".join(line for line in text.splitlines() if not line.startswith((b"Hash", b"# Created", b"Type md5")))


def compare(ref: Path, new: Path) -> list[str]:
    """Differences between two snapshot folders (empty when the behaviour is unchanged)."""
    problems = []
    for old in sorted(ref.glob("*.seq")):
        if _strip(old.read_bytes()) != _strip((new / old.name).read_bytes()):
            problems.append(f"{old.name}: .seq differs")
    for old in sorted(ref.glob("scan_*.json")):
        a, b = json.loads(old.read_text()), json.loads((new / old.name).read_text())
        for method, values in a.items():
            for key, value in values.items():
                other = b.get(method, {}).get(key)
                if other is None or abs(other - value) > 1e-6 * max(1.0, abs(value)):
                    problems.append(f"{old.name}: {method}.{key} {value} -> {other}")
    for old in sorted(ref.glob("scan_*.npz")):
        a, b = np.load(old), np.load(new / old.name)
        for key in a.files:
            x, y = a[key], b[key]
            err = float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-30))
            if x.shape != y.shape or err > 1e-5:
                problems.append(f"{old.name}: {key} max rel diff {err:.2e}")
    return problems


def main() -> int:
    """``record DIR`` or ``compare DIR``."""
    verb, folder = sys.argv[1], Path(sys.argv[2])
    if verb == "record":
        folder.mkdir(parents=True, exist_ok=True)
        _seq_files(folder)
        _scans(folder)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp)
        _seq_files(new)
        _scans(new)
        problems = compare(folder, new)
    print("\n".join(problems) or "behaviour unchanged")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
