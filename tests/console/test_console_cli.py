"""``hifield console`` as a user starts it: options, its printed URL on loopback (no token), bad options."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def _hifield(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_host_port_open() -> None:
    result = _hifield("console", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--open", "--exams"):
        assert option in result.stdout


def test_bad_port_is_one_line_exit_1(tmp_path: Path) -> None:
    result = _hifield("console", "--port", "70000", "--exams", str(tmp_path / "exams"))
    assert result.returncode == 1
    assert result.stderr.strip() == "hifield: error: --port must be 1 to 65535; got 70000"


def test_loopback_by_default_prints_its_url_and_serves_without_token(tmp_path: Path, console_tools: Any) -> None:
    port = console_tools.free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "hifield.cli.main", "console", "--port", str(port), "--exams", str(tmp_path / "ex")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline().strip()
            assert first == f"hifield console: http://127.0.0.1:{port}/"
            assert "token" not in process.stdout.readline()
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/options", timeout=10) as response:
                        options = json.loads(response.read())
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            assert options["exams_dir"] == str((tmp_path / "ex").resolve())
        finally:
            process.terminate()
            process.wait(timeout=20)
