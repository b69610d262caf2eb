"""Benchmark hifield's Cartesian reconstructions against BART (Debian ``bart``) and SigPy on one shared problem.

Problem: BART's own 8-coil 256 x 256 Shepp-Logan k-space (``bart phantom -x 256 -s 8 -k``) plus complex Gaussian
noise (seeded), undersampled along the phase encoding (k1 = BART dim 1) by a variable-density random mask with 24
central lines at R = 4 and R = 8. Reference: the noise-free fully sampled root-sum-of-squares image. The k-space
goes to BART and SigPy through ``.cfl`` files.

Methods: coil maps (hifield ``estimate_coil_maps`` / ``bart ecalib -m1`` / SigPy ``EspiritCalib``), then l2-SENSE,
L1-wavelet and TV with each tool's own maps (``bart pics -S``: without ``-S`` BART returns its internally scaled
image). Regularisation weights are tuned per tool, method and R on a small grid by SSIM (the same oracle tuning for
every tool, untimed); the table reports the best setting, timed as the median of ``--repeats`` runs. The tools
alternate run by run: every repetition runs each step once per tool, the starting tool rotating, and every run
waits until the 1-minute load average is at most ``--max-load`` (1.0); the load before each run is in the .json, and
when any run had to start above it (the wait gives up after 10 minutes) the script writes nothing and exits 1.

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
METHODS = ("maps", "sense", "cs", "tv")
SIGPY_KEYS = {"l2": "sense", "l1": "cs", "tv": "tv"}
"""The SigPy worker's weight lists and the methods they tune."""

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


def wait_quiet(limit: float, max_wait_s: float = 600.0) -> float:
    """Sleep until the 1-minute load average is at most ``limit``; returns it (as it is after ``max_wait_s``)."""
    start = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - start < max_wait_s:
        time.sleep(5)
    return os.getloadavg()[0]


