"""hifield's ``fast`` and ``bloch`` engines side by side with MRzeroCore on the same 2D GRE ``.seq`` and phantom.

MRzeroCore (Endres et al., MRM 2024; PyPI ``MRzeroCore``) is AGPL-licensed: it is never a hifield dependency and
none of its code is used. It runs as a black box in its own virtual environment (``--mrzero-python``, e.g.
``/tmp/mrzero_venv/bin/python`` after ``python -m venv /tmp/mrzero_venv && /tmp/mrzero_venv/bin/pip install torch
MRzeroCore``), fed through files: the ``.seq`` that hifield wrote and ``.npz`` maps of the phantom.

Problem: the brain phantom at 3 T (fat given a single 0-ppm peak, as MRzero has no chemical shift), matrix
64 x 64 and 128 x 128 (phantom on the same grid), the hifield 2D RF-spoiled GRE protocol (TR 20 ms, 15 degrees,
TE 5 ms, 150 dummy scans so that the acquisition is in steady state), 8 receive coils, no noise. MRzero is run
once per tissue (it takes one T1/T2/T2' per voxel, and partial-volume voxels mix tissues) with PD = fraction x
tissue PD, the tissue's T1, T2 and T2' = 1/(1/T2* - 1/T2), the B0 map, B1 = 1 and hifield's coil sensitivities;
the signals are summed.

Reported: wall time of each simulator (hifield in-process after a warm-up; MRzero's graph pre-pass + execution
inside its worker, torch on CPU) and the NRMSE of the root-sum-of-squares images of each engine against MRzero's
(after a least-squares scale, since the signal units differ). The image orientation of MRzero's k-space ordering
is matched by trying the 8 flips/transposes and keeping the best (reported).

Run: ``python benchmarks/sim_vs_mrzero.py --mrzero-python /tmp/mrzero_venv/bin/python``.
Writes ``benchmarks/results/sim_vs_mrzero.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from hifield.hardware.scanner import Scanner
from hifield.phantom import brain_phantom
from hifield.sequence.protocol import GreProtocol
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch
from hifield.sim.engines.fast import simulate_fast

RESULTS = Path(__file__).resolve().parent / "results"

WORKER = r"""
import json, sys, time
import numpy as np
import torch
import MRzeroCore as mr0

job = json.loads(sys.argv[1])
torch.set_num_threads(job["threads"])
maps = np.load(job["maps"])
t0 = time.perf_counter()
seq = mr0.Sequence.import_file(job["seq"])
total = None
for k in range(maps["pd"].shape[0]):  # one simulation per tissue (MRzero takes one T1/T2/T2' per voxel)
    phantom = mr0.VoxelGridPhantom(
        maps["pd"][k], maps["t1"][k], maps["t2"][k], maps["t2dash"][k], np.zeros_like(maps["pd"][k]), maps["b0"],
        np.ones((1, *maps["b0"].shape)), maps["sens"], maps["affine_mm"],
    )
    data = phantom.build()
    graph = mr0.compute_graph(seq, data, 200, 1e-4)
    signal = mr0.execute_graph(graph, seq, data, 1e-3, 1e-3, print_progress=False)
    total = signal if total is None else total + signal
