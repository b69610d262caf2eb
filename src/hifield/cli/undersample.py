"""``hifield undersample``: apply a sampling pattern to fully sampled raw data (retrospective)."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield.cli._common import handle_errors, print_json
from hifield.cli.options import out_file_option, seed_option
from hifield.cli.scan import parse_accel


@handle_errors
def undersample_command(
    raw_in: Path = typer.Argument(..., help="Fully sampled ISMRMRD file."),
    out: Path = out_file_option(..., "Undersampled ISMRMRD file to write."),
    pattern: str = typer.Option(
        "variable-density",
        "--pattern",
        help="variable-density, equispaced, partial-fourier, poisson (3D: ky-kz), caipirinha (3D).",
    ),
    accel: str = typer.Option("4", "--accel", help="Acceleration R >= 1."),
    calib: int = typer.Option(24, "--calib", help="Fully sampled central calibration lines."),
    seed: int = seed_option("Seed of the pattern."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Undersample fully sampled raw data with a seeded pattern and write the result as ISMRMRD.

    The pattern comes from the same table and check as the one ``hifield scan`` plays (retrospectively here).
    """
    from hifield.io import read_raw, write_ismrmrd
    from hifield.sampling import make_pattern, undersample

    raw = read_raw(raw_in)
    n_k2, n_k1 = raw.kspace.shape[-3], raw.kspace.shape[-2]
    shape: int | tuple[int, int] = (n_k2, n_k1) if n_k2 > 1 else n_k1
    pat = make_pattern(pattern, shape, acceleration=parse_accel(accel), n_calibration=calib, seed=seed)
    result = undersample(raw, pat)
    write_ismrmrd(result, out)
    summary = {
        "out": str(out),
        "pattern": pat.name,
        "acceleration": round(pat.acceleration, 4),
        "lines_acquired": pat.n_acquired,
        "calibration_lines": pat.calibration_lines,
        "scan_time_s": round(result.header.scan_time_s, 4),
    }
    if as_json:
        print_json(summary)
    else:
        print(
            f"wrote {out}: {pat.name} R = {pat.acceleration:.2f} ({pat.n_acquired} lines, {pat.calibration_lines} ACS)"
        )
