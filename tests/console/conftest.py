"""Fixtures for the console: the app for FastAPI's TestClient, a live server on a free port, headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the console extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (or httpx2)")

CHROMIUM = os.environ.get("HIFIELD_CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium``); ``playwright install`` cannot download browsers here."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
"""Where screenshots for the README go when ``HIFIELD_SAVE_SCREENSHOTS=1``."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving an app on a thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.host = host
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the console server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.queue.stop()


@pytest.fixture
def exams_dir(tmp_path: Path) -> Path:
    return tmp_path / "exams"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium driven by Playwright; skips when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set HIFIELD_CHROMIUM)")
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def save_screenshot(data: bytes, name: str, tmp_path: Path) -> Path:
    """Keep a screenshot: in docs/images with ``HIFIELD_SAVE_SCREENSHOTS=1`` (for the README), else in tmp_path."""
    folder = SCREENSHOTS if os.environ.get("HIFIELD_SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"console_{name}.png"
    try:  # a 64-colour palette keeps the README's PNGs small
        import io

        from PIL import Image

        Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=64).save(path, optimize=True)
    except ImportError:
        path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The console on a free loopback port, with a fresh exams folder, for the tests of one module."""
    from hifield.console.app import create_app

    app = create_app(exams_dir=tmp_path_factory.mktemp("console") / "exams")
    with LiveServer(app) as live:
        yield live


@pytest.fixture(scope="session")
def console_tools() -> Any:
    """Helpers for tests: ``free_port()`` and ``save_screenshot(data, name, tmp_path)``."""
    from types import SimpleNamespace

    return SimpleNamespace(free_port=free_port, save_screenshot=save_screenshot)


@pytest.fixture
def failing_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The console whose every job fails one step in (a stub runner), for the queue's failure display."""
    from hifield.console.app import create_app
    from hifield.errors import ConfigError

    def runner(job: Any, reporter: Any) -> None:
        with reporter.step("Building protocol and checking it against the scanner"):
            time.sleep(0.5)
        raise ConfigError("the phantom file is damaged; make it again with hifield phantom")

    app = create_app(exams_dir=tmp_path / "exams", runner=runner)
    with LiveServer(app) as live:
        yield live
