"""``scan()``: the whole virtual exam for one protocol — build, check, simulate, reconstruct, score, write."""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield._interrupt import raise_if_interrupted
from hifield.errors import ConfigError
from hifield.io.exam import commit_exam, discard_staging, stage_exam, write_exam
from hifield.recon.registry import reconstructor
from hifield.scan_config import (
    DEFAULT_RECONS,
    PHANTOMS,
    RECON_CHOICES,
    ScanConfig,
    ScanResult,
    SilentReporter,
    StepReporter,
)

if TYPE_CHECKING:
    from hifield.phantom import Phantom
    from hifield.sequence import ImagingProtocol


def phantom_for_protocol(
    kind: str, protocol: ImagingProtocol, *, b0_t: float, slice_position_m: float | None = None
) -> Phantom:
    """:func:`~hifield.phantom.make_phantom` on the protocol's grid, twice as fine as its matrix (no inverse crime):
    a slice for 2D protocols, the slab's partitions for 3D; with ``slice_position_m``, the brain's slice there (one
    slice of a stack; the test objects are the same at every position)."""
    from hifield.phantom import make_phantom

    if slice_position_m is not None and kind == "brain":
        from hifield.phantom.brain import brain_phantom

        return brain_phantom(
            b0_t=b0_t,
            matrix=protocol.matrix,
            fov_m=protocol.fov_m,
            oversampling=2,
            slice_position_m=slice_position_m,
            slice_thickness_m=protocol.slice_thickness_m,
        )

    return make_phantom(
        kind,
        b0_t=b0_t,
        matrix=protocol.matrix,
        fov_m=protocol.fov_m,
        oversampling=2,
        n_slices=protocol.n_partitions,
        slab_thickness_m=protocol.slab_thickness_m,
    )


def load_protocol_spec(spec: Any) -> Any:
    """A protocol by name (``hifield protocols``), from a YAML file path, or a protocol object as given."""
    from hifield import sequence as sq

    if isinstance(spec, sq.ImagingProtocol):
        return spec
    if spec.endswith((".yaml", ".yml")) or os.path.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"protocol file {spec!r} does not exist; give a protocol name or an existing YAML file")
        return sq.load_protocol(path)
    return sq.get_protocol(spec)


WHOLE_BRAIN_SLICES = 24
"""Slices of ``hifield scan``'s default exam: 24 axial slices of 5 mm cover the brain (120 mm)."""


def default_slices(protocol: Any, phantom: str) -> int | None:
    """The slice count of ``hifield scan`` when ``--slices`` is not given: the whole-brain stack
    (:data:`WHOLE_BRAIN_SLICES`) for a 2D protocol on the brain phantom, else None (the protocol's own, one slice).

    The other phantoms are 2D objects without anatomy along the slice axis, and 3D protocols cover a slab.

    Examples
    --------
    >>> default_slices("gre_t1_2d", "brain"), default_slices("mprage_3d", "brain"), default_slices("gre_t1_2d", "nist")
    (24, None, None)
    """
    from hifield.sequence.protocol import SliceProtocol

    if phantom.strip().lower() != "brain" or not isinstance(load_protocol_spec(protocol), SliceProtocol):
        return None
    return WHOLE_BRAIN_SLICES


def field_tuned_protocol(spec: Any, b0_t: float) -> tuple[Any, list[dict[str, Any]]]:
    """:func:`load_protocol_spec`, with a library protocol's per-field defaults at ``b0_t`` (the TI that nulls its
    tissue: FLAIR CSF, STIR fat; the T1 GRE flip by white matter's Ernst angle; the bandwidth that keeps the fat
    shift at or below 1.5 px) and a record of each; a protocol file is used as written."""
    from hifield.phantom.tissues import tissue_properties
    from hifield.sequence.field_tuning import REFERENCE_FIELD_T, tune_for_field

    protocol = load_protocol_spec(spec)
    if not isinstance(spec, str) or spec.endswith((".yaml", ".yml")) or os.path.sep in spec:
        return protocol, []

    def t1_of(tissue: str) -> tuple[float, str]:
        props = tissue_properties(tissue, b0_t)
        return props.t1_s, props.source

    def t1_at_reference(tissue: str) -> tuple[float, str]:
        props = tissue_properties(tissue, REFERENCE_FIELD_T)
        return props.t1_s, props.source

    return tune_for_field(protocol, t1_of, b0_t=b0_t, t1_at_reference=t1_at_reference)


