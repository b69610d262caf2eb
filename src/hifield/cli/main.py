"""Entry point of the ``hifield`` command: registers the subcommands and maps errors to exit codes."""

from __future__ import annotations

import importlib
import sys

import typer

from hifield.cli._common import EXIT_BAD_INPUT, boundary, error_line, interrupt_of

app = typer.Typer(
    name="hifield",
    help="hifield: a software-defined high-field MRI scanner. Start with `hifield scan`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module, function): modules are imported when the CLI starts; each is thin.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("scan", "hifield.cli.scan", "scan_command"),
    ("simulate", "hifield.cli.simulate", "simulate_command"),
    ("undersample", "hifield.cli.undersample", "undersample_command"),
    ("recon", "hifield.cli.recon", "recon_command"),
    ("export", "hifield.cli.export", "export_command"),
    ("check", "hifield.cli.check", "check_command"),
    ("protocols", "hifield.cli.protocols", "protocols_command"),
    ("phantom", "hifield.cli.phantom", "phantom_command"),
    ("coils", "hifield.cli.phantom", "coils_command"),
    ("console", "hifield.cli.console", "console_command"),
    ("study", "hifield.cli.study", "study_command"),
    ("train", "hifield.cli.train", "train_command"),
)


def _show_version(value: bool) -> None:
    if value:
        from hifield import __version__

        print(f"hifield {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print hifield's version and exit.", is_eager=True, callback=_show_version
    ),
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        help="Refuse any step estimated to need more memory than this (e.g. 4G, 512M); default half the RAM.",
    ),
) -> None:
    """hifield: a software-defined high-field MRI scanner. Start with `hifield scan`."""
    from hifield.errors import parse_size, set_memory_limit

    set_memory_limit(parse_size(max_memory) if max_memory is not None else None)


for _name, _module, _function in _COMMANDS:
    try:
        _command = getattr(importlib.import_module(_module), _function)
    except ModuleNotFoundError as _missing:  # an optional subcommand module that is not installed
        if _missing.name != _module:
            raise
        continue
    app.command(_name)(_command)


def _click_kind(error: BaseException) -> str | None:
    """The click exception family of ``error`` ("UsageError", "Abort", "Exit") or None.

    typer before 0.26 raises the exceptions of the ``click`` package, later typer those of its own vendored copy
    (``typer._click``); both keep click's class names, so the CLI recognises them by name rather than importing
    either module.
    """
    names = {cls.__name__ for cls in type(error).__mro__}
    for kind in ("UsageError", "Abort", "Exit"):
        if kind in names:
            return kind
    return None


def _run(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="hifield")
    except Exception as error:
        interrupt = interrupt_of(error)  # typer turns Ctrl-C (and our SIGTERM) into Exit(130) or Abort
        if interrupt is not None:
            raise interrupt from None
        kind = _click_kind(error)
        if kind == "UsageError":
            error_line(error.format_message())  # type: ignore[attr-defined]
            return EXIT_BAD_INPUT
        if kind == "Abort":
            error_line("aborted")
            return EXIT_BAD_INPUT
        if kind == "Exit":
            return int(getattr(error, "exit_code", 0) or 0)
        raise  # the boundary decides: one of ours, an interrupt, or a bug to report
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) 0 ok, 1 bad input, 2 refused by a check, 3 external service failed.

    An interrupt (Ctrl-C, SIGTERM) exits 130/143 after removing partial outputs; an unexpected error (a bug) prints
    one line with "please report" and the path of its saved traceback, and exits 1.
    """
    from hifield.errors import set_memory_limit

    try:
        code = boundary(lambda: _run(argv))
    finally:
        set_memory_limit(None)  # --max-memory holds for this command only (main() may run again in-process)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
