"""``hifield check``: build a protocol (or read a .seq file) for a scanner and report every limit it meets or breaks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from hifield.cli._common import EXIT_OK, EXIT_REFUSED, error_line, handle_errors, print_json

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence


def resolve_sequence(protocol: str, scanner_name: str) -> tuple[BuiltSequence, Scanner]:
    """Build a registered protocol name or a protocol YAML file, or load a ``.seq`` file, for ``scanner_name``."""
    from hifield.hardware.scanner import Scanner
    from hifield.sequence import get_protocol, load_protocol, load_seq

    scanner = Scanner.resolve(scanner_name)
    path = Path(protocol)
    if path.suffix == ".seq":
        return load_seq(path, scanner_name=scanner.name), scanner
    if path.suffix in (".yaml", ".yml"):
        return load_protocol(path).build(scanner), scanner
    return get_protocol(protocol).build(scanner), scanner


@handle_errors
def check_command(
    protocol: str = typer.Argument(..., help="Protocol name (see `hifield protocols`), a protocol .yaml or a .seq."),
    scanner: str = typer.Option("3T", "--scanner", help="Scanner preset (1.5T, 3T, 5T, 7T) or a scanner YAML file."),
    mode: str = typer.Option("normal", "--mode", help="IEC operating mode: normal or first_level."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Check a protocol against the scanner's hardware and the IEC safety limits; exit 2 naming every violation."""
    from hifield.sequence import check, check_timing
    from hifield.sequence.safety import assess, report_rows
    from hifield.sequence.safety_models import check_mode

    check_mode(mode)
    built, scanner_obj = resolve_sequence(protocol, scanner)
    check_timing(built)
    report = assess(built, scanner_obj, mode=mode)
    violations = check(built, scanner_obj, mode=mode)
    rows = report_rows(report)
    if as_json:
        print_json(
            {
                "protocol": built.protocol.name,
                "scanner": scanner_obj.name,
                "mode": mode,
                "te_ms": built.te_s * 1e3,
                "tr_ms": built.tr_s * 1e3,
                "scan_time_s": built.duration_s,
                "rows": rows,
                "violations": [str(v) for v in violations],
                "ok": not violations,
            }
        )
    else:
        _print_table(built, scanner_obj.name, mode, rows)
    if violations:
        error_line("refused: " + "; ".join(str(v) for v in violations))
        raise typer.Exit(EXIT_REFUSED)
    raise typer.Exit(EXIT_OK)


def _print_table(built: BuiltSequence, scanner_name: str, mode: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"{built.protocol.name} on {scanner_name} ({mode} mode): TE {built.te_s * 1e3:.2f} ms, "
        f"TR {built.tr_s * 1e3:.1f} ms, scan time {built.duration_s:.1f} s"
    )
    table = Table(title=title)
    for column in ("quantity", "value", "limit", "unit", ""):
        table.add_column(column, justify="right" if column in ("value", "limit") else "left")
    for row in rows:
        limit = "-" if row["limit"] is None else f"{row['limit']:.4g}"
        status = "[green]ok[/green]" if row["ok"] else "[red]OVER[/red]"
        table.add_row(row["quantity"], f"{row['value']:.4g}", limit, row["unit"], status)
    Console(width=100).print(table)
