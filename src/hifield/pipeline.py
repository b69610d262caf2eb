"""``scan()``: the whole virtual exam for one protocol — build, check, simulate, undersample, reconstruct, export."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.io.exam import commit_exam, discard_staging, stage_exam, write_exam

RECON_CHOICES: tuple[str, ...] = ("fft", "sense", "cs")
"""Reconstructions ``hifield scan`` runs (``--recon``); ``fft`` is zero-filled root-sum-of-squares."""


PHANTOMS: tuple[str, ...] = ("brain", "shepp-logan", "nist", "nist-t2", "water-fat")
"""Phantoms ``hifield scan --phantom`` offers."""


class StepReporter(Protocol):
    """Receives progress of the pipeline's steps (the CLI shows a spinner and the elapsed time)."""

    def step(self, description: str) -> contextlib.AbstractContextManager[None]:
        """Context manager around one step."""
        ...


class _SilentReporter:
    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class ScanConfig:
    """Options of one virtual exam; the defaults are ``hifield scan`` with no arguments.

    Examples
    --------
    >>> ScanConfig().field, ScanConfig().acceleration, ScanConfig().recons
    ('3T', 4.0, ('fft', 'sense', 'cs'))
    """

    protocol: str = "gre_t1_2d"
    """Protocol name (``hifield protocols``) or path of a protocol YAML file."""
    field: str = "3T"
    """Scanner preset (1.5T, 3T, 5T, 7T) or a scanner YAML file (see ``Scanner.load``)."""
    acceleration: float = 4.0
    """Requested acceleration R (1 = fully sampled)."""
    pattern: str = "variable-density"
    """Phase-encode sampling pattern."""
    n_calibration: int = 24
    """Fully sampled central calibration lines."""
    recons: tuple[str, ...] = RECON_CHOICES
    """Reconstructions to run."""
    matrix: int | None = None
    """In-plane matrix (None keeps the protocol's, 256 by default)."""
    phantom: str = "brain"
    """Digital phantom: ``brain``, ``shepp-logan``, ``nist``, ``nist-t2`` or ``water-fat``."""
    engine: str = "fast"
    """Simulation engine."""
    n_coils: int | None = None
    """Receive channels (None keeps the preset's)."""
    seed: int = 0
    """Seed of the sampling pattern and the noise."""
    out: Path = Path("hifield_out")
    """Output folder (a string is accepted and converted)."""
    write_files: bool = True
    """Write raw data, DICOM, NIfTI, figure and summary (False: compute only)."""

    def __post_init__(self) -> None:
        if not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        if isinstance(self.recons, str):
            object.__setattr__(self, "recons", tuple(r.strip() for r in self.recons.split(",")))

    def validated(self) -> ScanConfig:
        """Check every option and return self; raises a one-line ConfigError naming the bad option."""
        if (
            not isinstance(self.acceleration, (int, float))
            or not np.isfinite(self.acceleration)
            or self.acceleration < 1
        ):
            raise ConfigError(f"acceleration must be a number >= 1; got {self.acceleration!r}")
        if self.matrix is not None and (not isinstance(self.matrix, int) or self.matrix < 16 or self.matrix > 1024):
            raise ConfigError(f"matrix must be an integer between 16 and 1024; got {self.matrix!r}")
        unknown = [r for r in self.recons if r not in RECON_CHOICES]
        if unknown or not self.recons:
            raise ConfigError(
                f"unknown reconstruction {', '.join(unknown) or '(none)'}; choose from {', '.join(RECON_CHOICES)}"
            )
        if self.phantom not in PHANTOMS:
            raise ConfigError(f"unknown phantom {self.phantom!r}; choose one of {', '.join(PHANTOMS)}")
        if self.n_calibration < 0:
            raise ConfigError(f"calibration lines must be >= 0; got {self.n_calibration}")
        return self


@dataclass
class ScanResult:
    """What a scan produced: the summary (as in summary.json), images and the paths written."""

    summary: dict[str, Any]
    """Machine-readable summary (the content of summary.json)."""
    truth: NDArray[np.float32]
    """Fully sampled, noise-free reference magnitude, shape (slices, y, x)."""
    images: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    """Magnitude reconstructions by method, shape (slices, y, x)."""
    files: dict[str, str] = field(default_factory=dict)
    """Output files by kind."""


