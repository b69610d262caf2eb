"""The front door: ``python -m hifield`` and ``hifield --version``, usage errors as one line, true lower bounds."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hifield

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, check=False)


def test_python_m_hifield_prints_the_version() -> None:
    proc = _run("-m", "hifield", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"hifield {hifield.__version__}"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("scna",), "No such command 'scna'"),
        (("scan", "--seed", "abc"), "Invalid value for '--seed'"),
        (("scan", "--matrix"), "requires an argument"),
    ],
)
def test_usage_errors_are_one_line_with_exit_1(args: tuple[str, ...], words: str) -> None:
    # typer >= 0.26 raises the exceptions of its vendored click, older typer those of click itself: both are
    # recognised (before, only click's were caught and typer's vendored ones escaped as a traceback)
    proc = _run("-m", "hifield", *args)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], proc.stderr


def test_lowest_constraints_pin_every_core_dependency() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from lowest_constraints import lowest_constraints
    finally:
        sys.path.pop(0)
    pins = lowest_constraints(ROOT / "pyproject.toml")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert len(pins) == len(deps)
    assert all("==" in pin for pin in pins)
    assert "numpy==2.0" in pins  # numpy.trapezoid (SAR, RF events) needs numpy 2.0
