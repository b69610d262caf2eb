"""``batch()``: run a study's exams on Dask (a LocalCluster by default, or any scheduler), resumable by hash."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hifield._interrupt import raise_if_interrupted
from hifield.distributed.exam import (
    ERRORS_DIR,
    EXAMS_DIR,
    PARTIAL_DIR,
    exam_folder,
    read_record,
    run_exam,
    write_json,
)
from hifield.distributed.progress import RichProgress, SilentProgress, StudyProgress
from hifield.distributed.study import Exam, Study, load_study
from hifield.distributed.table import gather_records, rows_from_record, study_status, write_manifest, write_table
from hifield.errors import ConfigError

SERIAL = "serial"
"""``scheduler=SERIAL`` runs the exams one after the other in this process, without Dask."""

DASK_MISSING = 'hifield study needs Dask: pip install "hifield[dask]"'
"""The one line printed when Dask is not installed."""


@dataclass
class StudyResult:
    """What :func:`batch` produced: the study folder, the table rows and the files written."""

    root: Path
    """Study folder."""
    name: str
    """Study name."""
    rows: list[dict[str, Any]]
    """Results table rows (one per exam and method), as in ``results.parquet``."""
    status: Any
    """:class:`~hifield.distributed.table.StudyStatus` at the end."""
    ran: int = 0
    """Exams run by this call (the others were already done)."""
    files: dict[str, Path] = field(default_factory=dict)
    """Files written: ``csv``, ``parquet``, ``report``."""
    dashboard: str | None = None
    """The Dask dashboard link, when there was one."""


def dask_available() -> bool:
    """Whether ``distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _as_study(study: Study | str | os.PathLike[str] | Sequence[Exam], out: str | os.PathLike[str] | None) -> Study:
    if isinstance(study, Study):
        result = study
    elif isinstance(study, (str, os.PathLike)):
        result = load_study(Path(study))
    else:
        exams = list(study)
        if not exams or not all(isinstance(e, Exam) for e in exams):
            raise ConfigError("batch() takes a Study, a study YAML path or a non-empty list of Exam")
        result = Study(name="batch", exams=tuple({e.exam_id: e for e in exams}.values()))
    if out is not None:
        result = Study(name=result.name, exams=result.exams, out=Path(out), retries=result.retries)
    return result


@contextlib.contextmanager
def dask_client(scheduler: Any, *, n_workers: int | None, n_exams: int) -> Iterator[tuple[Any, str, str | None]]:
    """A Dask client for ``scheduler`` (None: a new LocalCluster), with a description and the dashboard link."""
    if not dask_available():
        raise ConfigError(DASK_MISSING)
    from distributed import Client, LocalCluster

    if scheduler is None:
        workers = n_workers or max(1, min(os.cpu_count() or 1, n_exams))
        dashboard = ":0" if _has_bokeh() else None
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=dashboard,
                silence_logs=logging.ERROR,  # not the nanny's warnings when Ctrl-C stops busy workers
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client, f"a LocalCluster of {workers} worker processes", _dashboard(client)
        return
    if isinstance(scheduler, Client):
        yield scheduler, f"the cluster at {scheduler.scheduler_info().get('address', '?')}", _dashboard(scheduler)
        return
    address = getattr(scheduler, "scheduler_address", scheduler)  # a Cluster object (SLURMCluster, ...) or a string
    if not isinstance(address, str):
        raise ConfigError(
            f"scheduler must be an address like tcp://host:8786, a Client or a Cluster; got {scheduler!r}"
        )
    try:
        client = Client(address)  # waits up to Dask's distributed.comm.timeouts.connect (30 s by default)
    except (OSError, TimeoutError) as error:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({error}); check --scheduler") from None
    with client:
        yield client, f"the cluster at {address}", _dashboard(client)


def _has_bokeh() -> bool:
    """Whether bokeh, which Dask's dashboard needs, is installed."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client: Any) -> str | None:
    """The dashboard link when the scheduler serves one (it needs bokeh where the scheduler runs)."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        return str(client.dashboard_link)
    except (AttributeError, KeyError):  # pragma: no cover - a scheduler that reports no services
        return None


def _run_serial(exams: list[Exam], root: Path, progress: StudyProgress) -> None:
    for exam in exams:
        raise_if_interrupted()  # a Ctrl-C lost inside a C callback still stops the study before the next exam
        progress.advance(run_exam(exam, root))


def _run_dask(client: Any, exams: list[Exam], root: Path, progress: StudyProgress, retries: int) -> None:
    from distributed import as_completed

    futures = {
        client.submit(run_exam, exam, str(root), key=f"hifield-exam-{exam.exam_id}", retries=retries): exam
        for exam in exams
    }
    try:
        for future in as_completed(futures):
            raise_if_interrupted()
            exam = futures[future]
            try:
                record = future.result()
            except Exception as error:  # KilledWorker (a worker died too often) or a task that kept failing
                record = {
                    "exam_id": exam.exam_id,
                    "label": exam.label(),
                    "options": exam.options(),
                    "status": "error",
                    "reason": f"{type(error).__name__}: {' '.join(str(error).split())}",
                    "folder": None,
                }
                write_json(root / ERRORS_DIR / f"{exam.exam_id}.json", record)  # rerun next time
            future.release()
            progress.advance(record)
    except BaseException:  # Ctrl-C or a lost scheduler: stop the tasks; finished exam folders stay
        client.cancel(list(futures), force=True)
        raise