def with_slices(protocol: Any, cfg: ScanConfig) -> Any:
    """The protocol with the config's slice count and thickness (2D protocols only)."""
    from hifield.sequence.protocol import SliceProtocol

    changes: dict[str, Any] = {}
    if cfg.n_slices is not None:
        changes["n_slices"] = cfg.n_slices
    if cfg.slice_thickness_m is not None:
        changes["slice_thickness_m"] = cfg.slice_thickness_m
    if not changes:
        return protocol
    if not isinstance(protocol, SliceProtocol):
        raise ConfigError(f"--slices and --slice-thickness apply to 2D protocols; {protocol.name} is a 3D slab")
    return protocol.with_changes(**changes)


@dataclass(frozen=True)
class Exam:
    """What an exam plays: the scanner, the protocol and its acquisition (reference and accelerated sequence)."""

    scanner: Any
    """The :class:`hifield.hardware.Scanner` (with the requested receive array)."""
    protocol: Any
    """The protocol (with the requested matrix)."""
    acquisition: Any
    """The :class:`hifield.sequence.Acquisition`; ``acquisition.accelerated.pattern`` is the sampling pattern."""
    field_defaults: list[dict[str, Any]] = field(default_factory=list)
    """The library protocol's per-field defaults applied at this field (e.g. the TI that nulls CSF), with sources."""
    sar_adaptation: dict[str, Any] | None = None
    """The change ``--adapt`` made to meet the SAR limit, or None."""


def scanner_and_protocol(config: ScanConfig) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The scanner (with the requested receive array) and the protocol of ``config``: the library protocol's
    per-field defaults at that field, then the requested slices and matrix; also the per-field defaults applied."""
    from hifield.hardware import Scanner

    scanner = Scanner.resolve(config.field)
    if config.n_coils is not None:
        scanner = scanner.with_receive_coils(config.n_coils)
    protocol, field_defaults = field_tuned_protocol(config.protocol, scanner.b0_t)
    protocol = with_slices(protocol, config)
    if config.matrix is not None:
        protocol = protocol.with_changes(matrix=config.matrix)
    return scanner, protocol, field_defaults


def build_exam(config: ScanConfig) -> Exam:
    """Build step: the scanner, the protocol and its sequences for the sampling request of ``config``.

    The acceleration goes from here to :func:`hifield.sequence.plan_acquisition`, which makes the pattern with
    :func:`hifield.sampling.make_pattern` and builds the sequence that carries it.
    """
    from hifield import sequence as sq

    scanner, protocol, field_defaults = scanner_and_protocol(config)
    # SAR of the whole sequence: refused with what would pass, or (--adapt) changed as little as needed
    full = protocol.build(scanner)
    protocol, full, sar_adaptation = sq.limit_sar(protocol, full, scanner, adapt=config.adapt)
    acquisition = sq.plan_acquisition(
        protocol,
        scanner,
        pattern=config.pattern,
        acceleration=config.acceleration,
        n_calibration=config.n_calibration,
        seed=config.seed,
        full=full,
    )
    return Exam(
        scanner=scanner,
        protocol=protocol,
        acquisition=acquisition,
        field_defaults=field_defaults,
        sar_adaptation=sar_adaptation,
    )


def check_exam(exam: Exam) -> None:
    """Check step: refuse the exam if either sequence breaks a hardware or safety limit of the scanner."""
    from hifield import sequence as sq

    for built in (exam.acquisition.full, exam.acquisition.accelerated):
        sq.raise_for_violations(sq.check(built, exam.scanner))


_EXAM_CACHE: dict[Any, Exam] = {}
"""The last exam built and checked by :func:`exam_for`, by its config without the slice position."""


def exam_for(config: ScanConfig, *, reuse: bool = False) -> Exam:
    """Build and check step: :func:`build_exam` then :func:`check_exam`.

    With ``reuse`` the last exam built for the same config (the slice position aside: it moves the phantom, not
    the sequence) is returned instead of building and checking it again. The slices of a stack each scan with a
    config that differs only in ``slice_position_m``, so a worker process builds the stack's slice sequence once.
    """
    import dataclasses

    key = dataclasses.replace(config, slice_position_m=None)
    if reuse and key in _EXAM_CACHE:
        return _EXAM_CACHE[key]
    exam = build_exam(config)
    check_exam(exam)
    _EXAM_CACHE.clear()
    if reuse:
        _EXAM_CACHE[key] = exam
    return exam


def exam_phantom(config: ScanConfig, exam: Exam) -> tuple[Phantom, dict[str, Any]]:
    """The phantom ``config`` scans with ``exam``: :func:`phantom_for_protocol` at the exam's field and slice
    position, with the configured field effects (B1+, B0) applied; also the report of what they applied."""
    from hifield.sim.field_effects import apply_field_effects

    phantom = phantom_for_protocol(
        config.phantom, exam.protocol, b0_t=exam.scanner.b0_t, slice_position_m=config.slice_position_m
    )
    return apply_field_effects(phantom, config.field_effects, head=config.phantom == "brain")


def simulate_exam(config: ScanConfig, exam: Exam, phantom: Phantom, *, noise: bool = True) -> tuple[Any, Any]:
    """The exam's fully sampled reference (noise-free) and its accelerated acquisition (with thermal noise unless
    ``noise`` is false), both :class:`~hifield.io.RawData` seeded by ``config.seed``; the ``fast`` engine encodes
    the two together. ``noise=False`` gives what the sampling alone determines, e.g. for an encoding limit."""
    from hifield.sim import simulate_many

    reference, raw = simulate_many(
        phantom,
        [exam.acquisition.full, exam.acquisition.accelerated],
        exam.scanner,
        engine=config.engine,
        noise=[False, noise],
        seeds=[config.seed, config.seed],
    )
    return reference, raw


def sampling_summary(acquisition: Any) -> dict[str, Any]:
    """The summary's sampling entries, read from the pattern the accelerated sequence carries."""
    pattern = acquisition.pattern
    return {
        "pattern": pattern.name,
        "acceleration": round(pattern.acceleration, 4),
        "calibration_lines_requested": acquisition.n_calibration_requested,
        "calibration_lines": pattern.calibration_lines,
        "lines_acquired": pattern.n_acquired,
    }


