"""Profile table of hifield's L1-wavelet CS and TV reconstructions on the BART benchmark's problem (cProfile).

The problem is that of ``recon_vs_bart.py`` (BART's 8-coil 256 x 256 phantom k-space, noise, the variable-density
line mask with 24 central lines, R = 4 and 8), reconstructed with hifield's coil maps and the regularisation weights
``recon_vs_bart.py`` tuned (CS 0.0002 / 0.0005, TV 0.005 / 0.01 of R 4 / 8). Each reconstruction runs once untimed,
then ``--repeats`` times under cProfile; the table lists the functions with the largest own time.

Run it on a quiet machine against any checkout, e.g. the code before a change::

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before/src python benchmarks/profile_cs_tv.py --label before
    python benchmarks/profile_cs_tv.py --label after

Writes ``benchmarks/results/profile_cs_tv_<label>.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recon_vs_bart import metrics, vd_mask

import hifield
from hifield.data import RawData, RawHeader
from hifield.io.cfl import read_cfl
from hifield.ops import ifftc
from hifield.recon import CsConfig, TvConfig, estimate_coil_maps, reconstruct

RESULTS = Path(__file__).resolve().parent / "results"
LAMBDAS = {4.0: {"cs": 0.0002, "tv": 0.005}, 8.0: {"cs": 0.0005, "tv": 0.01}}


def _commit() -> str:
    src = Path(hifield.__file__).resolve().parent
    proc = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True, text=True)
    return proc.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hifield_prof_"))
    subprocess.run(["bart", "phantom", "-x", "256", "-s", "8", "-k", str(work / "ksp")], check=True)
    ksp = read_cfl(work / "ksp")
    n = ksp.shape[-1]
    ref = np.sqrt(np.sum(np.abs(ifftc(ksp, axes=(-2, -1))) ** 2, axis=0))[0]
    rng = np.random.default_rng(1234)
    sigma = 0.005 * float(ref.max())
    noise = rng.standard_normal(ksp.shape) + 1j * rng.standard_normal(ksp.shape)
    noisy = (ksp + sigma / np.sqrt(2) * noise).astype(np.complex64)
    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.256, 0.256), matrix=(1, n, n), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3)
    load = os.getloadavg()
    sections = []
    record: dict[str, object] = {"label": args.label, "commit": _commit(), "load_at_start": load, "runs": []}
    for r, lams in LAMBDAS.items():
        mask = vd_mask(n, r, 24, seed=int(r))
        raw = RawData(kspace=(noisy * mask).astype(np.complex64), header=header, mask=mask)
        maps = estimate_coil_maps(raw, calib_size=24)
        for method, lam in lams.items():
            config = CsConfig(lambda_rel=lam) if method == "cs" else TvConfig(lambda_rel=lam)
            image = reconstruct(raw, method=method, coil_maps=maps, config=config).data  # untimed warm-up
            profile = cProfile.Profile()
            walls = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                profile.enable()
                reconstruct(raw, method=method, coil_maps=maps, config=config)
                profile.disable()
                walls.append(time.perf_counter() - start)
            stats = pstats.Stats(profile)
            total = sum(walls)
            entries = []
            for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
                entries.append((own, cumulative, calls, f"{Path(file).name}:{line}({name})"))
            entries.sort(reverse=True)
            ssim = metrics(ref, image)["ssim"]
            rows = [
                f"| {where} | {calls // args.repeats} | {own / args.repeats * 1e3:.1f} | {100 * own / total:.1f} |"
                for own, _, calls, where in entries[: args.top]
            ]
            median = float(np.median(walls))
            sections.append(
                f"### {method.upper()}, R {r:g} (lambda {lam}): {median:.3f} s per reconstruction (median of "
                f"{args.repeats}, under cProfile), SSIM {ssim:.4f}\n\n"
                "| function | calls per run | own ms per run | % of wall |\n|---|---:|---:|---:|\n" + "\n".join(rows)
            )
            record["runs"].append(  # type: ignore[attr-defined]
                {"method": method, "R": r, "lambda": lam, "wall_s": walls, "ssim": ssim,
                 "top": [{"where": w, "calls": c, "own_s": o, "cumulative_s": cu} for o, cu, c, w in entries[:30]]}
            )  # fmt: skip
    record["load_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile_cs_tv_{args.label}.json").write_text(json.dumps(record, indent=1))
    head = (
        f"# Profile of CS and TV, {args.label} (hifield {record['commit']})\n\n"
        f"`python benchmarks/profile_cs_tv.py --label {args.label}`; 1-minute load {load[0]:.2f} at the start, "
        f"{record['load_at_end'][0]:.2f} at the end; {os.cpu_count()} cores. cProfile adds its own overhead per "
        "Python call; the shares, not the seconds, are the point.\n\n"
    )
    (RESULTS / f"profile_cs_tv_{args.label}.md").write_text(head + "\n\n".join(sections) + "\n")
    print(head + "\n\n".join(sections))


if __name__ == "__main__":
    main()