def batch(
    study: Study | str | os.PathLike[str] | Sequence[Exam],
    *,
    out: str | os.PathLike[str] | None = None,
    scheduler: Any = None,
    n_workers: int | None = None,
    progress: bool | StudyProgress = False,
    retry_failed: bool = False,
    report: bool = True,
) -> StudyResult:
    """Run a study: every exam once, on Dask, into ``out/exams/<content hash>``; then the table and the report.

    Exams whose folder already exists are skipped (resume); each exam runs as one task where its phantom is built
    and its data simulated, so only the options travel to the worker and only a small record comes back. A
    refused exam (SAR, hardware, bad option) is recorded with its one-line reason and the study goes on.

    Parameters
    ----------
    study
        A :class:`~hifield.distributed.study.Study`, the path of a study YAML file, or a list of
        :class:`~hifield.distributed.study.Exam`.
    out
        Study folder (default: the study's ``out``).
    scheduler
        None: a new ``LocalCluster`` of worker processes sized to the machine (one thread each); an address such
        as ``"tcp://host:8786"``; a ``distributed.Client``; a Dask cluster object (``SLURMCluster``,
        ``KubeCluster``); or ``"serial"``: one after the other in this process, without Dask. The study folder
        must be on a file system every worker can write.
    n_workers
        Workers of the LocalCluster (default: the CPU count, at most the number of exams to run).
    progress
        True: a progress bar on standard error (done/total, ETA, the dashboard link); or a
        :class:`~hifield.distributed.progress.StudyProgress`.
    retry_failed
        Run exams recorded as failed again (by default a failure is a result, kept like any other).
    report
        Write ``report.html`` and its PNGs.

    Returns
    -------
    StudyResult

    Raises
    ------
    ConfigError
        For a bad study, an unreachable scheduler, or Dask missing (``pip install "hifield[dask]"``).
    KeyboardInterrupt
        After stopping the tasks and writing the table of what finished; the next call resumes.

    Notes
    -----
    A LocalCluster starts its workers as new Python processes that import the calling script, so a script calls
    ``batch()`` under ``if __name__ == "__main__":``.

    Examples
    --------
    >>> import hifield as hf
    >>> from hifield.distributed import study_from_dict
    >>> study = study_from_dict({"axes": {"fields": ["3T", "7T"], "accelerations": [2, 4]},
    ...                          "fixed": {"matrix": 64, "n_coils": 4}, "methods": ["fft", "sense"]})
    >>> result = hf.batch(study, out="study_out", progress=True)  # doctest: +SKIP
    >>> result.status.line()  # doctest: +SKIP
    'study: 4/4 exams done (4 ok), 0 to run (complete)'
    """
    spec = _as_study(study, out)
    root = spec.out.expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"study folder {str(root)!r} cannot be created ({error.strerror}); choose another") from None
    shutil.rmtree(root / EXAMS_DIR / PARTIAL_DIR, ignore_errors=True)  # what interrupted runs left half-written
    exams = list(spec.exams)
    write_manifest(root, spec.name, exams)
    if retry_failed:
        for exam in exams:
            record = read_record(root, exam.exam_id)
            if record is not None and record.get("status") == "failed":
                shutil.rmtree(exam_folder(root, exam.exam_id))
    todo = [exam for exam in exams if read_record(root, exam.exam_id) is None]
    reporter: StudyProgress = (
        progress if not isinstance(progress, bool) else (RichProgress() if progress else SilentProgress())
    )
    dashboard = None
    try:
        if not todo:
            reporter.start(total=len(exams), done=len(exams), where="(nothing to run)", dashboard=None)
        elif scheduler == SERIAL:
            reporter.start(total=len(exams), done=len(exams) - len(todo), where="this process", dashboard=None)
            _run_serial(todo, root, reporter)
        else:
            with dask_client(scheduler, n_workers=n_workers, n_exams=len(todo)) as (client, where, dashboard):
                reporter.start(total=len(exams), done=len(exams) - len(todo), where=where, dashboard=dashboard)
                _run_dask(client, todo, root, reporter, spec.retries)
        shutil.rmtree(root / EXAMS_DIR / PARTIAL_DIR, ignore_errors=True)  # every task has ended
    finally:
        reporter.close()
        entries = [{"exam_id": e.exam_id, "options": e.options()} for e in exams]
        rows = [row for record in gather_records(root, entries) for row in rows_from_record(record)]
        files = write_table(root, rows)
    if report:
        from hifield.distributed.report import write_study_report

        files["report"] = write_study_report(root, rows, title=spec.name)
    return StudyResult(
        root=root,
        name=spec.name,
        rows=rows,
        status=study_status(root),
        ran=len(todo),
        files=files,
        dashboard=dashboard,
    )


__all__ = ["DASK_MISSING", "SERIAL", "StudyResult", "batch", "dask_available"]
