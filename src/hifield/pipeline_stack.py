"""A 2D slice-stack exam: the whole stack is checked (SAR, PNS), then each slice is scanned in parallel."""

from __future__ import annotations

import contextvars
import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from hifield.pipeline import ScanConfig, ScanResult, StepReporter


def _scan_one_slice(config: ScanConfig) -> ScanResult:
    """One slice of the stack (a worker process): the single-slice pipeline at the slice's position, one BLAS thread."""
    from threadpoolctl import threadpool_limits

    from hifield.pipeline import scan

    with threadpool_limits(1):
        return scan(config, reuse_exam=True)


SliceMapper = Callable[[Callable[[Any], Any], list[Any]], list[Any]]
"""Maps the one-slice scan over the slices' configs and returns their results in order (like ``map``)."""

slice_mapper: contextvars.ContextVar[SliceMapper | None] = contextvars.ContextVar("slice_mapper", default=None)
"""How a stack's slices are scanned. None: a process pool on this machine (:func:`slice_workers`); a study's Dask
task sets it to run each slice as a task of its own on the cluster (:mod:`hifield.distributed`)."""


def slice_workers(n_slices: int) -> int:
    """Processes to scan ``n_slices`` slices with: one per core, but 1 inside a daemonic process (a Dask worker of
    ``hifield study``, a multiprocessing pool), which may not start processes of its own and whose cluster already
    runs exams side by side."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(n_slices, os.cpu_count() or 1))


def stack_affine(slice_affine: NDArray[np.float64], positions_m: list[float]) -> NDArray[np.float64]:
    """Voxel-to-patient affine of a stack: the slice's in-plane axes, slice axis scaled to the slice spacing, voxel
    ``(0, 0, 0)`` on the first slice (``positions_m`` along the slice normal, equally spaced; whatever through-plane
    position the slice's own affine had is replaced).

    Examples
    --------
    >>> one = np.diag([0.005, 0.001, 0.001, 1.0]); one[0, 3] = -0.006  # the first slice's own affine
    >>> a = stack_affine(one, [-0.006, 0.0, 0.006])
    >>> float(a[0, 0]), float(a[0, 3])
    (0.006, -0.006)
    """
    out = np.array(slice_affine, dtype=np.float64)
    normal = out[:3, 0] / np.linalg.norm(out[:3, 0])
    spacing = positions_m[1] - positions_m[0] if len(positions_m) > 1 else float(np.linalg.norm(out[:3, 0]))
    out[:3, 0] = normal * spacing
    out[:3, 3] = out[:3, 3] - normal * float(normal @ out[:3, 3]) + normal * positions_m[0]
    return out


def scan_stack(cfg: ScanConfig, *, reporter: StepReporter) -> ScanResult:
    """Scan a slice stack: SAR/PNS of the whole stack, then every slice (in parallel), then one volume per method.

    Raises
    ------
    ConfigError, HardwareLimitError, SafetyLimitError
        As :func:`hifield.pipeline.scan`; the refusal is that of the whole stack.
    """
    from hifield import sequence as sq
    from hifield.data import Image
    from hifield.errors import ConfigError
    from hifield.io.exam import commit_exam, discard_staging, stage_exam
    from hifield.pipeline import ScanResult, _version, scanner_and_protocol, score
    from hifield.sequence.protocol import SliceProtocol

    timings: dict[str, float] = {}
    start = time.perf_counter()
    with reporter.step("Building the slice stack and checking it against the scanner"):
        scanner, protocol, field_defaults = scanner_and_protocol(cfg)
        stack_seq = protocol.build(scanner)
        if not isinstance(protocol, SliceProtocol):  # with_slices has refused 3D protocols already
            raise ConfigError(f"a slice stack needs a 2D protocol; {protocol.name} is a 3D slab")
        protocol, stack_seq, sar_adaptation = sq.limit_sar(protocol, stack_seq, scanner, adapt=cfg.adapt)
        sq.raise_for_violations(sq.check(stack_seq, scanner))
        safety = sq.assess(stack_seq, scanner)
    timings["setup"] = round(time.perf_counter() - start, 3)

    positions = list(protocol.slice_positions_m)
    single = protocol.with_changes(n_slices=1)
    configs = [
        dataclasses.replace(
            cfg,
            protocol=single,
            n_slices=None,
            slice_thickness_m=None,
            matrix=None,
            slice_position_m=z,
            write_files=False,
            adapt=False,
        )
        for z in positions
    ]
    mapper = slice_mapper.get()
    workers = slice_workers(len(configs))
    start = time.perf_counter()
    where = "as tasks on the cluster" if mapper is not None else f"{workers} in parallel"
    with reporter.step(f"Scanning {len(positions)} slices ({where})"):
        if mapper is not None:
            results = mapper(_scan_one_slice, configs)
        elif workers == 1:
            results = [_scan_one_slice(c) for c in configs]
        else:
            # forkserver, not fork: forking a process whose torch/OpenMP threads hold locks can hang the child
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
                results = list(pool.map(_scan_one_slice, configs))
    timings["slices"] = round(time.perf_counter() - start, 3)

    truth = np.concatenate([r.truth for r in results], axis=0)
    methods = list(results[0].images)
    images = {m: np.concatenate([r.images[m] for r in results], axis=0) for m in methods}
    recon_images: dict[str, Any] = {}
    for m in methods:
        first = results[0].recon_images[m]
        data = np.concatenate([np.asarray(r.recon_images[m].data) for r in results], axis=-3)
        header = dataclasses.replace(first.header, affine=stack_affine(first.header.affine, positions))
        recon_images[m] = Image(data=data, header=header)
    metrics = []
    for m in methods:
        per_slice = [next(x for x in r.summary["reconstructions"] if x["method"] == m) for r in results]
        metrics.append(
            {
                "method": m,
                "description": per_slice[0]["description"],
                **score(truth, images[m]),
                "time_s": round(sum(x["time_s"] for x in per_slice), 3),
                "per_slice": [
                    {
                        "slice": k,
                        "position_mm": round(positions[k] * 1e3, 3),
                        **{q: x[q] for q in ("nmse", "psnr", "ssim")},
                    }
                    for k, x in enumerate(per_slice)
                ],
            }
        )
    first_summary = results[0].summary
    summary: dict[str, Any] = {
        **{k: v for k, v in first_summary.items() if k not in ("reconstructions", "timings_s", "output_dir")},
        "hifield_version": _version(),
        "protocol": protocol.name,
        "n_slices": len(positions),
        "slice_thickness_mm": round(protocol.slice_thickness_m * 1e3, 4),
        "slice_spacing_mm": round(protocol.slice_spacing_m * 1e3, 4),
        "slice_positions_mm": [round(z * 1e3, 3) for z in positions],
        # the stack plays like the single slice scaled by the stack's duration (interleaved: the same; bSSFP: x slices)
        "scan_time_s": round(
            first_summary["scan_time_s"] * stack_seq.duration_s / max(first_summary["scan_time_full_s"], 1e-12), 4
        ),
        "scan_time_full_s": round(stack_seq.duration_s, 4),
        "sar_w_per_kg": {
            "head_6min": round(safety.sar_head_6min_w_per_kg, 4),
            "head_10s": round(safety.sar_head_10s_w_per_kg, 4),
            "whole_body_6min": round(safety.sar_whole_body_6min_w_per_kg, 4),
            "whole_body_10s": round(safety.sar_whole_body_10s_w_per_kg, 4),
        },
        "pns_percent": round(safety.pns_percent, 3),
        "sar_adaptation": sar_adaptation,
        "field_defaults": field_defaults,
        "reconstructions": metrics,
        "timings_s": timings,
    }
    result = ScanResult(summary=summary, truth=truth, images=images, recon_images=recon_images)
    if cfg.write_files:
        start = time.perf_counter()
        summary["output_dir"] = str(cfg.out.expanduser().resolve())
        staging = stage_exam(cfg.out)
        committed = False
        try:
            with reporter.step("Writing ISMRMRD (per slice), DICOM series, NIfTI volumes, montage and summary"):
                _write_stack_outputs(staging, results, recon_images, truth, images, metrics, summary, protocol, cfg.out)
            result.files = commit_exam(staging, cfg.out)
            committed = True
        finally:
            if not committed:
                discard_staging(staging)
        timings["write"] = round(time.perf_counter() - start, 3)
    return result


def _write_stack_outputs(
    folder: Path,
    results: list[ScanResult],
    recon_images: dict[str, Any],
    truth: NDArray[np.float32],
    images: dict[str, NDArray[np.float32]],
    metrics: list[dict[str, Any]],
    summary: dict[str, Any],
    protocol: Any,
    out: Path,
) -> None:
    """The stack's exam through :func:`hifield.io.exam.write_exam`: raw data per slice, one DICOM series and one
    NIfTI volume per method, the montage with the worst slice's error map, summary.json."""
    from hifield.io.exam import write_exam
    from hifield.report import save_stack_figure

    method = metrics[-1]["method"]
    worst = int(np.argmax([s["nmse"] for s in metrics[-1]["per_slice"]]))
    title = f"{protocol.name} at {summary['field_t']:g} T, {truth.shape[0]} slices, {method}; worst slice {worst}"
    write_exam(
        folder,
        raw=[r.raw for r in results],
        recon_images=recon_images,
        summary=summary,
        series_prefix=f"{protocol.name} R{summary['acceleration']:.1f}",
        figure=lambda path: save_stack_figure(truth, images[method], path, worst_slice=worst, title=title),
        shown_as=out,
    )
