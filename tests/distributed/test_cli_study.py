"""``hifield study run|status`` as a user runs it: one-line errors and exit codes, resume, Ctrl-C, no Dask."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hifield.distributed.exam import EXAMS_DIR, RECORD


def hifield(*args: str, timeout: float = 300, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``hifield ARGS`` in a fresh Python process (``prelude``: Python run before the CLI starts)."""
    code = f"{prelude}\nimport sys\nfrom hifield.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_study(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def test_study_run_serial_then_status_then_resume(tmp_path: Path, tiny: Any) -> None:
    spec = tiny(axes={"fields": ["3T"], "accelerations": [2, 3]})
    study = write_study(tmp_path / "s.yaml", spec)
    out = tmp_path / "out"
    run = hifield("study", "run", str(study), "--out", str(out), "--scheduler", "serial", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["total"], summary["done"], summary["ran"], summary["counts"]) == (2, 2, 2, {"ok": 2})
    assert Path(summary["files"]["parquet"]).is_file() and Path(summary["files"]["report"]).is_file()
    status = hifield("study", "status", str(out))
    assert status.returncode == 0 and status.stdout.startswith("tiny: 2/2 exams done (2 ok), 0 to run (complete)")
    as_json = hifield("study", "status", str(out), "--json")
    assert json.loads(as_json.stdout) == {"name": "tiny", "total": 2, "done": 2, "counts": {"ok": 2}}
    again = hifield("study", "run", str(study), "--out", str(out), "--scheduler", "serial")
    assert again.returncode == 0, again.stderr
    assert "running 0 of 2 exams" in again.stderr or "nothing to run" in again.stderr
    assert "2/2 exams done" in again.stdout


def test_study_run_starts_a_local_cluster_by_default_and_prints_its_dashboard(tmp_path: Path, tiny: Any) -> None:
    study = write_study(tmp_path / "s.yaml", tiny(axes={"fields": ["3T"], "accelerations": [2]}, methods=["fft"]))
    run = hifield("study", "run", str(study), "--out", str(tmp_path / "out"), "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert "running 1 of 1 exams (0 already done) on a LocalCluster of 1 worker processes" in run.stderr
    dashboard = "Dask dashboard: http://" if importlib.util.find_spec("bokeh") else "Dask dashboard: none"
    assert dashboard in run.stderr
    assert "exams" in run.stderr and "1/1" in run.stderr and "ETA" in run.stderr
    assert "1/1 exams done (1 ok)" in run.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("study", "run", "missing.yaml"), "study file 'missing.yaml' does not exist"),
        (("study", "status", "."), "holds no study (no study.json)"),
        (("study", "walk", "x"), "unknown study action 'walk'; choose one of run, status"),
        (("study", "run", "x.yaml", "--scheduler", "serial", "--workers", "0"), "--workers must be a positive"),
        (("study", "run", "x.yaml", "--scheduler", "tcp://127.0.0.1:9"), "cannot reach the Dask scheduler"),
    ],
)
def test_study_errors_are_one_line_with_exit_code_1(
    tmp_path: Path, tiny: Any, args: tuple[str, ...], needle: str
) -> None:
    write_study(tmp_path / "x.yaml", tiny())
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # the unreachable scheduler
    proc = subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_without_dask_the_study_command_names_the_extra(tmp_path: Path, tiny: Any) -> None:
    study = write_study(tmp_path / "s.yaml", tiny())
    block = "import sys\nsys.modules['distributed'] = None\nsys.modules['dask'] = None"
    proc = hifield("study", "run", str(study), "--out", str(tmp_path / "o"), prelude=block)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'hifield: error: hifield study needs Dask: pip install "hifield[dask]"'


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path, tiny: Any) -> None:
    spec = tiny(methods=["fft"])
    spec["axes"]["seeds"] = [0, 1]  # 8 exams
    study = write_study(tmp_path / "s.yaml", spec)
    out = tmp_path / "out"
    code = "import sys\nfrom hifield.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "study", "run", str(study), "--out", str(out), "--scheduler", "serial"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exams = out / EXAMS_DIR
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(p.name != ".partial" for p in exams.glob("*")):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr  # Ctrl-C exits 130 like every hifield command
    assert "interrupted" in stderr and "run the same command again to resume" in stderr
    done = [p for p in exams.iterdir() if p.name != ".partial"]
    assert 1 <= len(done) < 8
    assert all((p / RECORD).is_file() for p in done)
    again = hifield("study", "run", str(study), "--out", str(out), "--scheduler", "serial", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["ran"] == 8 - len(done) and summary["counts"] == {"ok": 8}
