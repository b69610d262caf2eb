"""Benchmark hifield's Cartesian reconstructions against BART (Debian ``bart``) and SigPy on one shared problem.

Problem: BART's own 8-coil 256 x 256 Shepp-Logan k-space (``bart phantom -x 256 -s 8 -k``) plus complex Gaussian
noise (seeded), undersampled along the phase encoding (k1 = BART dim 1) by a variable-density random mask with 24
central lines at R = 4 and R = 8. Reference: the noise-free fully sampled root-sum-of-squares image. The k-space
goes to BART and SigPy through ``.cfl`` files.

Methods: coil maps (hifield ``estimate_coil_maps`` / ``bart ecalib -m1`` / SigPy ``EspiritCalib``), then l2-SENSE,
L1-wavelet and TV with each tool's own maps (``bart pics -S``: without ``-S`` BART returns its internally scaled
image). Regularisation weights are tuned per tool, method and R on a small grid by SSIM (the same oracle tuning for
every tool); the table reports the best setting, timed as the median of ``--repeats`` runs.

Timing: BART runs as a subprocess, so its times include process start and ``.cfl`` I/O (a ``bart version`` call,
measured in the same run, gives the size of that overhead); hifield runs in-process (import excluded), and SigPy
runs in a separate virtual environment (``--sigpy-python``, SigPy is never a hifield dependency) timed in-process.

Run: ``python benchmarks/recon_vs_bart.py [--repeats 5] [--sigpy-python /tmp/bench_venv/bin/python]``.
Writes ``benchmarks/results/recon_vs_bart.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hifield.data import RawData, RawHeader
from hifield.io.cfl import read_cfl, write_cfl
from hifield.metrics import nmse, psnr, ssim
from hifield.ops import ifftc
from hifield.recon import CsConfig, SenseConfig, TvConfig, estimate_coil_maps, reconstruct

RESULTS = Path(__file__).resolve().parent / "results"

SIGPY_WORKER = r"""
import json, sys, time
import numpy as np
import sigpy as sp
import sigpy.mri as mr
from hifield.io.cfl import read_cfl, write_cfl

job = json.loads(sys.argv[1])
ksp = read_cfl(job["kspace"])[:, 0]  # (coil, y, x)
out = {}
def timed(f, repeats):
    ts = []
    cpu = []
    for _ in range(repeats):
        t = time.perf_counter(); c = time.process_time(); r = f()
        ts.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    timed.cpu = cpu
    return r, ts
maps, ts = timed(lambda: mr.app.EspiritCalib(ksp, calib_width=24, show_pbar=False).run(), job["repeats"])
out["maps"] = {"times": ts, "cpu": timed.cpu}
weights = (np.abs(ksp).sum(axis=0) > 0).astype(np.float32)
aty = np.sum(np.conj(maps) * sp.ifft(ksp, axes=(-2, -1)), axis=0)
scale = float(np.abs(aty).max())
apps = {"sense": mr.app.SenseRecon, "cs": mr.app.L1WaveletRecon, "tv": mr.app.TotalVariationRecon}
iters = {"sense": 30, "cs": 100, "tv": 100}
for name, lams in (("sense", job["l2"]), ("cs", job["l1"]), ("tv", job["tv"])):
    def app(l, name=name):
        # Tikhonov (l2) weight is dimensionless (unit-gain operator); L1 and TV weights scale with the data
        lam = l if name == "sense" else l * scale
        return apps[name](ksp, maps, lamda=lam, weights=weights, max_iter=iters[name], show_pbar=False)
    for lam in lams:
        img, ts = timed(lambda: app(lam).run(), job["repeats"] if len(lams) == 1 else 1)
        path = f"{job['out']}_{name}_{lam}"
        write_cfl(path, np.asarray(img)[None])
        out.setdefault(name, []).append({"lambda": lam, "times": ts, "cpu": timed.cpu, "image": path})
