"""``hifield study run STUDY.yaml`` runs a study of many exams on Dask; ``hifield study status DIR`` says how far."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield._interrupt import clear_interrupt
from hifield.cli._common import Terminated, error_line, handle_errors, interrupted_exit_code, print_json
from hifield.errors import ConfigError

ACTIONS = ("run", "status")


@handle_errors
def study_command(
    action: str = typer.Argument(
        ..., metavar="ACTION", help="run: run a study file (resumes what is missing); status: how far."
    ),
    target: Path = typer.Argument(
        ..., metavar="STUDY.yaml|DIR", help="run: the study YAML file; status: the study folder."
    ),
    out: Path | None = typer.Option(None, "--out", help="Study folder (default: the study file's `out`)."),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786); default a LocalCluster on this machine; `serial` runs in "
        "this process without Dask.",
    ),
    workers: int | None = typer.Option(None, "--workers", help="LocalCluster workers (default: the CPU count)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run exams recorded as failed again."),
    as_json: bool = typer.Option(False, "--json", help="Print the study's status as JSON on standard output."),
) -> None:
    """Run a study of many exams (every protocol, field, R, method, seed ...) on Dask, or show its progress."""
    from hifield.distributed import DASK_MISSING, SERIAL, batch, dask_available, load_study, study_status

    if action not in ACTIONS:
        raise ConfigError(f"unknown study action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action == "status":
        status = study_status(target)
        if as_json:
            print_json({"name": status.name, "total": status.total, "done": status.done, "counts": status.counts})
            return
        print(status.line())
        for exam_id, kind, reason in status.failures:
            print(f"  {kind} {exam_id}: {reason}")
        return
    if scheduler != SERIAL and not dask_available():
        raise ConfigError(DASK_MISSING)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be a positive integer; got {workers}")
    study = load_study(target)
    try:
        result = batch(
            study,
            out=out,
            scheduler=scheduler,
            n_workers=workers,
            progress=not as_json,
            retry_failed=retry_failed,
        )
    except (KeyboardInterrupt, Terminated) as interrupt:  # Ctrl-C or SIGTERM: finished exams stay, the rest resumes
        clear_interrupt()
        folder = (out or study.out).expanduser().resolve()
        error_line(f"interrupted: {study_status(folder).line()}; run the same command again to resume")
        raise typer.Exit(interrupted_exit_code(interrupt)) from None
    status = result.status
    if as_json:
        print_json(
            {
                "name": status.name,
                "total": status.total,
                "done": status.done,
                "counts": status.counts,
                "ran": result.ran,
                "files": {k: str(v) for k, v in result.files.items()},
            }
        )
        return
    print(status.line())
    print(f"results: {result.files.get('parquet', result.files['csv'])}; report: {result.files.get('report')}")
