"""How hifield's and BART's reconstruction times grow with the matrix (128, 256, 384) and the coils (8, 32).

Problem per size: BART's Shepp-Logan object (``bart phantom -x N``) seen by hifield's head array of C loops (BART's
phantom has at most 8 sensitivities), Fourier transformed, with complex Gaussian noise (sd 0.005 of the reference
maximum, seeded) and the variable-density line mask of ``recon_vs_bart.py`` (R = 4, 24 central lines). Each tool
runs its coil maps (hifield ``estimate_coil_maps`` / ``bart ecalib -m1``), then CG-SENSE, L1-wavelet and TV with its
own maps and the regularisation weights ``recon_vs_bart.py`` tuned at 256² and R 4 (hifield: SENSE 0.01, CS
0.0002, TV 0.005; BART: ``-l2 -r 0.01``, ``-l1 -r 0.003``, ``-R T:3:0:0.01``), so each row uses the same settings at
every size. The tools alternate run by run, the starting tool rotating, every run after the 1-minute load fell to
``--max-load`` (1.0); a run that had to start above it makes the script write nothing and exit 1. BART runs as a
subprocess (its times include process start and ``.cfl`` I/O); hifield in-process.

Run: ``python benchmarks/recon_scaling.py [--repeats 3]``. Writes ``benchmarks/results/recon_scaling.json`` and ``.md``.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recon_vs_bart import CPU_LOG, metrics, refuse_if_loaded, run_bart, vd_mask, wait_quiet

from hifield.data import RawData, RawHeader, centred_affine
from hifield.hardware import CoilArray
from hifield.io.cfl import read_cfl, write_cfl
from hifield.ops import fftc, ifftc
from hifield.recon import CsConfig, SenseConfig, TvConfig, estimate_coil_maps, reconstruct

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("maps", "sense", "cs", "tv")
HIFIELD = {"sense": SenseConfig(lambda_rel=0.01), "cs": CsConfig(lambda_rel=0.0002), "tv": TvConfig(lambda_rel=0.005)}
BART = {"sense": ["-l2", "-r", "0.01"], "cs": ["-l1", "-r", "0.003"], "tv": ["-R", "T:3:0:0.01"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 384])
    parser.add_argument("--coils", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-load", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    work = Path(tempfile.mkdtemp(prefix="hifield_scaling_"))
    start_load = os.getloadavg()
    rows: list[dict[str, object]] = []
    for n in args.sizes:
        for n_coils in args.coils:
            base = work / f"ksp_{n}_{n_coils}"
            # BART's phantom has at most 8 coil sensitivities: its object, hifield's head array for the coils
            subprocess.run(["bart", "phantom", "-x", str(n), str(work / "object")], check=True, env=env)
            obj = read_cfl(work / "object").reshape(1, n, n)
            coils = CoilArray.head_array(n_coils, b0_t=3.0)
            sens = coils.sensitivities(centred_affine((1, n, n), (0.005, 0.2 / n, 0.2 / n)), (1, n, n))
            ksp = fftc((sens * obj[None]).astype(np.complex64), axes=(-2, -1))
            ref = np.sqrt(np.sum(np.abs(ifftc(ksp, axes=(-2, -1))) ** 2, axis=0))[0]
            rng = np.random.default_rng(1234)
            noise = rng.standard_normal(ksp.shape) + 1j * rng.standard_normal(ksp.shape)
            noisy = (ksp + 0.005 * float(ref.max()) / np.sqrt(2) * noise).astype(np.complex64)
            mask = vd_mask(n, 4.0, 24, seed=4)
            kus = (noisy * mask).astype(np.complex64)
            write_cfl(base, kus)
            fov = 0.256
            header = RawHeader(
                b0_t=3.0, fov_m=(0.005, fov, fov), matrix=(1, n, n), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3
            )
            raw = RawData(kspace=kus, header=header, mask=mask)
            maps = estimate_coil_maps(raw, calib_size=24)
            bart_maps = work / f"maps_{n}_{n_coils}"
            run_bart(["ecalib", "-m1", str(base), str(bart_maps)], env)
            for method in HIFIELD:  # untimed first runs: imports, FFT plans, caches
                reconstruct(raw, method=method, coil_maps=maps, config=HIFIELD[method])
            record = {(tool, m): {"wall": [], "cpu": [], "load": []} for tool in ("hifield", "bart") for m in METHODS}
            images: dict[tuple[str, str], np.ndarray] = {}
            for rep in range(args.repeats):
                for tool in ("hifield", "bart") if rep % 2 == 0 else ("bart", "hifield"):
                    for method in METHODS:
                        load = wait_quiet(args.max_load)
                        if tool == "hifield":
                            wall, cpu = time.perf_counter(), time.process_time()
                            if method == "maps":
                                estimate_coil_maps(raw, calib_size=24)
                            else:
                                config = HIFIELD[method]
                                images[(tool, method)] = reconstruct(
                                    raw, method=method, coil_maps=maps, config=config
                                ).data
                            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                        else:
                            if method == "maps":
                                wall = run_bart(["ecalib", "-m1", str(base), str(work / "scratch_maps")], env)
                            else:
                                out = work / f"bart_{method}"
                                wall = run_bart(["pics", "-S", *BART[method], str(base), str(bart_maps), str(out)], env)
                                images[(tool, method)] = read_cfl(out)
                            cpu = CPU_LOG[-1]
                        entry = record[(tool, method)]
                        entry["wall"].append(wall)
                        entry["cpu"].append(cpu)
                        entry["load"].append(load)
            for method in METHODS:
                h, b = record[("hifield", method)], record[("bart", method)]
                row: dict[str, object] = {
                    "n": n,
                    "coils": n_coils,
                    "method": method,
                    "hifield_wall_s": statistics.median(h["wall"]),
                    "bart_wall_s": statistics.median(b["wall"]),
                    "hifield_cpu_s": statistics.median(h["cpu"]),
                    "bart_cpu_s": statistics.median(b["cpu"]),
                    "hifield_runs": h,
                    "bart_runs": b,
                }
                row["wall_ratio"] = float(row["hifield_wall_s"]) / float(row["bart_wall_s"])  # type: ignore[arg-type]
                if method != "maps":
                    row["hifield_ssim"] = metrics(ref, images[("hifield", method)])["ssim"]
                    row["bart_ssim"] = metrics(ref, images[("bart", method)])["ssim"]
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if not k.endswith("_runs")}), flush=True)
    loads = [x for row in rows for tool in ("hifield_runs", "bart_runs") for x in row[tool]["load"]]  # type: ignore[index]
    refuse_if_loaded(loads, args.max_load)
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "bart_version": subprocess.run(["bart", "version"], capture_output=True, text=True).stdout.strip(),
        "load_average_at_start": start_load,
        "load_average_at_end": os.getloadavg(),
        "max_load_before_a_run": max(loads),
        "repeats": args.repeats,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recon_scaling.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Reconstruction time vs matrix and coils: hifield and BART",
        "",
        f"`python benchmarks/recon_scaling.py --repeats {args.repeats}`; {meta['machine']}; BART "
        f"{meta['bart_version']}; {meta['date']}; 1-minute load {start_load[0]:.2f} at the start, "
        f"{meta['load_average_at_end'][0]:.2f} at the end, at most {max(loads):.2f} before any timed run. "
        "BART's Shepp-Logan object through hifield's head array at each size, R 4 (24 central lines), each tool "
        "with its own maps and its "
        "weights tuned at 256² (see the script); medians of the alternated runs; wall and CPU (user + system) seconds.",
        "",
        "| N | coils | method | hifield wall [s] | BART wall [s] | ratio | hifield CPU [s] | BART CPU [s] "
        "| SSIM hifield / BART |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ssim = f"{row['hifield_ssim']:.3f} / {row['bart_ssim']:.3f}" if "hifield_ssim" in row else ""
        lines.append(
            f"| {row['n']} | {row['coils']} | {row['method']} | {row['hifield_wall_s']:.3f} | "
            f"{row['bart_wall_s']:.3f} | {row['wall_ratio']:.2f}x | {row['hifield_cpu_s']:.2f} | "
            f"{row['bart_cpu_s']:.2f} | {ssim} |"
        )
    (args.out / "recon_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
