"""Retrospective sweep of the (k2, k1) pattern of an MPRAGE volume: calibration block size vs ZF / SENSE / CS NMSE.

Simulates the fully sampled, noise-free MPRAGE once (the slow part; cached as a pickle), adds the thermal noise the
fast engine adds, then applies each Poisson-disc (or CAIPIRINHA) mask retrospectively and scores the reconstructions
against the noise-free truth as ``hifield scan`` does.

Usage: ``python benchmarks/mprage_calibration_sweep.py [--matrix 48] [--accel 4] [--calib 24 20 16 12]
[--pattern poisson] [--cache /tmp/mprage48.pkl]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import time
from pathlib import Path

import numpy as np


def simulate_full(matrix: int, cache: Path) -> dict:
    """The fully sampled noise-free raw data, a noisy copy and the scanner (cached in ``cache``)."""
    if cache.exists():
        with cache.open("rb") as f:
            return pickle.load(f)  # our own cache file
    from hifield import pipeline as pl
    from hifield.scan_config import ScanConfig
    from hifield.sim import simulate
    from hifield.sim.field_effects import apply_field_effects
    from hifield.sim.noise import add_thermal_noise, kspace_noise_std

    cfg = ScanConfig(protocol="mprage_3d", matrix=matrix, acceleration=1.0, write_files=False).validated()
    exam = pl.build_exam(cfg)
    phantom = pl.phantom_for_protocol(cfg.phantom, exam.protocol, b0_t=exam.scanner.b0_t)
    phantom, _ = apply_field_effects(phantom, cfg.field_effects, head=True)
    ref = simulate(phantom, exam.acquisition.full, exam.scanner, engine="fast", noise=False, seed=0)
    std = kspace_noise_std(
        exam.scanner.b0_t,
        dwell_s=ref.header.readout_dwell_s,
        n_grid=int(np.prod(ref.kspace.shape[-3:])),
        n_averages=1,
    )
    noisy, noise_scan = add_thermal_noise(
        ref.kspace.astype(np.complex128), exam.scanner.receive.noise_covariance, std, np.random.default_rng(0)
    )
    data = {"ref": ref, "noisy": noisy.astype(np.complex64), "noise": noise_scan, "scanner": exam.scanner}
    with cache.open("wb") as f:
        pickle.dump(data, f)
    return data


def main() -> None:
    """Print one line per calibration size: achieved R, ACS points, NMSE and SSIM of fft, sense and cs."""
    from hifield import pipeline as pl
    from hifield.recon import reconstruct, scan_coil_maps
    from hifield.sampling import make_pattern

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=int, default=48)
    parser.add_argument("--accel", type=float, default=4.0)
    parser.add_argument("--calib", type=int, nargs="+", default=[24, 20, 16, 12])
    parser.add_argument("--pattern", default="poisson")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    cache = args.cache or Path(f"/tmp/hifield_mprage{args.matrix}.pkl")
    data = simulate_full(args.matrix, cache)
    ref, n = data["ref"], args.matrix
    n2, n1 = ref.kspace.shape[-3], ref.kspace.shape[-2]
    truth = np.abs(pl.reference_image(ref, data["scanner"]).data).reshape(-1, n, n).astype(np.float32)
    print(f"load average {os.getloadavg()}")
    for calib in args.calib:
        p = make_pattern(args.pattern, (n2, n1), acceleration=args.accel, n_calibration=calib, seed=0)
        kspace = np.where(p.mask[None], data["noisy"].reshape(ref.kspace.shape), 0).astype(np.complex64)
        header = dataclasses.replace(ref.header, acceleration=p.acceleration)
        raw = ref.replace(kspace=kspace, mask=p.mask, calibration=p.calibration, header=header, noise=data["noise"])
        maps, _ = scan_coil_maps(raw, prescan=lambda: None)
        line = [f"{args.pattern} R={p.acceleration:.2f} calib={calib} acs={p.calibration_lines}"]
        for method in ("fft", "sense", "cs"):
            start = time.perf_counter()
            image = reconstruct(raw, method=method, coil_maps=None if method == "fft" else maps)
            score = pl.score(truth, np.abs(image.data).reshape(-1, n, n).astype(np.float32))
            line.append(
                f"{method} nmse {score['nmse']:.4f} ssim {score['ssim']:.3f} ({time.perf_counter() - start:.1f} s)"
            )
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
