"""Benchmark hifield's golden-angle radial reconstructions (gridding, CG-SENSE, L1-wavelet CS) against SigPy.

Data (``--data simulator``, the default): hifield's own scanner simulation: the ``radial_gre_2d`` protocol (pypulseq
golden-angle RF-spoiled GRE, its first ``--spokes`` spokes played) on the brain phantom at 3 T with the 8-channel
Biot-Savart head array, simulated by the ``fast`` engine (phase-graph contrast, NUFFT on a grid twice as fine as
the reconstruction, off-resonance and chemical shift along each spoke, thermal noise of the array). The reference
is the noise-free fully sampled scan (pi/2 x matrix spokes) by CG-SENSE with the array's true sensitivities.
``--data analytic``: the golden-angle trajectory the radial protocol plays (``RadialProtocol``) over a Shepp-Logan
object with smooth coil maps, simulated by NUFFT on a twice finer grid plus complex Gaussian noise (``--noise``),
reference the object on the reconstruction grid. Both tools get the same data, the same
density compensation (the trajectory's analytic weights) and the same coil maps (hifield's ESPIRiT from the data),
so the comparison is of the NUFFT-based solvers. SigPy runs in a separate virtual environment
(``--sigpy-python``; it is never a hifield dependency).

Run: ``python benchmarks/recon_radial.py [--repeats 3]``; writes ``benchmarks/results/recon_radial.json`` / ``.md``.
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

from hifield.data import CoilMaps, RawData, RawHeader
from hifield.hardware import Scanner
from hifield.io.cfl import read_cfl, write_cfl
from hifield.metrics import nmse, psnr, ssim
from hifield.ops import NUFFTOp
from hifield.recon import CsConfig, SenseConfig, estimate_coil_maps, reconstruct
from hifield.sequence import RadialProtocol
from hifield.sim import sequence_trajectory

RESULTS = Path(__file__).resolve().parent / "results"

SIGPY_WORKER = r"""
import json, sys, time
import numpy as np
import sigpy.mri as mr
from hifield.io.cfl import read_cfl, write_cfl
job = json.loads(sys.argv[1])
ksp = read_cfl(job["kspace"])  # (coil, spokes, samples)
coord = read_cfl(job["coord"]).real.astype(np.float32)  # (spokes, samples, 2) in cycles per FOV (ky, kx)
dcf = read_cfl(job["dcf"]).real.astype(np.float32)
maps = read_cfl(job["maps"])  # (coil, y, x)
out = {}
for name, lam in (("sense", job["l2"]), ("cs", job["l1"])):
    walls, cpus = [], []
    for _ in range(job["repeats"]):
        t, c = time.perf_counter(), time.process_time()
        app = mr.app.SenseRecon if name == "sense" else mr.app.L1WaveletRecon
        iters = job["iters"] if name == "sense" else job["cs_iters"]
        img = app(ksp, maps, lamda=lam, weights=dcf, coord=coord, max_iter=iters, show_pbar=False).run()
        walls.append(time.perf_counter() - t); cpus.append(time.process_time() - c)
    path = job["out"] + "_" + name
    write_cfl(path, np.asarray(img)[None])
    out[name] = {"times": walls, "cpu": cpus, "image": path}
