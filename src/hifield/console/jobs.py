"""Background scan jobs: a queue with one worker thread, progress from the pipeline's step reporter."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hifield.errors import HifieldError

Runner = Callable[["Job", "JobReporter"], None]
"""Runs one job; raises to fail it (a :class:`HifieldError`'s message is shown as is)."""


@dataclass
class Job:
    """One queued scan."""

    id: str
    """Job id (also the exam folder name once it runs)."""
    request: dict[str, Any]
    """The card request that started it (JSON form)."""
    title: str
    """Protocol, field and matrix, for the queue list."""
    n_steps: int
    """Steps the pipeline will report (for the progress bar)."""
    state: str = "queued"
    """``queued``, ``running``, ``done`` or ``failed``."""
    step: str = ""
    """Description of the step running now (or the last one)."""
    steps_done: int = 0
    """Steps finished."""
    message: str = ""
    """One-line reason of a failure."""
    exam: str | None = None
    """Exam folder name (set when it is done)."""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    """Creation time (UTC, ISO 8601)."""
    started_s: float | None = None
    finished_s: float | None = None

    @property
    def progress(self) -> float:
        """Fraction done, 0 to 1."""
        if self.state == "done":
            return 1.0
        return min(self.steps_done / max(self.n_steps, 1), 0.99)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = dataclasses.asdict(self)
        data["progress"] = round(self.progress, 3)
        if self.started_s is not None:
            data["elapsed_s"] = round((self.finished_s or time.monotonic()) - self.started_s, 1)
        data.pop("started_s")
        data.pop("finished_s")
        return data


class JobReporter:
    """A :class:`hifield.pipeline.StepReporter` that records each step on its job and wakes the listeners."""

    def __init__(self, job: Job, queue: JobQueue) -> None:
        self.job = job
        self.queue = queue

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """Context manager around one pipeline step."""
        self.queue.update(self.job, step=description)
        yield
        self.queue.update(self.job, steps_done=self.job.steps_done + 1)


class JobQueue:
    """Jobs run one after another on a worker thread; every change bumps :attr:`version` and notifies listeners."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.jobs: dict[str, Job] = {}
        self.version = 0
        self._pending: list[Job] = []
        self._lock = threading.Condition()
        self._stopping = False
        self._counter = itertools.count(1)
        self._thread: threading.Thread | None = None

    def submit(self, request: dict[str, Any], *, title: str, n_steps: int, prefix: str) -> Job:
        """Queue a job; ``prefix`` starts its id (the id is unique and safe as a folder name)."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        with self._lock:
            job = Job(id=f"{stamp}-{prefix}-{next(self._counter):03d}", request=request, title=title, n_steps=n_steps)
            self.jobs[job.id] = job
            self._pending.append(job)
            self._bump()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="hifield-console-jobs", daemon=True)
                self._thread.start()
        return job

    def update(self, job: Job, **changes: Any) -> None:
        """Change fields of ``job`` and notify the listeners."""
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)
            self._bump()

    def snapshot(self) -> list[dict[str, Any]]:
        """Every job, newest first, in JSON form."""
        with self._lock:
            return [job.as_dict() for job in reversed(list(self.jobs.values()))]

    def wait_for_change(self, version: int, timeout_s: float) -> int:
        """Block until :attr:`version` differs from ``version`` or ``timeout_s`` passes; return the version."""
        with self._lock:
            self._lock.wait_for(lambda: self.version != version or self._stopping, timeout=timeout_s)
            return self.version

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no job is queued or running; True if that happened within ``timeout_s``."""
        with self._lock:
            return self._lock.wait_for(
                lambda: all(j.state in ("done", "failed") for j in self.jobs.values()), timeout=timeout_s
            )

    def stop(self) -> None:
        """Let the worker finish its current job and end."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    def _bump(self) -> None:
        self.version += 1
        self._lock.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._pending) or self._stopping)
                if self._stopping:
                    return
                job = self._pending.pop(0)
                job.state = "running"
                job.started_s = time.monotonic()
                self._bump()
            try:
                self.runner(job, JobReporter(job, self))
            except HifieldError as error:
                self.update(job, state="failed", message=" ".join(str(error).split()), finished_s=time.monotonic())
            except MemoryError:
                self.update(job, state="failed", message="not enough memory; use a smaller matrix or fewer coils")
            except Exception as error:  # a job must never take the worker down: show the reason on one line
                text = " ".join(str(error).split()) or "no message"
                self.update(job, state="failed", message=f"{type(error).__name__}: {text}", finished_s=time.monotonic())
            else:
                self.update(job, state="done", finished_s=time.monotonic())


def exam_folder(root: Path, job: Job) -> Path:
    """Folder of ``job``'s exam under ``root``."""
    return root / job.id
