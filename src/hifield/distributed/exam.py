"""One exam as one task: run :func:`hifield.pipeline.scan` into a fresh folder, then rename it into place."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hifield.backend import single_threaded_blas
from hifield.distributed.study import Exam
from hifield.errors import HifieldError

EXAMS_DIR = "exams"
"""Sub-folder of a study holding one folder per exam, named by the exam's content hash."""
PARTIAL_DIR = ".partial"
"""Sub-folder of :data:`EXAMS_DIR` where exams are written before their folder is renamed into place."""
ERRORS_DIR = "errors"
"""Sub-folder of a study holding ``<exam_id>.json`` for exams that broke unexpectedly (retried on the next run)."""
RECORD = "record.json"
"""The file every finished exam folder holds: inputs, status, reason, metrics, worker, wall time."""
IMAGES = "images.npz"
"""Truth and magnitude reconstructions (float32, ``(slices, y, x)``) of a successful exam."""


def exam_folder(root: Path, exam_id: str) -> Path:
    """The folder of exam ``exam_id`` in the study folder ``root``."""
    return root / EXAMS_DIR / exam_id


def read_record(root: Path, exam_id: str) -> dict[str, Any] | None:
    """The record of a finished exam, or None when the exam has no complete folder."""
    path = exam_folder(root, exam_id) / RECORD
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not inside a Dask worker: run serially in this process
        return f"serial:{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def _parts_as_tasks() -> Iterator[None]:
    """Inside a Dask worker, run a slice stack's slices, and the reconstructions of one raw dataset, as tasks of
    their own on the cluster (the exam's task leaves its worker's slot while it waits for them; the raw data and
    coil maps go to the method tasks once, scattered); elsewhere (a serial study) change nothing."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):  # no Dask, or not inside a worker
        yield
        return
    from hifield.pipeline import method_mapper
    from hifield.pipeline_stack import slice_mapper

    def on_the_cluster(function: Any, items: list[Any]) -> list[Any]:
        with worker_client() as client:
            return list(client.gather(client.map(function, items, pure=False)))

    def methods_on_the_cluster(function: Any, jobs: list[Any]) -> list[Any]:
        with worker_client() as client:
            shared = client.scatter(jobs[0].raw)  # one copy of the raw data for every method's task
            maps = next((job.coil_maps for job in jobs if job.coil_maps is not None), None)
            shared_maps = client.scatter(maps) if maps is not None else None
            futures = [
                client.submit(
                    _run_method,
                    function,
                    shared,
                    job.method,
                    shared_maps if job.coil_maps is not None else None,
                    pure=False,
                )
                for job in jobs
            ]
            return list(client.gather(futures))

    slices = slice_mapper.set(on_the_cluster)
    methods = method_mapper.set(methods_on_the_cluster)
    try:
        yield
    finally:
        method_mapper.reset(methods)
        slice_mapper.reset(slices)


def _run_method(function: Any, raw: Any, method: str, coil_maps: Any) -> Any:
    """One method's task: rebuild its job from the scattered raw data and maps, and reconstruct."""
    from hifield.pipeline import MethodJob

    with single_threaded_blas():
        return function(MethodJob(raw, method, coil_maps))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, HifieldError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_exam(exam: Exam, root: str | Path) -> dict[str, Any]:
    """Run one exam into ``root/exams/<exam_id>`` and return its record (small: no arrays).

    The scan writes into a fresh folder under ``root/exams/.partial``; the record is written last, and the folder
    is then renamed into place in one step, so an exam folder is either complete or absent, whatever happens to
    the process. An exam whose folder already exists is not run again (its record is returned). A refusal or bad
    option (any :class:`~hifield.errors.HifieldError`) gives a record with ``status: failed`` and the error's
    one-line reason, stored like a result; any other exception gives ``status: error``, stored under
    ``root/errors/`` only, so that the next run tries the exam again.

    Parameters
    ----------
    exam
        The exam.
    root
        The study folder.

    Returns
    -------
    dict
        ``exam_id``, ``status`` (ok, failed, error), ``reason``, ``options``, ``summary`` (as summary.json, for ok),
        ``wall_time_s``, ``worker``, ``hostname``, ``pid``, ``peak_rss_mib``, ``finished_at``, ``folder``.
    """
    root = Path(root)
    exam_id = exam.exam_id
    existing = read_record(root, exam_id)
    if existing is not None:
        return existing
    partial = root / EXAMS_DIR / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    work = partial / f"{exam_id}-{uuid.uuid4().hex[:8]}"
    record: dict[str, Any] = {
        "exam_id": exam_id,
        "label": exam.label(),
        "options": exam.options(),
        "status": "ok",
        "reason": None,
        "summary": None,
    }
    start = time.perf_counter()
    try:
        try:
            from hifield.pipeline import scan

            with single_threaded_blas(), _parts_as_tasks():  # as in a Dask worker: serial and distributed agree
                result = scan(exam.scan_config(work))
            work.mkdir(parents=True, exist_ok=True)
            summary = dict(result.summary)
            summary.pop("output_dir", None)
            record["summary"] = summary
            arrays: dict[str, Any] = {"truth": result.truth, **result.images}
            np.savez_compressed(work / IMAGES, **arrays)
        except HifieldError as error:
            record.update(status="failed", reason=_one_line(error))
        except Exception as error:  # an unexpected failure: recorded, and retried on the next run
            record.update(status="error", reason=_one_line(error))
        record.update(
            wall_time_s=round(time.perf_counter() - start, 3),
            worker=_worker_name(),
            hostname=socket.gethostname(),
            pid=os.getpid(),
            peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        if record["status"] == "error":
            write_json(root / ERRORS_DIR / f"{exam_id}.json", record)
            record["folder"] = None
            return record
        work.mkdir(parents=True, exist_ok=True)
        target = exam_folder(root, exam_id)
        record["folder"] = str(Path(EXAMS_DIR) / exam_id)
        write_json(work / RECORD, record)
        try:
            os.rename(work, target)  # atomic: the exam folder appears complete or not at all
        except OSError:  # another attempt of the same exam finished first: keep its folder
            kept = read_record(root, exam_id)
            if kept is None:
                raise
            return kept
        (root / ERRORS_DIR / f"{exam_id}.json").unlink(missing_ok=True)
        return record
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file beside it (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


__all__ = [
    "ERRORS_DIR",
    "EXAMS_DIR",
    "IMAGES",
    "PARTIAL_DIR",
    "RECORD",
    "exam_folder",
    "read_record",
    "run_exam",
    "write_json",
]