def make_scan_phantom(
    kind: str, *, b0_t: float, matrix: int, fov_m: float, n_slices: int = 1, slab_thickness_m: float | None = None
) -> Any:
    """The phantom ``kind`` (see :data:`PHANTOMS`) on a grid twice as fine as ``matrix`` over ``fov_m`` [m].

    With ``n_slices > 1`` (a 3D protocol) the brain is a volume of ``n_slices`` planes over ``slab_thickness_m``,
    the partition grid of the slab.
    """
    if kind not in PHANTOMS:
        raise ConfigError(f"unknown phantom {kind!r}; choose one of {', '.join(PHANTOMS)}")
    from hifield import phantom as ph

    if n_slices > 1:
        if kind != "brain" or slab_thickness_m is None:
            raise ConfigError(f"3D protocols run on the brain phantom (a volume); got --phantom {kind}")
        return ph.brain_phantom(
            b0_t=b0_t,
            matrix=matrix,
            fov_m=fov_m,
            oversampling=2,
            n_slices=n_slices,
            slice_thickness_m=slab_thickness_m / n_slices,
        )
    # Every phantom is made on a grid twice as fine as the reconstruction (no inverse crime).
    if kind == "brain":
        return ph.brain_phantom(b0_t=b0_t, matrix=matrix, fov_m=fov_m, oversampling=2)
    if kind == "shepp-logan":
        return ph.shepp_logan_phantom(b0_t=b0_t, matrix=matrix * 2, fov_m=fov_m)
    if kind in ("nist", "nist-t2"):
        array = "t2" if kind == "nist-t2" else "t1"
        return ph.nist_phantom(b0_t=b0_t, array=array, matrix=matrix * 2, fov_m=fov_m)
    return ph.water_fat_phantom(b0_t=b0_t, matrix=matrix * 2, fov_m=fov_m)


def phantom_for_protocol(kind: str, protocol: Any, *, b0_t: float) -> Any:
    """:func:`make_scan_phantom` on the protocol's grid: a slice for 2D protocols, the slab's partitions for 3D."""
    n_partitions = int(getattr(protocol, "n_partitions", 1) or 1)
    return make_scan_phantom(
        kind,
        b0_t=b0_t,
        matrix=int(protocol.matrix),
        fov_m=float(protocol.fov_m),
        n_slices=n_partitions,
        slab_thickness_m=getattr(protocol, "slab_thickness_m", None),
    )


def load_protocol_spec(spec: str) -> Any:
    """A protocol by name (``hifield protocols``) or from a YAML file path."""
    from hifield import sequence as sq

    if spec.endswith((".yaml", ".yml")) or os.path.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"protocol file {spec!r} does not exist; give a protocol name or an existing YAML file")
        return sq.load_protocol(path)
    return sq.get_protocol(spec)


CALIBRATION_PRESCAN_BELOW = 16
"""A non-Cartesian scan whose k-space centre is Nyquist-covered over fewer cells than this gets its coil maps from a
separate calibration prescan (as scanners do before accelerated spiral scans)."""
CALIBRATION_PRESCAN_LINES = 24
"""Central phase-encode lines of the calibration prescan."""