print(json.dumps(out))
"""


def vd_mask(n: int, r: float, n_acs: int, seed: int) -> np.ndarray:
    """Variable-density random phase-encode lines (Gaussian density, sd n/4) plus ``n_acs`` central lines."""
    rng = np.random.default_rng(seed)
    k = np.arange(n) - n // 2
    lines = np.zeros(n, dtype=bool)
    lines[n // 2 - n_acs // 2 : n // 2 - n_acs // 2 + n_acs] = True
    pdf = np.exp(-0.5 * (k / (n / 4)) ** 2)
    pdf[lines] = 0
    pdf /= pdf.sum()
    extra = rng.choice(n, size=round(n / r) - n_acs, replace=False, p=pdf)
    lines[extra] = True
    return np.broadcast_to(lines[None, :, None], (1, n, n)).copy()


def metrics(ref: np.ndarray, image: np.ndarray) -> dict[str, float]:
    gt = np.abs(ref).reshape(1, *ref.shape[-2:]).astype(np.float64)
    pred = np.abs(image).reshape(1, *ref.shape[-2:]).astype(np.float64)
    return {"nrmse": float(np.sqrt(nmse(gt, pred))), "psnr": psnr(gt, pred), "ssim": ssim(gt, pred)}


CPU_LOG: list[float] = []


def run_bart(args: list[str], env: dict[str, str]) -> float:
    """Wall time of one BART command; its CPU time (user + system of the child) goes to ``CPU_LOG``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["bart", *args], check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_LOG.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def timed_call(fn: Callable[[], Any], repeats: int) -> tuple[Any, list[float], list[float]]:
    """Result of the last call, wall times and CPU times (this process) of ``repeats`` calls."""
    walls, cpus = [], []
    result = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return result, walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.005, help="noise sd relative to the reference image maximum")
    parser.add_argument("--sigpy-python", default="/tmp/bench_venv/bin/python")
    parser.add_argument("--accelerations", type=float, nargs="+", default=[4.0, 8.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    work = Path(tempfile.mkdtemp(prefix="hifield_bart_"))
    subprocess.run(["bart", "phantom", "-x", "256", "-s", "8", "-k", str(work / "ksp")], check=True, env=env)
    ksp = read_cfl(work / "ksp")  # (coil, 1, 256, 256) = BART (x, y, z, coil)
    n = ksp.shape[-1]
    ref = np.sqrt(np.sum(np.abs(ifftc(ksp, axes=(-2, -1))) ** 2, axis=0))[0]
    rng = np.random.default_rng(1234)
    sigma = args.noise * float(ref.max())
    noisy = (ksp + sigma / np.sqrt(2) * (rng.standard_normal(ksp.shape) + 1j * rng.standard_normal(ksp.shape))).astype(
        np.complex64
    )
    bart_start = statistics.median(run_bart(["version"], env) for _ in range(5))
    uptime = os.getloadavg()
    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.256, 0.256), matrix=(1, n, n), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3)

    grids = {
        "hifield": {"sense": [1e-3, 1e-2, 3e-2], "cs": [0.0002, 0.0005, 0.001, 0.002], "tv": [0.002, 0.005, 0.01]},
        "bart": {"sense": [0.001, 0.01, 0.03], "cs": [0.001, 0.003, 0.01, 0.03], "tv": [0.001, 0.003, 0.01, 0.03]},
        "sigpy": {
            "sense": [1e-3, 1e-2, 3e-2],
            "cs": [0.0005, 0.001, 0.002, 0.005],
            "tv": [0.0005, 0.001, 0.002, 0.005],
        },
    }
    rows: list[dict[str, object]] = []
    for r in args.accelerations:
        mask = vd_mask(n, r, 24, seed=int(r))
        kus = (noisy * mask).astype(np.complex64)
        base = work / f"ksp_r{int(r)}"
        write_cfl(base, kus)
        raw = RawData(kspace=kus, header=header, mask=mask)

        def add(
            tool: str,
            method: str,
            lam: float | None,
            times: list[float],
            image: np.ndarray | None,
            cpu: list[float],
            r: float = r,
        ) -> None:
            row: dict[str, object] = {
                "R": r,
                "tool": tool,
                "method": method,
                "lambda": lam,
                "time_s": statistics.median(times),
                "cpu_s": statistics.median(cpu),
                "times_s": times,
            }
            if image is not None:
                row.update(metrics(ref, image))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "times_s"}), flush=True)

        # ---- hifield
        maps, times, cpu = timed_call(lambda raw=raw: estimate_coil_maps(raw, calib_size=24), args.repeats)
        add("hifield", "maps", None, times, None, cpu)
        configs = {"sense": SenseConfig, "cs": CsConfig, "tv": TvConfig}
        for method, lams in grids["hifield"].items():
            best = None
            for lam in lams:
                cfg = configs[method](lambda_rel=lam)
                img = reconstruct(raw, method=method, coil_maps=maps, config=cfg).data
                m = metrics(ref, img)
                if best is None or m["ssim"] > best[1]:
                    best = (lam, m["ssim"])
            assert best is not None
            cfg = configs[method](lambda_rel=best[0])
            img, times, cpu = timed_call(
                lambda raw=raw, method=method, maps=maps, cfg=cfg: (
                    reconstruct(raw, method=method, coil_maps=maps, config=cfg).data
                ),
                args.repeats,
            )
            add("hifield", method, best[0], times, img, cpu)

        # ---- BART
        CPU_LOG.clear()
        times = [run_bart(["ecalib", "-m1", str(base), str(work / "maps")], env) for _ in range(args.repeats)]
        add("bart", "maps", None, times, None, list(CPU_LOG))
        flags = {"sense": ["-l2"], "cs": ["-l1"], "tv": ["-R", "T:3:0:{lam}"]}
        for method, lams in grids["bart"].items():
            best = None
            for lam in lams:
                reg = [f.format(lam=lam) for f in flags[method]]
                if method != "tv":
                    reg += ["-r", str(lam)]
                out = work / f"bart_{method}"
                run_bart(["pics", "-S", *reg, str(base), str(work / "maps"), str(out)], env)
                m = metrics(ref, read_cfl(out))
                if best is None or m["ssim"] > best[1]:
                    best = (lam, m["ssim"], reg)
            assert best is not None
            out = work / f"bart_{method}"
            CPU_LOG.clear()
            times = [
                run_bart(["pics", "-S", *best[2], str(base), str(work / "maps"), str(out)], env)
                for _ in range(args.repeats)
            ]
            add("bart", method, best[0], times, read_cfl(out), list(CPU_LOG))

        # ---- SigPy (separate environment)
        if args.sigpy_python and Path(args.sigpy_python).exists():
            job = {
                "kspace": str(base),
                "out": str(work / f"sigpy_r{int(r)}"),
                "repeats": 1,
                "l2": grids["sigpy"]["sense"],
                "l1": grids["sigpy"]["cs"],
                "tv": grids["sigpy"]["tv"],
            }
            res = json.loads(
                subprocess.run(
                    [args.sigpy_python, "-c", SIGPY_WORKER, json.dumps(job)], check=True, capture_output=True, text=True
                ).stdout
            )
            best_lams = {}
            for method in ("sense", "cs", "tv"):
                scored = [(metrics(ref, read_cfl(e["image"]))["ssim"], e["lambda"]) for e in res[method]]
                best_lams[method] = [max(scored)[1]]
            job = {
                "kspace": str(base),
                "out": str(work / f"sigpy_r{int(r)}"),
                "repeats": args.repeats,
                "l2": best_lams["sense"],
                "l1": best_lams["cs"],
                "tv": best_lams["tv"],
            }
            job_args = [args.sigpy_python, "-c", SIGPY_WORKER, json.dumps(job)]
            res = json.loads(subprocess.run(job_args, check=True, capture_output=True, text=True).stdout)
            add("sigpy", "maps", None, res["maps"]["times"], None, res["maps"]["cpu"])
            for method in ("sense", "cs", "tv"):
                e = res[method][0]
                add("sigpy", method, e["lambda"], e["times"], read_cfl(e["image"]), e["cpu"])

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "problem": "bart phantom -x 256 -s 8 -k, complex Gaussian noise, VD random PE mask with 24 ACS lines",
        "noise_sd_rel_to_ref_max": args.noise,
        "repeats": args.repeats,
        "bart_version": subprocess.run(["bart", "version"], capture_output=True, text=True).stdout.strip(),
        "bart_process_overhead_s": bart_start,
        "timing": "wall: BART as a subprocess incl. process start and cfl I/O, hifield and SigPy in-process; "
        "CPU: user+system seconds of the BART child / of the hifield or SigPy process during the call",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""),
        "load_average_at_start": uptime,
        "load_average_at_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (args.out / "recon_vs_bart.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# hifield vs BART vs SigPy: Cartesian reconstruction",
        "",
        f"{meta['problem']}; noise sd = {args.noise} x max(ref); median of {args.repeats} runs; {meta['machine']}; "
        f"{meta['date']}; load average {uptime[0]:.1f} at start, {meta['load_average_at_end'][0]:.1f} at end "
        "(the machine is shared: CPU seconds are the fairer speed comparison). "
        f"{meta['timing']} (bart version alone: {bart_start * 1000:.0f} ms). "
        "Lambda: best SSIM on each tool's own grid.",
        "",
        "| R | tool | method | lambda | wall [s] | CPU [s] | NRMSE | PSNR [dB] | SSIM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "ssim" in row:
            lines.append(
                f"| {row['R']:g} | {row['tool']} | {row['method']} | {row['lambda']} | {row['time_s']:.2f} | "
                f"{row['cpu_s']:.2f} | {row['nrmse']:.4f} | {row['psnr']:.2f} | {row['ssim']:.4f} |"
            )
        else:
            lines.append(
                f"| {row['R']:g} | {row['tool']} | {row['method']} | | {row['time_s']:.2f} | {row['cpu_s']:.2f} | | | |"
            )
    (args.out / "recon_vs_bart.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