print(json.dumps(out))
"""


def simulate(n: int, n_spokes: int, n_coils: int, noise: float, fov: float = 0.2) -> tuple[RawData, np.ndarray]:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    def phantom(m: int) -> np.ndarray:
        return resize(shepp_logan_phantom(), (m, m), anti_aliasing=True).astype(np.complex128)

    def coil_maps(m: int) -> np.ndarray:
        y, x = np.meshgrid(np.linspace(-1, 1, m), np.linspace(-1, 1, m), indexing="ij")
        maps = np.empty((n_coils, 1, m, m), dtype=np.complex128)
        for c in range(n_coils):
            a = 2 * np.pi * c / n_coils
            maps[c, 0] = np.exp(1j * a) / (1 + ((y - 1.3 * np.sin(a)) ** 2 + (x - 1.3 * np.cos(a)) ** 2) / 0.8)
        return maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))

    protocol = RadialProtocol(matrix=n, fov_m=fov, n_spokes=n_spokes, readout_oversampling=1)
    trajectory = sequence_trajectory(protocol.build(Scanner.preset("3T")))
    k = trajectory.kspace_m
    fine = 2 * n
    op = NUFFTOp(k, (1, fine, fine), (0.005, fov / fine, fov / fine), batch_shape=(n_coils,), eps=1e-8)
    y = op @ (coil_maps(fine) * phantom(fine)[None]) / 2.0
    y = y * np.exp(2j * np.pi * (k[..., 1] + k[..., 2]) * fov / fine / 2)  # area-aligned resize: half-pixel shift
    rng = np.random.default_rng(7)
    y = y + noise / np.sqrt(2) * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, fov, fov),
        matrix=(1, n, n),
        te_s=0.005,
        tr_s=0.01,
        flip_angle_rad=0.2,
        trajectory="goldenangle",
    )
    raw = RawData(
        kspace=y.reshape(n_coils, 1, *k.shape[:-1]).astype(np.complex64), header=header, trajectory=trajectory
    )
    return raw, np.abs(phantom(n))


def simulate_scanner(n: int, n_spokes: int, n_coils: int, seed: int = 7) -> tuple[RawData, np.ndarray]:
    """Radial brain data from hifield's simulator and the reference (noise-free full scan, CG-SENSE, true maps)."""
    import hifield as hf
    from hifield.phantom import make_phantom

    scanner = Scanner.preset("3T", n_coils=n_coils)
    protocol = hf.get_protocol("radial_gre_2d").with_changes(matrix=n)
    phantom = make_phantom("brain", b0_t=3.0, matrix=n, fov_m=protocol.fov_m, oversampling=2)
    n_full = int(np.ceil(np.pi / 2 * n))
    full = hf.simulate(phantom, protocol.with_changes(n_spokes=n_full).build(scanner), scanner, noise=False)
    raw = hf.simulate(phantom, protocol.with_changes(n_spokes=n_spokes).build(scanner), scanner, seed=seed)
    maps = scanner.receive.sensitivities(full.header.affine_array(), full.header.matrix)
    maps = maps / np.maximum(np.sqrt(np.sum(np.abs(maps) ** 2, axis=0)), 1e-12)
    truth = reconstruct(full, method="sense", coil_maps=CoilMaps(maps=maps[np.newaxis].astype(np.complex64)))
    return raw, np.abs(truth.data).reshape(n, n)


def l1_absolute(raw: RawData, maps: np.ndarray, lambda_rel: float) -> float:
    """hifield's absolute L1 weight ``lambda_rel * max |W E^H y|`` (detail bands), to hand the same one to SigPy."""
    from hifield.ops import WaveletOp
    from hifield.recon import build_problem

    problem = build_problem(raw, coil_maps=CoilMaps(maps=maps), needs_coil_maps=True)
    aty = problem.adjoint()
    wav = WaveletOp(aty.shape, wavelet=CsConfig().wavelet, level=CsConfig().level)
    return float(lambda_rel * np.abs((wav @ aty)[wav.detail_mask]).max())


