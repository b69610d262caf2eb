"""``batch()`` on a real LocalCluster of worker processes: bit-identical to a serial run, and a killed worker
loses nothing."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hifield.distributed import SERIAL, batch, read_table, study_from_dict
from hifield.distributed.exam import EXAMS_DIR, IMAGES, RECORD

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a LocalCluster of 2 single-threaded worker processes (as ``batch()`` starts by default)."""
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _images(root: Path, exam_id: str) -> dict[str, np.ndarray]:
    with np.load(root / EXAMS_DIR / exam_id / IMAGES) as data:
        return {name: data[name] for name in data.files}


MEASURED = ("status", "reason", "scan_time_s", "acceleration_achieved", "lines_acquired", "nmse", "psnr", "ssim")


def test_serial_and_distributed_runs_are_bit_identical(client: Any, tmp_path: Path, tiny: Any) -> None:
    spec = tiny()
    serial = batch(study_from_dict(spec), out=tmp_path / "serial", scheduler=SERIAL, report=False)
    address = client.scheduler.address  # an existing cluster, by its address as `--scheduler` gives it
    spread = batch(study_from_dict(spec), out=tmp_path / "dask", scheduler=address, report=False)
    assert spread.ran == serial.ran == 4
    workers = {row["worker"] for row in spread.rows}
    assert all(w.startswith("tcp://") for w in workers)
    assert [[r[k] for k in ("exam_id", "method", *MEASURED)] for r in serial.rows] == [
        [r[k] for k in ("exam_id", "method", *MEASURED)] for r in spread.rows
    ]
    for exam_id in {row["exam_id"] for row in serial.rows}:
        a, b = _images(tmp_path / "serial", exam_id), _images(tmp_path / "dask", exam_id)
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].tobytes() == b[name].tobytes(), (exam_id, name)


class _KillOneWorker:
    """A progress receiver that, after the first exam finishes, SIGKILLs a worker process that is running one."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pids = client.run(os.getpid)
        self.killed: tuple[str, list[str]] | None = None

    def start(self, *, total: int, done: int, where: str, dashboard: str | None) -> None:
        pass

    def advance(self, record: dict[str, Any]) -> None:
        if self.killed is not None:
            return
        busy = {address: keys for address, keys in self.client.processing().items() if keys}
        if not busy:
            return
        address, keys = sorted(busy.items())[0]
        os.kill(self.pids[address], signal.SIGKILL)
        self.killed = (address, [str(k) for k in keys])

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_a_worker_killed_mid_study_loses_nothing(client: Any, tmp_path: Path, tiny: Any) -> None:
    spec = tiny(methods=["fft"])
    spec["axes"]["seeds"] = [0, 1, 2]  # 12 exams on 2 workers
    study = study_from_dict(spec)
    killer = _KillOneWorker(client)
    result = batch(study, out=tmp_path, scheduler=client, progress=killer, report=False)
    assert killer.killed is not None, "no worker was busy when the first exam finished"
    address, keys = killer.killed
    assert result.status.counts == {"ok": 12}
    # the killed worker's exams were run again elsewhere
    lost = {key.removeprefix("hifield-exam-") for key in keys}
    by_exam = {row["exam_id"]: row for row in result.rows}
    assert lost and all(by_exam[exam_id]["worker"] != address for exam_id in lost)
    # every exam folder is complete and nothing half-written is left
    folders = sorted(p.name for p in (tmp_path / EXAMS_DIR).iterdir())
    assert folders == sorted(e.exam_id for e in study.exams)
    for name in folders:
        assert json.loads((tmp_path / EXAMS_DIR / name / RECORD).read_text())["status"] == "ok"
        assert _images(tmp_path, name)["fft"].shape == (1, 64, 64)
    assert len(read_table(tmp_path)) == 12


def test_a_slice_stack_exam_runs_its_slices_as_tasks_of_their_own(client: Any, tmp_path: Path, tiny: Any) -> None:
    spec = tiny()
    spec["fixed"] = {**spec["fixed"], "phantom": "brain", "matrix": 32, "n_calibration": 8, "n_slices": 2}
    spec["fixed"]["slice_thickness_m"] = 0.004
    spec["axes"] = {"accelerations": [2]}
    client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.task_prefixes.clear())
    result = batch(study_from_dict(spec), out=tmp_path / "stack", scheduler=client.scheduler.address, report=False)
    assert {row["status"] for row in result.rows} == {"ok"}, result.rows
    prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "scan_one_slice" in prefixes  # each slice was a task, not a loop inside the exam's task
    (exam_id,) = {row["exam_id"] for row in result.rows}
    assert _images(tmp_path / "stack", exam_id)["truth"].shape[0] == 2


def test_the_methods_of_one_exam_run_as_tasks_on_one_simulated_dataset(client: Any, tmp_path: Path, tiny: Any) -> None:
    spec = tiny(methods=["fft", "sense", "cs"])
    spec["axes"] = {"accelerations": [2]}
    client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.task_prefixes.clear())
    spread = batch(study_from_dict(spec), out=tmp_path / "dask", scheduler=client.scheduler.address, report=False)
    prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "run_method" in prefixes  # one task per method, not a loop inside the exam's task
    assert sum(p.startswith("hifield-exam") for p in prefixes) == 1  # and one simulation: the exam's own task
    serial = batch(study_from_dict(spec), out=tmp_path / "serial", scheduler=SERIAL, report=False)
    assert [r["method"] for r in spread.rows] == ["fft", "sense", "cs"]
    assert [[r[k] for k in MEASURED] for r in serial.rows] == [[r[k] for k in MEASURED] for r in spread.rows]
    (exam_id,) = {row["exam_id"] for row in spread.rows}
    a, b = _images(tmp_path / "serial", exam_id), _images(tmp_path / "dask", exam_id)
    assert all(a[name].tobytes() == b[name].tobytes() for name in a)