def reference_image(reference: Any, scanner: Any) -> Any:
    """The truth image of the noise-free fully sampled scan: FFT (Cartesian), else CG-SENSE with the true maps.

    Gridding of even a fully sampled spiral or radial scan keeps its aliasing swirls, so the non-Cartesian truth
    is CG-SENSE with the array's true sensitivities (normalised like root-sum-of-squares).
    """
    from hifield.data import CoilMaps
    from hifield.recon import reconstruct

    if reference.trajectory is None:
        return reconstruct(reference, method="fft")
    true_maps = scanner.receive.sensitivities(reference.header.affine_array(), reference.header.matrix)
    true_maps = true_maps / np.maximum(np.sqrt(np.sum(np.abs(true_maps) ** 2, axis=0)), 1e-12)
    return reconstruct(reference, method="sense", coil_maps=CoilMaps(maps=true_maps[np.newaxis].astype(np.complex64)))


def score(truth: NDArray[np.float32], magnitude: NDArray[np.float32]) -> dict[str, float]:
    """Score step: NMSE, PSNR [dB] and SSIM of ``magnitude`` against ``truth``, as the fastMRI evaluation does."""
    from hifield.metrics import nmse, psnr, ssim

    return {
        "nmse": float(nmse(truth, magnitude)),
        "psnr": float(psnr(truth, magnitude)),
        "ssim": float(ssim(truth, magnitude)),
    }


@dataclass(frozen=True)
class MethodJob:
    """One reconstruction of a scan's raw data: what :func:`reconstruct_job` needs, small enough to ship."""

    raw: Any
    """The accelerated :class:`~hifield.data.RawData`."""
    method: str
    """A registered reconstructor name."""
    coil_maps: Any = None
    """:class:`~hifield.data.CoilMaps` for the methods that use them (estimated once per scan), else None."""
    device: str = "cpu"
    """Where the iterative methods compute (:mod:`hifield.recon.device`)."""


def reconstruct_job(job: MethodJob) -> tuple[Any, float]:
    """Reconstruct ``job`` and return ``(image, seconds)``: the unit :data:`method_mapper` maps."""
    from hifield.recon import reconstruct

    start = time.perf_counter()
    image = reconstruct(job.raw, method=job.method, coil_maps=job.coil_maps, device=job.device)
    return image, time.perf_counter() - start


MethodMapper = Callable[[Callable[[MethodJob], tuple[Any, float]], list[MethodJob]], list[tuple[Any, float]]]
"""Maps :func:`reconstruct_job` over a scan's methods and returns their results in order (like ``map``)."""

method_mapper: contextvars.ContextVar[MethodMapper | None] = contextvars.ContextVar("method_mapper", default=None)
"""How a scan's reconstructions run. None: one after another in this process; a study's Dask task sets it to run
each method as a task of its own on the one simulated raw dataset (:mod:`hifield.distributed`)."""


