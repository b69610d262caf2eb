"""``hifield protocols``: list the protocol library with its defaults."""

from __future__ import annotations

import typer

from hifield.cli._common import handle_errors, print_json

_SHOWN = (
    "kind",
    "tr_ms",
    "te_ms",
    "ti_ms",
    "flip_angle_deg",
    "fov_mm",
    "matrix",
    "slice_thickness_mm",
    "readout_bandwidth_hz_per_pixel",
    "echo_train_length",
)


_HEADERS = {
    "tr_ms": "TR ms",
    "te_ms": "TE ms",
    "ti_ms": "TI ms",
    "flip_angle_deg": "flip °",
    "fov_mm": "FOV mm",
    "slice_thickness_mm": "slice mm",
    "readout_bandwidth_hz_per_pixel": "BW Hz/px",
    "echo_train_length": "ETL",
    "scan_time_s": "time s",
}


@handle_errors
def protocols_command(
    scanner: str | None = typer.Option(
        None, "--scanner", help="Also build each protocol for this preset (1.5T, 3T, 5T, 7T) and show its scan time."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full defaults as JSON."),
) -> None:
    """List every protocol with its defaults (and its scan time on a scanner with --scanner)."""
    from hifield.sequence import get_protocol, protocol_names, protocol_to_dict

    entries = []
    scanner_obj = None
    if scanner is not None:
        from hifield.hardware.scanner import Scanner

        scanner_obj = Scanner.resolve(scanner)
    for name in protocol_names():
        protocol = get_protocol(name)
        notes: list[dict[str, object]] = []
        if scanner_obj is not None:
            from hifield.pipeline import field_tuned_protocol

            protocol, notes = field_tuned_protocol(name, scanner_obj.b0_t)
        data = protocol_to_dict(protocol)
        if scanner_obj is not None:
            data["scan_time_s"] = round(protocol.build(scanner_obj).duration_s, 3)
            data["field_defaults"] = notes
        entries.append(data)
    if as_json:
        print_json(entries)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    columns = ["name", *[c for c in _SHOWN if any(c in e for e in entries)]]
    if scanner_obj is not None:
        columns.append("scan_time_s")
    table = Table(title="hifield protocols" + (f" (scan time on {scanner_obj.name})" if scanner_obj else ""))
    for column in columns:
        table.add_column(_HEADERS.get(column, column), no_wrap=True)
    for entry in entries:
        table.add_row(*[_fmt(entry.get(c)) for c in columns])
    console = Console(width=160)
    console.print(table)
    for entry in entries:
        for note in entry.get("field_defaults") or []:
            line = (
                f"{entry['name']}: {note['parameter']} = {note['value']:g} ({note['reason']}); source: {note['source']}"
            )
            console.print(escape(line))


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
