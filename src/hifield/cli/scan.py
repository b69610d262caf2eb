"""``hifield scan``: the whole virtual exam in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield.cli._common import ConsoleReporter, handle_errors, print_json
from hifield.cli.options import (
    b0_shim_option,
    coils_option,
    ideal_option,
    out_dir_option,
    parse_field,
    parse_recons,
    seed_option,
    shim_option,
)
from hifield.errors import ConfigError
from hifield.recon.device import DEVICE_HELP
from hifield.scan_config import DEFAULT_RECONS, RECON_CHOICES

PATTERN_HELP = (
    "variable-density, equispaced, partial-fourier, poisson or caipirinha (3D protocols: variable-density, poisson "
    "and caipirinha sample the (k2, k1) plane with a square --calib block, the others the partitions; "
    "radial and spiral protocols play a subset of their readouts)."
)


def parse_accel(text: str) -> float:
    """Validate ``--accel`` with the one sampling check (:func:`hifield.sampling.check_request`)."""
    from hifield.sampling import check_request

    return check_request(acceleration=text).acceleration


def parse_matrix(text: str | None) -> int | None:
    """Validate ``--matrix`` against the protocols' own limits (:func:`hifield.sequence.check_matrix`)."""
    from hifield.sequence import check_matrix

    return None if text is None else check_matrix(text)


@handle_errors
def scan_command(
    protocol: str = typer.Option(
        "gre_t1_2d", "--protocol", help="Protocol name (see `hifield protocols`) or YAML file."
    ),
    field: str = typer.Option("3T", "--field", help="Scanner preset (1.5T, 3T, 5T, 7T) or scanner YAML file."),
    accel: str = typer.Option("4", "--accel", help="Acceleration R >= 1 (1 = fully sampled)."),
    recon: str = typer.Option(
        ",".join(DEFAULT_RECONS), "--recon", help=f"Comma-separated reconstructions: {', '.join(RECON_CHOICES)}."
    ),
    matrix: str | None = typer.Option(None, "--matrix", help="In-plane matrix N (N x N); default the protocol's 256."),
    out: Path = out_dir_option(Path("hifield_out"), "Output folder (replaced as a whole if it exists)."),
    seed: int = seed_option("Seed of the sampling pattern and the noise."),
    pattern: str = typer.Option("variable-density", "--pattern", help=PATTERN_HELP),
    calib: int = typer.Option(24, "--calib", help="Fully sampled central calibration lines."),
    coils: int | None = coils_option("Receive channels, 1-256 (default: the preset's array)."),
    phantom: str = typer.Option("brain", "--phantom", help="brain, shepp-logan, nist, nist-t2 or water-fat."),
    engine: str = typer.Option("fast", "--engine", help="Simulation engine."),
    pacs: str | None = typer.Option(None, "--pacs", help="Send the DICOM series to a PACS at HOST:PORT."),
    called_aet: str = typer.Option("ORTHANC", "--called-aet", help="AE title of the PACS."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on standard output."),
    slices: int | None = typer.Option(
        None,
        "--slices",
        help="Slices of a 2D protocol's stack (interleaved, centred on the head); default 24 (the whole brain) on "
        "the brain phantom, 1 on the others; --slices 1 scans one slice.",
    ),
    slice_thickness: float | None = typer.Option(None, "--slice-thickness", help="Slice thickness [mm] (2D)."),
    adapt: bool = typer.Option(
        False, "--adapt", help="Over a SAR limit: apply the least change that passes (TR, flip angle or slices)."
    ),
    shim: str = shim_option(),
    b0_shim: str = b0_shim_option(),
    ideal: bool = ideal_option(),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Run a whole virtual exam: sequence, safety checks, simulation, undersampling, reconstruction, DICOM/NIfTI."""
    from hifield.pipeline import ScanConfig, default_slices, scan

    if coils is not None and coils < 1:
        raise ConfigError(f"--coils must be a positive integer; got {coils}")
    config = ScanConfig(
        protocol=protocol,
        field=parse_field(field),
        acceleration=parse_accel(accel),
        pattern=pattern,
        n_calibration=calib,
        recons=parse_recons(recon),
        matrix=parse_matrix(matrix),
        phantom=phantom,
        engine=engine,
        n_coils=coils,
        seed=seed,
        out=out,
        adapt=adapt,
        n_slices=slices if slices is not None else default_slices(protocol, phantom),
        slice_thickness_m=None if slice_thickness is None else slice_thickness * 1e-3,
        rf_shim=shim,
        b0_shim=b0_shim,
        ideal=ideal,
        device=device,
    )
    address = None
    if pacs is not None:
        from hifield.io.pacs import parse_pacs_address

        address = parse_pacs_address(pacs)  # a bad address is refused before the scan runs
    reporter = ConsoleReporter()
    result = scan(config, reporter=reporter)
    summary = result.summary
    if address is not None:
        from hifield.io.pacs import send_to_pacs

        files = sorted(Path(summary["output_dir"]).glob("dicom/*/*.dcm"))
        with reporter.step(f"Sending {len(files)} DICOM files to {pacs}"):
            report = send_to_pacs(files, address[0], address[1], called_aet=called_aet)
        summary["pacs"] = report.summary()
    if as_json:
        print_json(summary)
        return
    adaptation = summary.get("sar_adaptation")
    if isinstance(adaptation, dict):
        reporter.console.print(
            f"{adaptation['limit']} was {adaptation['value_w_per_kg']:.1f} W/kg > {adaptation['limit_w_per_kg']:.1f} "
            f"W/kg: adapted ({adaptation['applied']}), now {adaptation['sar_after_w_per_kg']:.1f} W/kg"
        )
    _print_table(reporter, summary)


def _print_table(reporter: ConsoleReporter, summary: dict[str, object]) -> None:
    from rich.table import Table

    console = reporter.console
    table = Table(title=f"{summary['protocol']} at {summary['field_t']} T, {summary['n_coils']} coils")
    for column in ("method", "NMSE", "PSNR [dB]", "SSIM", "time [s]"):
        table.add_column(column, justify="right" if column != "method" else "left")
    for row in summary["reconstructions"]:  # type: ignore[attr-defined]
        table.add_row(
            row["method"], f"{row['nmse']:.4f}", f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", f"{row['time_s']:.2f}"
        )
    console.print(table)
    console.print(
        f"scan time {summary['scan_time_s']:.1f} s at R = {summary['acceleration']:.2f} "
        f"(fully sampled {summary['scan_time_full_s']:.1f} s); output in {summary.get('output_dir', '-')}"
    )
    fe = summary.get("field_effects")
    if isinstance(fe, dict) and not fe.get("ideal"):
        b1 = f"B1+ CoV {fe.get('b1_cov')}" + (f" (CP {fe['b1_cov_cp']})" if "b1_cov_ptx" in fe else "")
        console.print(
            f"field effects: {fe.get('rf_shim')} transmit, {b1}; B0 shim {fe.get('b0_shim')}, "
            f"residual range {fe.get('b0_residual_range_hz')} Hz"
        )
    if "pacs" in summary:
        console.print(f"PACS: {summary['pacs']}")