def scan(
    config: ScanConfig | None = None, *, reporter: StepReporter | None = None, reuse_exam: bool = False
) -> ScanResult:
    """Run one virtual exam end to end: build -> check -> simulate -> reconstruct -> score -> write.

    Builds the protocol's pypulseq sequence for the scanner, refuses it if it breaks a hardware or safety limit,
    simulates the fully sampled reference and the accelerated acquisition (only the sampled lines are played, so the
    scan time falls with R), reconstructs with each requested method, scores them against the reference (NMSE, PSNR,
    SSIM as fastMRI computes them) and writes ISMRMRD raw data, DICOM series, NIfTI, a PNG figure and summary.json.

    Parameters
    ----------
    config
        Scan options (defaults: the embedded 3 T T1-weighted GRE brain exam at R = 4).
    reporter
        Progress reporter; silent by default.
    reuse_exam
        Reuse the sequences built and checked for the previous call with the same config but another slice
        position (the slices of a stack; see :func:`exam_for`).

    Raises
    ------
    ConfigError
        For bad options (exit code 1 in the CLI).
    HardwareLimitError, SafetyLimitError
        When the sequence is refused (exit code 2).
    """
    from hifield import sequence as sq
    from hifield.recon import scan_coil_maps
    from hifield.sim import simulate
    from hifield.units import rad_to_deg

    cfg = (config or ScanConfig()).validated()
    rep: StepReporter = reporter or SilentReporter()
    if (cfg.n_slices or 1) > 1:
        from hifield.pipeline_stack import scan_stack

        return scan_stack(cfg, reporter=rep)
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(key: str, description: str) -> Iterator[None]:
        raise_if_interrupted()  # a signal whose exception was lost inside a C callback stops the scan here
        start = time.perf_counter()
        with rep.step(description):
            yield
        timings[key] = round(time.perf_counter() - start, 3)

    staging = stage_exam(cfg.out) if cfg.write_files else None
    try:
        with timed("setup", "Building protocol and checking it against the scanner"):
            exam = exam_for(cfg, reuse=reuse_exam)
        scanner, protocol, acquisition = exam.scanner, exam.protocol, exam.acquisition
        n = int(protocol.matrix)
        sampling = sampling_summary(acquisition)

        with timed("phantom", f"Making the {cfg.phantom} phantom at {scanner.b0_t:g} T"):
            phantom, field_report = exam_phantom(cfg, exam)

        with timed("simulate", f"Simulating {scanner.receive.n_coils}-coil k-space ({cfg.engine} engine)"):
            reference, raw = simulate_exam(cfg, exam, phantom)  # the fast engine encodes the two together
            truth = np.abs(reference_image(reference, scanner).data).reshape(-1, n, n).astype(np.float32)

        def prescan() -> Any:
            built = sq.calibration_prescan(protocol, scanner)
            sampling["calibration_prescan_s"] = round(float(built.duration_s), 4)
            return simulate(phantom, built, scanner, engine=cfg.engine, noise=True, seed=cfg.seed + 1)

        images: dict[str, NDArray[np.float32]] = {}
        recon_images: dict[str, Any] = {}
        metrics: list[dict[str, Any]] = []
        coil_maps = None
        solved: dict[str, tuple[Any, float]] = {}
        mapper = method_mapper.get()
        if mapper is not None and len(cfg.recons) > 1:  # a study's task: the methods run as tasks of their own
            with timed("recon", f"Reconstructing: {len(cfg.recons)} methods as tasks on the cluster"):
                if any(reconstructor(m).needs_coil_maps for m in cfg.recons):
                    coil_maps, _ = scan_coil_maps(raw, prescan=prescan)  # once, shared by every method's task
                jobs = [
                    MethodJob(raw, m, coil_maps if reconstructor(m).needs_coil_maps else None, cfg.device)
                    for m in cfg.recons
                ]
                solved = dict(zip(cfg.recons, mapper(reconstruct_job, jobs), strict=True))
        for method in cfg.recons:
            spec = reconstructor(method)
            label = spec.label
            if method not in solved:
                with timed(f"recon_{method}", f"Reconstructing: {label}"):
                    if spec.needs_coil_maps and coil_maps is None:
                        coil_maps, _ = scan_coil_maps(raw, prescan=prescan)
                    solved[method] = reconstruct_job(
                        MethodJob(raw, method, coil_maps if spec.needs_coil_maps else None, cfg.device)
                    )
            image, elapsed = solved[method]
            magnitude = np.abs(image.data).reshape(-1, n, n).astype(np.float32)
            images[method] = magnitude
            recon_images[method] = image
            metrics.append(
                {"method": method, "description": label, **score(truth, magnitude), "time_s": round(elapsed, 3)}
            )

        header = raw.header
        summary: dict[str, Any] = {
            "hifield_version": _version(),
            "protocol": protocol.name,
            "scanner": scanner.name,
            "field_t": scanner.b0_t,
            "n_coils": scanner.receive.n_coils,
            "phantom": cfg.phantom,
            "engine": cfg.engine,
            "device": cfg.device,
            "matrix": [n, n],
            "fov_mm": [round(protocol.fov_m * 1e3, 3)] * 2,
            "te_ms": round(header.te_s * 1e3, 4),
            "tr_ms": round(header.tr_s * 1e3, 4),
            "flip_angle_deg": round(rad_to_deg(header.flip_angle_rad), 3),
            "pattern": sampling["pattern"],
            "acceleration_requested": cfg.acceleration,
            "acceleration": sampling["acceleration"],
            "calibration_lines_requested": sampling["calibration_lines_requested"],
            "calibration_lines": sampling["calibration_lines"],
            "lines_acquired": sampling["lines_acquired"],
            "calibration_prescan_s": sampling.get("calibration_prescan_s"),
            "scan_time_s": round(acquisition.accelerated.duration_s, 4),
            "scan_time_full_s": round(acquisition.full.duration_s, 4),
            "seed": cfg.seed,
            "sar_adaptation": exam.sar_adaptation,
            "field_defaults": exam.field_defaults,
            "field_effects": field_report,
            "b1_cov": field_report.get("b1_cov"),
            "b0_residual_range_hz": field_report.get("b0_residual_range_hz"),
            "reconstructions": metrics,
            "timings_s": timings,
        }
        result = ScanResult(summary=summary, truth=truth, images=images, raw=raw, recon_images=recon_images)
        if staging is not None:
            with timed("write", "Writing ISMRMRD, DICOM, NIfTI, figure and summary"):
                _write_outputs(staging, raw, recon_images, truth, images, metrics, summary, protocol, cfg.out)
            result.files = commit_exam(staging, cfg.out)
            staging = None
            summary["output_dir"] = str(cfg.out.expanduser().resolve())
        summary["timings_s"] = timings
        return result
    finally:
        discard_staging(staging)