wall = time.perf_counter() - t0
np.save(job["out"], total.detach().numpy())
print(json.dumps({"wall_s": wall}))
"""


def rss_image(kspace: np.ndarray) -> np.ndarray:
    """Root-sum-of-squares image of a ``(coil, k1, k0)`` k-space (orthonormal centred FFT)."""
    img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.sqrt((np.abs(img) ** 2).sum(axis=0))


def nrmse_scaled(image: np.ndarray, reference: np.ndarray) -> float:
    """NRMSE of ``image`` against ``reference`` after the least-squares scale of ``image``."""
    scale = float((image * reference).sum() / max((image * image).sum(), 1e-30))
    return float(np.linalg.norm(scale * image - reference) / np.linalg.norm(reference))


def oriented(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, str]:
    """The flip/transpose of ``image`` closest to ``reference``."""
    best = (np.inf, image, "identity")
    for transpose in (False, True):
        base = image.T if transpose else image
        for fy in (False, True):
            for fx in (False, True):
                cand = base[::-1] if fy else base
                cand = cand[:, ::-1] if fx else cand
                err = nrmse_scaled(cand, reference)
                name = f"{'T' if transpose else ''}{'flip-y ' if fy else ''}{'flip-x' if fx else ''}".strip()
                if err < best[0]:
                    best = (err, np.ascontiguousarray(cand), name or "identity")
    return best[1], best[2]


def run(
    n: int, mrzero_python: str, n_coils: int, n_iso: int, tmp: Path, tr_s: float = 0.02, n_dummy: int = 150
) -> dict[str, object]:
    scanner = Scanner.preset("3T", n_coils=n_coils)
    protocol = GreProtocol(
        name="gre_vs_mrzero",
        matrix=n,
        fov_m=0.24,
        tr_s=tr_s,
        te_s=0.005,
        flip_angle_rad=np.radians(15.0),
        n_dummy_scans=n_dummy,
    )
    sequence = protocol.build(scanner)
    brain = brain_phantom(matrix=n, fov_m=0.24, b0_t=3.0)
    tissues = tuple(dataclasses.replace(t, chemical_shift_ppm=(0.0,), peak_amplitudes=(1.0,)) for t in brain.tissues)
    phantom = brain.replace(tissues=tissues)
    if os.environ.get("HIFIELD_BENCH_NO_B0"):
        phantom = phantom.replace(off_resonance_hz=np.zeros_like(phantom.off_resonance_hz))

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    fast = simulate_fast(phantom, sequence, scanner, noise=False, rng=rng)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    bloch = simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng, options=BlochOptions(n_isochromats=n_iso))
    t_bloch = time.perf_counter() - t0

    seq_path = tmp / f"gre_{n}.seq"
    sequence.seq.write(str(seq_path))
    sens = scanner.receive.sensitivities(phantom.affine, phantom.shape)[:, 0]  # (coil, y, x)
    _, dy, dx = phantom.voxel_size_m

    def xyz(a: np.ndarray) -> np.ndarray:  # (y, x) -> (x, y, 1)
        return np.ascontiguousarray(a.T[:, :, None])

    keep = [k for k, t in enumerate(phantom.tissues) if t.pd > 0 and phantom.fractions[k].any()]
    ones = np.ones(phantom.shape[1:])
    maps_path = tmp / f"maps_{n}.npz"
    np.savez(
        maps_path,
        pd=np.stack([xyz(phantom.fractions[k, 0] * phantom.tissues[k].pd) for k in keep]).astype(np.float32),
        t1=np.stack([xyz(ones * phantom.tissues[k].t1_s) for k in keep]).astype(np.float32),
        t2=np.stack([xyz(ones * phantom.tissues[k].t2_s) for k in keep]).astype(np.float32),
        t2dash=np.stack(
            [xyz(ones / max(1.0 / phantom.tissues[k].t2star_s - 1.0 / phantom.tissues[k].t2_s, 1e-3)) for k in keep]
        ).astype(np.float32),
        b0=xyz(phantom.off_resonance_hz[0]).astype(np.float32),
        sens=np.ascontiguousarray(np.transpose(sens, (0, 2, 1))[..., None]).astype(np.complex64),
        affine_mm=np.diag([dx * 1e3, dy * 1e3, float(protocol.slice_thickness_m) * 1e3, 1.0]).astype(np.float32),
    )
    out_path = tmp / f"signal_{n}.npy"
    job = {"maps": str(maps_path), "seq": str(seq_path), "out": str(out_path), "threads": os.cpu_count() or 1}
    proc = subprocess.run(
        [mrzero_python, "-c", WORKER, json.dumps(job)], capture_output=True, text=True, check=False, timeout=3000
    )
    if proc.returncode != 0:
        raise RuntimeError(f"MRzero worker failed: {proc.stderr.strip().splitlines()[-1:]}")
    t_mrzero = float(json.loads(proc.stdout.strip().splitlines()[-1])["wall_s"])
    signal = np.load(out_path)  # (samples, coils)
    n_ro = sequence.n_readout_samples
    lines = signal.reshape(-1, n_ro, signal.shape[-1])  # (ADC, k0, coil), ADCs in acquisition order
    k_mr = np.zeros((signal.shape[-1], n, n_ro), dtype=np.complex128)
    k_mr[:, sequence.phase_encode_lines, :] = np.transpose(lines, (2, 0, 1))

    ref = rss_image(k_mr)
    img_fast = rss_image(fast.kspace[:, 0].astype(np.complex128))
    img_bloch = rss_image(bloch.kspace[:, 0].astype(np.complex128))
    ref_oriented, orientation = oriented(ref, img_bloch)
    if os.environ.get("HIFIELD_BENCH_SAVE"):
        np.savez(os.environ["HIFIELD_BENCH_SAVE"] + f"_{n}.npz", fast=img_fast, bloch=img_bloch, mrzero=ref_oriented)
    return {
        "matrix": n,
        "coils": n_coils,
        "bloch_isochromats": n_iso,
        "wall_fast_s": t_fast,
        "wall_bloch_s": t_bloch,
        "wall_mrzero_s": t_mrzero,
        "nrmse_fast_vs_mrzero": nrmse_scaled(img_fast, ref_oriented),
        "nrmse_bloch_vs_mrzero": nrmse_scaled(img_bloch, ref_oriented),
        "nrmse_fast_vs_bloch": nrmse_scaled(img_fast, img_bloch),
        "mrzero_orientation": orientation,
        "speedup_fast_vs_mrzero": t_mrzero / t_fast,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mrzero-python", default="/tmp/mrzero_venv/bin/python")
    parser.add_argument("--matrices", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--tr-ms", type=float, default=20.0)
    parser.add_argument("--dummies", type=int, default=150, help="dummy TRs before acquisition (steady state)")
    parser.add_argument("--isochromats", type=int, default=32, help="bloch isochromats per voxel")
    args = parser.parse_args()
    # warm-up of the bloch kernel (Numba compile or cache load), excluded from the timings
    scanner = Scanner.preset("3T", n_coils=args.coils)
    tiny = GreProtocol(matrix=8, fov_m=0.24, tr_s=0.02).build(scanner)
    simulate_bloch(
        brain_phantom(matrix=8, fov_m=0.24, b0_t=3.0), tiny, scanner, noise=False, rng=np.random.default_rng(0)
    )
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in args.matrices:
            rows.append(
                run(n, args.mrzero_python, args.coils, args.isochromats, Path(d), args.tr_ms * 1e-3, args.dummies)
            )
            print(rows[-1], flush=True)
            write_results(rows, args.mrzero_python, args.coils)
    write_results(rows, args.mrzero_python, args.coils)


def write_results(rows: list[dict[str, object]], mrzero_python: str, n_coils: int) -> None:
    """Write ``sim_vs_mrzero.json`` and ``.md`` (also usable on rows of an interrupted run)."""
    version = subprocess.run(
        [mrzero_python, "-c", "import MRzeroCore; print(MRzeroCore.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    meta = {"mrzerocore": version, "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sim_vs_mrzero.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [
        "# hifield simulators vs MRzeroCore",
        "",
        f"`python benchmarks/sim_vs_mrzero.py` — MRzeroCore {version} (separate venv, CPU torch), "
        f"{meta['cpu_count']} CPUs shared (load average {meta['load_average_1min']:.1f}); brain phantom, 2D GRE, "
        f"{n_coils} coils, no noise, 150 dummy TRs. NRMSE of RSS images after a least-squares scale. Wall times on "
        "a shared machine: compare them only within a row.",
        "",
        "| matrix | bloch isochromats | fast [s] | bloch [s] | MRzero [s] | fast speed-up vs MRzero "
        "| NRMSE fast vs MRzero "
        "| NRMSE bloch vs MRzero | NRMSE fast vs bloch | MRzero orientation |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['matrix']} | {r['bloch_isochromats']} | {r['wall_fast_s']:.3f} | {r['wall_bloch_s']:.2f} "
            f"| {r['wall_mrzero_s']:.2f} "
            f"| {r['speedup_fast_vs_mrzero']:.0f}x | {r['nrmse_fast_vs_mrzero']:.3f} "
            f"| {r['nrmse_bloch_vs_mrzero']:.3f} "
            f"| {r['nrmse_fast_vs_bloch']:.3f} | {r['mrzero_orientation']} |"
        )
    (RESULTS / "sim_vs_mrzero.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
