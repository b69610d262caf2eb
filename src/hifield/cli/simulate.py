"""``hifield simulate``: simulate a protocol on a phantom and write ISMRMRD raw data."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hifield.cli._common import handle_errors, print_json
from hifield.cli.options import (
    b0_shim_option,
    coils_option,
    ideal_option,
    out_file_option,
    parse_field,
    seed_option,
    shim_option,
)
from hifield.cli.scan import PATTERN_HELP, parse_accel, parse_matrix


@handle_errors
def simulate_command(
    out: Path = out_file_option(..., "Output ISMRMRD file (.h5)."),
    protocol: str = typer.Option("gre_t1_2d", "--protocol", help="Protocol name or YAML file."),
    seq_file: Path | None = typer.Option(
        None, "--seq", help="Simulate a Pulseq .seq file (v1.4/1.5) instead of a protocol."
    ),
    field: str = typer.Option("3T", "--field", help="Scanner preset (1.5T, 3T, 5T, 7T) or scanner YAML file."),
    phantom: str = typer.Option("brain", "--phantom", help="brain, shepp-logan, nist, nist-t2 or water-fat."),
    matrix: str | None = typer.Option(None, "--matrix", help="In-plane matrix N."),
    engine: str = typer.Option("fast", "--engine", help="Simulation engine."),
    accel: str = typer.Option("1", "--accel", help="Prospective acceleration R (1 = fully sampled)."),
    pattern: str = typer.Option("variable-density", "--pattern", help=PATTERN_HELP),
    calib: int = typer.Option(24, "--calib", help="Fully sampled central calibration lines."),
    coils: int | None = coils_option("Receive channels, 1-256 (default: the preset's array)."),
    seed: int = seed_option("Seed of the pattern and the noise."),
    noise: bool = typer.Option(True, "--noise/--no-noise", help="Add thermal noise."),
    start: str | None = typer.Option(
        None,
        "--start",
        help="steady-state: the acquisition begins in the sequence's steady state, as after preparation scans "
        "(default for protocols); as-written: the events play from rest, as a scanner plays the file (default for "
        "--seq). The bloch engine always plays as written.",
    ),
    shim: str = shim_option(),
    b0_shim: str = b0_shim_option(),
    ideal: bool = ideal_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Simulate multi-coil k-space of a protocol on a phantom (with the field's B1+ and B0 effects, as ``hifield
    scan`` has them); writes ISMRMRD HDF5."""
    from hifield.errors import ConfigError
    from hifield.hardware import Scanner

    start_time = time.perf_counter()
    if start not in (None, "steady-state", "as-written"):
        raise ConfigError(f"--start must be 'steady-state' or 'as-written', not {start!r}")
    field_name = parse_field(field)
    if seq_file is not None:
        scanner = Scanner.resolve(field_name)
        if coils is not None:
            scanner = scanner.with_receive_coils(coils)
        _simulate_seq_file(
            seq_file,
            scanner,
            out=out,
            phantom=phantom,
            engine=engine,
            seed=seed,
            noise=noise,
            as_json=as_json,
            start=start_time,
            steady_state=start == "steady-state",
        )
        return
    from hifield.io import write_ismrmrd
    from hifield.pipeline import ScanConfig, build_exam, check_exam, exam_phantom
    from hifield.sim import simulate

    # the same build, check and phantom steps as `hifield scan`, then the accelerated sequence alone is simulated
    config = ScanConfig(
        protocol=protocol,
        field=field_name,
        acceleration=parse_accel(accel),
        pattern=pattern,
        n_calibration=calib,
        matrix=parse_matrix(matrix),
        phantom=phantom,
        engine=engine,
        n_coils=coils,
        seed=seed,
        write_files=False,
        rf_shim=shim,
        b0_shim=b0_shim,
        ideal=ideal,
    ).validated()
    exam = build_exam(config)
    check_exam(exam)
    built = exam.acquisition.accelerated
    obj, _ = exam_phantom(config, exam)
    raw = simulate(obj, built, exam.scanner, engine=engine, noise=noise, seed=seed, steady_state=start != "as-written")
    write_ismrmrd(raw, out)
    wall = time.perf_counter() - start_time
    pattern_used = exam.acquisition.pattern
    summary = {
        "out": str(out),
        "protocol": exam.protocol.name,
        "field_t": exam.scanner.b0_t,
        "engine": engine,
        "shape": list(raw.kspace.shape),
        "pattern": pattern_used.name,
        "acceleration": round(pattern_used.acceleration, 4),
        "scan_time_s": round(built.duration_s, 4),
        "wall_time_s": round(wall, 3),
    }
    if as_json:
        print_json(summary)
    else:
        n = int(exam.protocol.matrix)
        print(
            f"wrote {out}: {raw.n_coils} coils x {n} x {n}, R = {pattern_used.acceleration:.2f}, "
            f"simulated scan time {built.duration_s:.2f} s, wall time {wall:.2f} s"
        )


def _simulate_seq_file(
    path: Path,
    scanner: object,
    *,
    out: Path,
    phantom: str,
    engine: str,
    seed: int,
    noise: bool,
    as_json: bool,
    start: float,
    steady_state: bool = False,
) -> None:
    """Simulate a community or hifield ``.seq`` file: checked like a protocol, then simulated (fast by default)."""
    from hifield import sequence as sq
    from hifield.errors import ConfigError
    from hifield.io import write_ismrmrd
    from hifield.phantom import make_phantom
    from hifield.sim import simulate

    built = sq.load_seq(path, scanner_name=scanner.name)  # type: ignore[attr-defined]
    sq.raise_for_violations(sq.check(built, scanner))  # type: ignore[arg-type]
    geometry = built.protocol
    if geometry.fov_m <= 0:  # type: ignore[attr-defined]
        raise ConfigError(f"{path} has no FOV definition; add 'FOV' to its [DEFINITIONS] (metres)")
    engine_name = engine  # both engines read the file's own RF/ADC events (fast) or its whole program (bloch)
    obj = make_phantom(phantom, b0_t=scanner.b0_t, matrix=geometry.matrix, fov_m=geometry.fov_m, oversampling=2)  # type: ignore[attr-defined]
    raw = simulate(obj, built, scanner, engine=engine_name, noise=noise, seed=seed, steady_state=steady_state)  # type: ignore[arg-type]
    write_ismrmrd(raw, out)
    wall = time.perf_counter() - start
    summary = {
        "out": str(out),
        "seq": str(path),
        "engine": engine_name,
        "start": "steady-state" if steady_state and engine_name != "bloch" else "as-written",
        "shape": list(raw.kspace.shape),
        "scan_time_s": round(built.duration_s, 4),
        "wall_time_s": round(wall, 3),
    }
    if as_json:
        print_json(summary)
    else:
        print(
            f"wrote {out} from {path} ({engine_name} engine): simulated scan time {built.duration_s:.2f} s, "
            f"wall time {wall:.2f} s"
        )