def _version() -> str:
    from hifield import __version__

    return __version__


def _write_outputs(
    folder: Path,
    raw: Any,
    recon_images: dict[str, Any],
    truth: NDArray[np.float32],
    images: dict[str, NDArray[np.float32]],
    metrics: list[dict[str, Any]],
    summary: dict[str, Any],
    protocol: Any,
    out: Path,
) -> None:
    from hifield.report import save_comparison_figure

    by_method = {m["method"]: m for m in metrics}
    centre = truth.shape[0] // 2  # the central slice of a volume

    def figure(path: Path) -> None:
        save_comparison_figure(
            truth[centre],
            {method: image[centre] for method, image in images.items()},
            path,
            title=(
                f"{protocol.name} at {summary['field_t']:g} T, R = {summary['acceleration']:.2f}, "
                f"scan {summary['scan_time_s']:.1f} s (full {summary['scan_time_full_s']:.1f} s)"
            ),
            metrics={k: {"nmse": v["nmse"], "psnr": v["psnr"], "ssim": v["ssim"]} for k, v in by_method.items()},
        )
        for method, image in recon_images.items():  # a learned method's uncertainty maps, in a figure of their own
            if image.extras:
                from hifield.report import save_uncertainty_figure

                shape = image.data.shape[-2:]
                save_uncertainty_figure(
                    np.asarray(image.data).reshape(-1, *shape)[centre],
                    {k: np.asarray(v).reshape(-1, *shape)[centre] for k, v in image.extras.items()},
                    path.with_name(f"uncertainty_{method}.png"),
                    title=f"{method}: {image.header.description.split(',')[0]}",
                )

    write_exam(
        folder,
        raw=raw,
        recon_images=recon_images,
        summary=summary,
        series_prefix=f"{protocol.name} R{raw.header.acceleration:.1f}",
        figure=figure,
        shown_as=out,
    )


__all__ = [
    "DEFAULT_RECONS",
    "PHANTOMS",
    "RECON_CHOICES",
    "Exam",
    "ScanConfig",
    "ScanResult",
    "StepReporter",
    "build_exam",
    "check_exam",
    "exam_phantom",
    "load_protocol_spec",
    "phantom_for_protocol",
    "reference_image",
    "sampling_summary",
    "scan",
    "scanner_and_protocol",
    "score",
    "simulate_exam",
]