def scores(ref: np.ndarray, image: np.ndarray) -> dict[str, float]:
    pred = np.abs(image).reshape(1, *ref.shape)
    gt = ref[None]
    return {"nrmse": float(np.sqrt(nmse(gt, pred))), "psnr": psnr(gt, pred), "ssim": ssim(gt, pred)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--spokes", type=int, nargs="+", default=[201, 101])
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.002, help="noise sd of --data analytic")
    parser.add_argument("--data", choices=("simulator", "analytic"), default="simulator")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sigpy-python", default="/tmp/bench_venv/bin/python")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hifield_radial_"))
    rows: list[dict[str, object]] = []
    load_start = os.getloadavg()
    for n_spokes in args.spokes:
        if args.data == "simulator":
            raw, ref = simulate_scanner(args.n, n_spokes, args.coils)
        else:
            raw, ref = simulate(args.n, n_spokes, args.coils, args.noise)
        r_eff = args.n * np.pi / 2 / n_spokes
        maps = estimate_coil_maps(raw)
        configs = {
            "gridding": ("fft", None),
            "sense": ("sense", SenseConfig(max_iter=10, lambda_rel=1e-3)),
            "cs": ("cs", CsConfig(max_iter=30, lambda_rel=1e-3)),
        }
        for name, (method, cfg) in configs.items():
            walls, cpus = [], []
            for _ in range(args.repeats):
                t, c = time.perf_counter(), time.process_time()
                img = reconstruct(raw, method=method, coil_maps=maps, config=cfg).data
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            row = {"spokes": n_spokes, "R": r_eff, "tool": "hifield", "method": name}
            row |= {"time_s": statistics.median(walls), "cpu_s": statistics.median(cpus), **scores(ref, img)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.sigpy_python and Path(args.sigpy_python).exists():
            assert raw.trajectory is not None
            k = raw.trajectory.kspace_m
            fov = raw.header.fov_m[1]
            write_cfl(work / "ksp", raw.kspace[:, 0])
            write_cfl(work / "coord", np.stack([k[..., 1] * fov, k[..., 2] * fov], axis=-1))
            write_cfl(work / "dcf", np.asarray(raw.trajectory.density) * fov**2)
            write_cfl(work / "maps", maps.maps[0, :, 0])
            # same weights: hifield's l2 lambda_rel is dimensionless; its l1 weight is lambda_rel * max |W E^H y|
            job = {
                "kspace": str(work / "ksp"),
                "coord": str(work / "coord"),
                "dcf": str(work / "dcf"),
                "maps": str(work / "maps"),
                "out": str(work / f"sp{n_spokes}"),
                "repeats": args.repeats,
                "iters": 10,
                "cs_iters": 30,
                "l2": 1e-3,
                "l1": l1_absolute(raw, maps.maps, 1e-3),
            }
            res = json.loads(
                subprocess.run(
                    [args.sigpy_python, "-c", SIGPY_WORKER, json.dumps(job)], check=True, capture_output=True, text=True
                ).stdout
            )
            for name in ("sense", "cs"):
                e = res[name]
                row = {"spokes": n_spokes, "R": r_eff, "tool": "sigpy", "method": name}
                row |= {"time_s": statistics.median(e["times"]), "cpu_s": statistics.median(e["cpu"])}
                row |= scores(ref, read_cfl(e["image"]))
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "problem": (
            f"hifield-simulated radial_gre_2d brain scan {args.n}x{args.n}, {args.coils} coils (fast engine, thermal "
            "noise), reference: noise-free full scan by CG-SENSE with true maps"
            if args.data == "simulator"
            else f"golden-angle radial {args.n}x{args.n}, {args.coils} coils, noise sd {args.noise}"
        ),
        "repeats": args.repeats,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_start_end": [load_start[0], os.getloadavg()[0]],
        "timing": "in-process wall and CPU seconds for both tools (coil maps excluded; the same maps for both)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (args.out / "recon_radial.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Golden-angle radial: hifield vs SigPy",
        "",
        f"{meta['problem']}; median of {args.repeats}; {meta['machine']}; {meta['date']}; load average "
        f"{load_start[0]:.1f} -> {meta['load_average_start_end'][1]:.1f}. {meta['timing']}.",
        "",
        "| spokes | R | tool | method | wall [s] | CPU [s] | NRMSE | PSNR [dB] | SSIM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['spokes']} | {r['R']:.2f} | {r['tool']} | {r['method']} | {r['time_s']:.2f} | {r['cpu_s']:.2f} | "
            f"{r['nrmse']:.4f} | {r['psnr']:.2f} | {r['ssim']:.4f} |"
        )
    (args.out / "recon_radial.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