def coil_calibration_prescan(
    phantom: Any, protocol: Any, scanner: Any, *, engine: str = "fast", seed: int = 0
) -> tuple[Any, float]:
    """ESPIRiT coil maps from a short Cartesian calibration prescan of the same slice, and the prescan's duration [s].

    The prescan is a low-flip, short-TR 2D spoiled GRE of the same field of view, matrix and slice that plays only
    :data:`CALIBRATION_PRESCAN_LINES` central phase-encode lines (about 0.3 s at 3 T), with thermal noise.
    """
    from hifield.recon import estimate_coil_maps
    from hifield.sequence import GreProtocol
    from hifield.sim import simulate

    n = int(protocol.matrix)
    lines = list(range(n // 2 - CALIBRATION_PRESCAN_LINES // 2, n // 2 + CALIBRATION_PRESCAN_LINES // 2))
    calibration = GreProtocol(
        name="coil_calibration",
        fov_m=float(protocol.fov_m),
        matrix=n,
        slice_thickness_m=float(getattr(protocol, "slice_thickness_m", 0.005)),
        tr_s=0.012,
        te_s=0.005,
        flip_angle_rad=float(np.radians(10.0)),
        readout_bandwidth_hz_per_pixel=400.0,
    ).build(scanner, phase_encode_lines=lines)
    raw = simulate(phantom, calibration, scanner, engine=engine, noise=True, seed=seed + 1)
    region = np.zeros((1, n, 1), dtype=bool)
    region[0, lines, 0] = True
    maps = estimate_coil_maps(raw.replace(calibration=region), method="espirit")
    return maps, float(calibration.duration_s)


def noncartesian_subset(n_readouts: int, acceleration: float, *, golden: bool) -> list[int]:
    """Readouts (spokes, interleaves) played at ``acceleration``: the first ones of a golden-angle order (each prefix
    covers k-space almost uniformly), else evenly spaced indices.

    Examples
    --------
    >>> noncartesian_subset(16, 4.0, golden=False)
    [0, 4, 8, 12]
    >>> len(noncartesian_subset(402, 4.0, golden=True))
    100
    """
    keep = max(1, min(n_readouts, round(n_readouts / acceleration)))
    if golden:
        return list(range(keep))
    return sorted({int(i) for i in np.floor(np.arange(keep) * n_readouts / keep)})


def scan(config: ScanConfig | None = None, *, reporter: StepReporter | None = None) -> ScanResult:
    """Run one virtual exam end to end.

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

    Raises
    ------
    ConfigError
        For bad options (exit code 1 in the CLI).
    HardwareLimitError, SafetyLimitError
        When the sequence is refused (exit code 2).
    """
    from hifield import sequence as sq
    from hifield.data import CoilMaps
    from hifield.hardware import Scanner
    from hifield.metrics import nmse, psnr, ssim
    from hifield.recon import estimate_coil_maps, reconstruct
    from hifield.recon.noncartesian import nyquist_box
    from hifield.sampling import make_pattern, with_calibration
    from hifield.sim import simulate
    from hifield.units import rad_to_deg

    cfg = (config or ScanConfig()).validated()
    rep: StepReporter = reporter or _SilentReporter()
    timings: dict[str, float] = {}

    @contextlib.contextmanager
    def timed(key: str, description: str) -> Iterator[None]:
        start = time.perf_counter()
        with rep.step(description):
            yield
        timings[key] = round(time.perf_counter() - start, 3)

    staging = stage_exam(cfg.out) if cfg.write_files else None
    try:
        with timed("setup", "Building protocol and checking it against the scanner"):
            scanner = Scanner.resolve(cfg.field)
            if cfg.n_coils is not None:
                scanner = scanner.with_receive_coils(cfg.n_coils)
            protocol = load_protocol_spec(cfg.protocol)
            if cfg.matrix is not None:
                protocol = protocol.with_changes(matrix=cfg.matrix)
            n = int(protocol.matrix)
            full_seq = protocol.build(scanner)
            # 3D protocols are accelerated along the partitions (the outer loop: fewer inversions for MPRAGE)
            n_partitions = int(getattr(protocol, "n_partitions", 0) or 0) if full_seq.partition_lines is not None else 0
            if full_seq.trajectory == "cartesian":
                n_pe = n_partitions or n
                n_calibration = min(cfg.n_calibration, n_pe // 4) if n_partitions else cfg.n_calibration
                pattern = make_pattern(
                    cfg.pattern, n_pe, acceleration=cfg.acceleration, n_calibration=n_calibration, seed=cfg.seed
                )
                readouts: list[int] = [int(i) for i in pattern.order]
                sampling = {
                    "pattern": pattern.name,
                    "acceleration": round(pattern.acceleration, 4),
                    "calibration_lines": pattern.calibration_lines,
                    "lines_acquired": pattern.n_acquired,
                }
            else:  # radial spokes / spiral interleaves: play fewer of them (no calibration region)
                pattern = None
                readouts = noncartesian_subset(
                    full_seq.n_lines, cfg.acceleration, golden=full_seq.trajectory == "radial"
                )
                sampling = {
                    "pattern": f"{full_seq.trajectory} subset",
                    "acceleration": round(full_seq.n_lines / len(readouts), 4),
                    "calibration_lines": 0,
                    "lines_acquired": len(readouts),
                }
            if n_partitions:
                accel_seq = protocol.build(scanner, partition_lines=readouts)
            else:
                accel_seq = protocol.build(scanner, phase_encode_lines=readouts)
            for built in (full_seq, accel_seq):
                sq.raise_for_violations(sq.check(built, scanner))

        with timed("phantom", f"Making the {cfg.phantom} phantom at {scanner.b0_t:g} T"):
            phantom = phantom_for_protocol(cfg.phantom, protocol, b0_t=scanner.b0_t)

        with timed("simulate", f"Simulating {scanner.receive.n_coils}-coil k-space ({cfg.engine} engine)"):
            reference = simulate(phantom, full_seq, scanner, engine=cfg.engine, noise=False, seed=cfg.seed)
            raw = simulate(phantom, accel_seq, scanner, engine=cfg.engine, noise=True, seed=cfg.seed)
            if pattern is not None:
                raw = with_calibration(raw, pattern, axis="k2" if n_partitions else "k1")
            if pattern is not None:
                truth_image = reconstruct(reference, method="fft")
            else:
                # gridding of even a fully sampled spiral/radial scan keeps its aliasing swirls: the truth is the
                # noise-free full scan by CG-SENSE with the array's true sensitivities (normalised like RSS)
                true_maps = scanner.receive.sensitivities(reference.header.affine_array(), reference.header.matrix)
                true_maps = true_maps / np.maximum(np.sqrt(np.sum(np.abs(true_maps) ** 2, axis=0)), 1e-12)
                truth_image = reconstruct(
                    reference, method="sense", coil_maps=CoilMaps(maps=true_maps[np.newaxis].astype(np.complex64))
                )
            truth = np.abs(truth_image.data).reshape(-1, n, n).astype(np.float32)

        images: dict[str, NDArray[np.float32]] = {}
        recon_images: dict[str, Any] = {}
        metrics: list[dict[str, Any]] = []
        coil_maps = None
        for method in cfg.recons:
            label = {"fft": "zero-filled FFT (RSS)", "sense": "CG-SENSE", "cs": "L1-wavelet compressed sensing"}[method]
            with timed(f"recon_{method}", f"Reconstructing: {label}"):
                if method in ("sense", "cs") and coil_maps is None:
                    if pattern is None and nyquist_box(raw) < CALIBRATION_PRESCAN_BELOW:
                        coil_maps, prescan_s = coil_calibration_prescan(
                            phantom, protocol, scanner, engine=cfg.engine, seed=cfg.seed
                        )
                        sampling["calibration_prescan_s"] = round(prescan_s, 4)
                    else:
                        coil_maps = estimate_coil_maps(raw, method="espirit")
                start = time.perf_counter()
                image = reconstruct(raw, method=method, coil_maps=coil_maps if method != "fft" else None)
                elapsed = time.perf_counter() - start
            magnitude = np.abs(image.data).reshape(-1, n, n).astype(np.float32)
            images[method] = magnitude
            recon_images[method] = image
            metrics.append(
                {
                    "method": method,
                    "description": label,
                    "nmse": float(nmse(truth, magnitude)),
                    "psnr": float(psnr(truth, magnitude)),
                    "ssim": float(ssim(truth, magnitude)),
                    "time_s": round(elapsed, 3),
                }
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
            "matrix": [n, n],
            "fov_mm": [round(protocol.fov_m * 1e3, 3)] * 2,
            "te_ms": round(header.te_s * 1e3, 4),
            "tr_ms": round(header.tr_s * 1e3, 4),
            "flip_angle_deg": round(rad_to_deg(header.flip_angle_rad), 3),
            "pattern": sampling["pattern"],
            "acceleration_requested": cfg.acceleration,
            "acceleration": sampling["acceleration"],
            "calibration_lines": sampling["calibration_lines"],
            "lines_acquired": sampling["lines_acquired"],
            "calibration_prescan_s": sampling.get("calibration_prescan_s"),
            "scan_time_s": round(accel_seq.duration_s, 4),
            "scan_time_full_s": round(full_seq.duration_s, 4),
            "seed": cfg.seed,
            "reconstructions": metrics,
            "timings_s": timings,
        }
        result = ScanResult(summary=summary, truth=truth, images=images)
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
    "PHANTOMS",
    "RECON_CHOICES",
    "ScanConfig",
    "ScanResult",
    "StepReporter",
    "load_protocol_spec",
    "make_scan_phantom",
    "phantom_for_protocol",
    "scan",
]
