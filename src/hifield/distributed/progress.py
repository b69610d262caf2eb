"""Progress of a study: a rich progress bar with done/total, the elapsed time and an ETA."""

from __future__ import annotations

from typing import Any, Protocol


class StudyProgress(Protocol):
    """Receives a study's progress; :func:`~hifield.distributed.batch` calls it from the process that drives it."""

    def start(self, *, total: int, done: int, where: str, dashboard: str | None) -> None:
        """The study starts: ``total`` exams, ``done`` of them already finished; ``where`` names the scheduler."""
        ...

    def advance(self, record: dict[str, Any]) -> None:
        """One more exam finished (``record`` as returned by :func:`~hifield.distributed.exam.run_exam`)."""
        ...

    def close(self) -> None:
        """The study ended (or was interrupted)."""
        ...


class SilentProgress:
    """Shows nothing."""

    def start(self, *, total: int, done: int, where: str, dashboard: str | None) -> None:
        """Nothing."""

    def advance(self, record: dict[str, Any]) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class RichProgress:
    """A progress bar on standard error: ``exams ━━━━━━ 12/40  ok 11  failed 1  0:01:10 elapsed  ETA 0:03:05``."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None
        self._counts = {"ok": 0, "failed": 0, "error": 0}

    def start(self, *, total: int, done: int, where: str, dashboard: str | None) -> None:
        """Print where the study runs and the dashboard link, then show the bar."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console.print(f"running {total - done} of {total} exams ({done} already done) on {where}")
        if dashboard:
            self.console.print(f"Dask dashboard: {dashboard}")
        elif where.startswith(("a LocalCluster", "the cluster")):
            self.console.print("Dask dashboard: none (the scheduler needs bokeh>=3.1 installed to serve one)")
        self._progress = Progress(
            TextColumn("exams"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task("exams", total=total, completed=done, counts="")

    def advance(self, record: dict[str, Any]) -> None:
        """Advance the bar by one exam and print a line for a failed one."""
        from rich.markup import escape

        status = str(record.get("status"))
        self._counts[status] = self._counts.get(status, 0) + 1
        counts = "  ".join(f"{k} {v}" for k, v in self._counts.items() if v)
        if self._progress is not None:
            self._progress.update(self._task, advance=1, counts=counts)
        if status != "ok":
            self.console.print(
                f"[yellow]{status}[/yellow] "
                + escape(f"{record.get('label', record.get('exam_id'))}: {record.get('reason')}"),
                no_wrap=True,
                overflow="ellipsis",
                markup=True,
            )

    def close(self) -> None:
        """Stop the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = ["RichProgress", "SilentProgress", "StudyProgress"]