def refuse_if_loaded(loads: list[float], limit: float) -> None:
    """Exit with a one-line message, writing nothing, when a timed run started above the load limit."""
    if loads and max(loads) > limit:
        sys.exit(
            f"not writing results: {sum(1 for x in loads if x > limit)} of {len(loads)} runs started at a 1-minute "
            f"load above {limit} (max {max(loads):.2f}); run again on a quiet machine"
        )


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results table as Markdown, from what the .json holds (``--markdown-from`` renders a saved run again)."""
    loads = [load for row in rows for load in row["load_before_runs"]]
    lines = [
        "# hifield vs BART vs SigPy: Cartesian reconstruction",
        "",
        f"{meta['problem']}; noise sd = {meta['noise_sd_rel_to_ref_max']} x max(ref); median of {meta['repeats']} "
        f"runs; {meta['machine']}; {meta['date']}. Tools alternated run by run; every timed run waited for a 1-minute "
        f"load at most {meta.get('max_load', 1.0):.1f} and started at {min(loads):.2f}-{max(loads):.2f} (each run's "
        "load is in the .json); the "
        f"script began at {meta['load_average_at_start'][0]:.2f}. {meta['timing']} (bart version alone: "
        f"{meta['bart_process_overhead_s'] * 1000:.0f} ms). Lambda: best SSIM on each tool's own grid.",
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.005, help="noise sd relative to the reference image maximum")
    parser.add_argument("--sigpy-python", default="/tmp/bench_venv/bin/python")
    parser.add_argument("--accelerations", type=float, nargs="+", default=[4.0, 8.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for this 1-minute load before each run")
    parser.add_argument("--markdown-from", type=Path, help="render the .md of a saved .json again, run nothing")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="tune and time only these (default all)"
    )
    args = parser.parse_args()
    if args.markdown_from is not None:
        saved = json.loads(args.markdown_from.read_text())
        args.markdown_from.with_suffix(".md").write_text(markdown(saved["meta"], saved["rows"]))
        return

    methods = tuple(m for m in METHODS if m in args.methods)
    solvers = [m for m in methods if m != "maps"]
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

    grids = {  # every tool's best weight lies inside its grid (an edge would hide a better one)
        "hifield": {
            "sense": [1e-3, 1e-2, 3e-2],
            "cs": [0.0001, 0.0002, 0.0005, 0.001, 0.002],
            "tv": [0.001, 0.002, 0.005, 0.01, 0.02],
        },
        "bart": {
            "sense": [0.001, 0.01, 0.03],
            "cs": [0.001, 0.003, 0.01, 0.03],
            "tv": [0.001, 0.003, 0.01, 0.03, 0.1],
        },
        "sigpy": {
            "sense": [1e-3, 1e-2, 3e-2, 0.1],
            "cs": [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02],
            "tv": [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02],
        },
    }
    rows: list[dict[str, object]] = []
    for r in args.accelerations:
        mask = vd_mask(n, r, 24, seed=int(r))
        kus = (noisy * mask).astype(np.complex64)
        base = work / f"ksp_r{int(r)}"
        write_cfl(base, kus)
        raw = RawData(kspace=kus, header=header, mask=mask)

        # ---- 1. tuning (untimed): each tool's lambda by SSIM on its own grid, with its own maps
        maps = estimate_coil_maps(raw, calib_size=24)
        configs = {"sense": SenseConfig, "cs": CsConfig, "tv": TvConfig}
        hifield_cfg = {}
        for method, lams in grids["hifield"].items():
            if method not in solvers:
                continue
            scored = []
            for lam in lams:
                img = reconstruct(raw, method=method, coil_maps=maps, config=configs[method](lambda_rel=lam)).data
                scored.append((metrics(ref, img)["ssim"], lam))
            hifield_cfg[method] = (max(scored)[1], configs[method](lambda_rel=max(scored)[1]))
        bart_maps = work / "maps"
        run_bart(["ecalib", "-m1", str(base), str(bart_maps)], env)
        flags = {"sense": ["-l2"], "cs": ["-l1"], "tv": ["-R", "T:3:0:{lam}"]}
        bart_reg = {}
        for method, lams in grids["bart"].items():
            if method not in solvers:
                continue
            scored = []
            for lam in lams:
                reg = [f.format(lam=lam) for f in flags[method]] + (["-r", str(lam)] if method != "tv" else [])
                out = work / f"bart_{method}"
                run_bart(["pics", "-S", *reg, str(base), str(bart_maps), str(out)], env)
                scored.append((metrics(ref, read_cfl(out))["ssim"], lam, reg))
            best = max(scored, key=lambda e: e[0])
            bart_reg[method] = (best[1], best[2])
        sigpy_lams = None
        if args.sigpy_python and Path(args.sigpy_python).exists():
            job = {"kspace": str(base), "out": str(work / f"sigpy_r{int(r)}"), "repeats": 1}
            job.update({key: grids["sigpy"][m] if m in solvers else [] for key, m in SIGPY_KEYS.items()})
            res = json.loads(
                subprocess.run(
                    [args.sigpy_python, "-c", SIGPY_WORKER, json.dumps(job)], check=True, capture_output=True, text=True
                ).stdout
            )
            sigpy_lams = {
                method: max((metrics(ref, read_cfl(e["image"]))["ssim"], e["lambda"]) for e in res[method])[1]
                for method in solvers
            }

        # ---- 2. timing, alternated run by run: in every repetition each step runs once per tool, the tool that
        # starts rotating, each run after the machine is quiet (1-minute load at most --max-load)
        steps: dict[tuple[str, str], Callable[[], Any]] = {}
        steps[("hifield", "maps")] = lambda raw=raw: estimate_coil_maps(raw, calib_size=24)
        steps[("bart", "maps")] = lambda base=base, bm=bart_maps: run_bart(["ecalib", "-m1", str(base), str(bm)], env)
        for method in solvers:
            cfg = hifield_cfg[method][1]
            steps[("hifield", method)] = lambda raw=raw, method=method, cfg=cfg, maps=maps: (
                reconstruct(raw, method=method, coil_maps=maps, config=cfg).data
            )
            out = work / f"bart_{method}"
            steps[("bart", method)] = lambda base=base, out=out, reg=bart_reg[method][1], bm=bart_maps: run_bart(
                ["pics", "-S", *reg, str(base), str(bm), str(out)], env
            )
        runs: dict[tuple[str, str], dict[str, list[float]]] = {
            key: {"wall": [], "cpu": [], "load": []} for key in [*steps, *(("sigpy", m) for m in methods)]
        }
        images: dict[tuple[str, str], np.ndarray] = {}
        for rep in range(args.repeats):
            tools = ["hifield", "bart", "sigpy"] if sigpy_lams is not None else ["hifield", "bart"]
            tools = tools[rep % len(tools) :] + tools[: rep % len(tools)]
            for tool in tools:
                if tool == "sigpy":
                    assert sigpy_lams is not None
                    load = wait_quiet(args.max_load)
                    job = {"kspace": str(base), "out": str(work / f"sigpy_r{int(r)}"), "repeats": 1}
                    job.update({key: [sigpy_lams[m]] if m in solvers else [] for key, m in SIGPY_KEYS.items()})
                    res = json.loads(
                        subprocess.run(
                            [args.sigpy_python, "-c", SIGPY_WORKER, json.dumps(job)],
                            check=True, capture_output=True, text=True,
                        ).stdout
                    )  # fmt: skip
                    for method in methods:
                        entry = res["maps"] if method == "maps" else res[method][0]
                        runs[("sigpy", method)]["wall"] += entry["times"]
                        runs[("sigpy", method)]["cpu"] += entry["cpu"]
                        runs[("sigpy", method)]["load"].append(load)
                        if method != "maps":
                            images[("sigpy", method)] = read_cfl(entry["image"])
                    continue
                for method in methods:
                    load = wait_quiet(args.max_load)
                    CPU_LOG.clear()
                    t, c = time.perf_counter(), time.process_time()
                    result = steps[(tool, method)]()
                    wall, cpu = time.perf_counter() - t, time.process_time() - c
                    if tool == "bart":
                        wall, cpu = float(result), CPU_LOG[-1]
                        if method != "maps":
                            images[(tool, method)] = read_cfl(work / f"bart_{method}")
                    elif method != "maps":
                        images[(tool, method)] = np.asarray(result)
                    runs[(tool, method)]["wall"].append(wall)
                    runs[(tool, method)]["cpu"].append(cpu)
                    runs[(tool, method)]["load"].append(load)
        lams = {("hifield", m): hifield_cfg[m][0] for m in hifield_cfg} | {
            ("bart", m): bart_reg[m][0] for m in bart_reg
        }
        if sigpy_lams is not None:
            lams |= {("sigpy", m): lam for m, lam in sigpy_lams.items()}
        for (tool, method), record in runs.items():
            if not record["wall"]:
                continue
            row: dict[str, object] = {
                "R": r,
                "tool": tool,
                "method": method,
                "lambda": lams.get((tool, method)),
                "time_s": statistics.median(record["wall"]),
                "cpu_s": statistics.median(record["cpu"]),
                "times_s": record["wall"],
                "load_before_runs": record["load"],
            }
            if (tool, method) in images:
                row.update(metrics(ref, images[(tool, method)]))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("times_s", "load_before_runs")}), flush=True)

    loads = [load for row in rows for load in row["load_before_runs"]]  # type: ignore[attr-defined]
    refuse_if_loaded(loads, args.max_load)
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
        "max_load": args.max_load,
        "load_average_at_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (args.out / "recon_vs_bart.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    text = markdown(meta, rows)
    (args.out / "recon_vs_bart.md").write_text(text)
    print(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
