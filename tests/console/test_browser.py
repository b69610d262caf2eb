"""The console in a real headless Chromium: live scan time, a 7 T SAR refusal, a 64² scan, window/level, the token."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image", reason="Pillow decodes the screenshots")


def pixels(png: bytes) -> np.ndarray:
    """A screenshot as an RGB array."""
    return np.asarray(PIL.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


@pytest.fixture
def console_page(chromium: Any, server: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_console(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('input[data-key="tr_ms"]')
    wait_checked(page)


def wait_checked(page: Any) -> None:
    """Wait until the debounced check has answered (the card says so)."""
    page.wait_for_function("() => !document.querySelector('#card-state').textContent.startsWith('checking')")


def scan_time(page: Any) -> float:
    return float(page.get_attribute("#scan-time", "data-seconds"))


def test_changing_tr_changes_the_scan_time(console_page: Any, server: Any, tmp_path: Path, console_tools: Any) -> None:
    page = console_page
    open_console(page, server.url)
    before = scan_time(page)
    shown_before = page.inner_text("#scan-time")
    page.fill('input[data-key="tr_ms"]', "125")
    page.wait_for_function(f"() => Number(document.querySelector('#scan-time').dataset.seconds) !== {before}")
    wait_checked(page)
    after = scan_time(page)
    assert after == pytest.approx(before / 2, rel=0.02)  # 256 lines: scan time = lines x TR
    assert page.inner_text("#scan-time") != shown_before
    assert page.is_enabled("#start")
    console_tools.save_screenshot(page.screenshot(), "card", tmp_path)


def test_7t_tse_over_head_sar_is_refused_and_start_disabled(
    console_page: Any, server: Any, tmp_path: Path, console_tools: Any
) -> None:
    page = console_page
    open_console(page, server.url)
    page.select_option("#scanner", "7T")
    page.select_option("#protocol", "tse_t2_2d")
    page.wait_for_selector('input[data-key="refocusing_angle_deg"]')
    page.fill('input[data-key="tr_ms"]', "500")
    page.wait_for_selector("#refusal:not([hidden])")
    wait_checked(page)
    refusal = page.inner_text("#refusal")
    assert "head SAR (6 min) in normal mode is" in refusal and "above the limit of 3.2 W/kg" in refusal
    assert not page.is_enabled("#start")
    inline = page.inner_text('.param-error[data-key="tr_ms"]')
    assert "head SAR" in inline
    passing = float(re.search(r"passes at tr_ms = ([0-9.]+) ms", inline).group(1))
    assert passing > 500
    console_tools.save_screenshot(page.screenshot(), "refusal", tmp_path)
    # the value the card offers does pass: Start comes back
    page.fill('input[data-key="tr_ms"]', f"{passing:g}")
    page.wait_for_selector("#refusal", state="hidden")
    wait_checked(page)
    assert page.is_enabled("#start")


def test_a_64_scan_runs_and_its_image_appears(
    console_page: Any, server: Any, tmp_path: Path, console_tools: Any
) -> None:
    page = console_page
    open_console(page, server.url)
    page.fill('input[data-key="matrix"]', "64")
    page.fill("#acceleration", "2")
    page.fill("#n_calibration", "12")
    wait_checked(page)
    page.wait_for_selector("#start:not([disabled])")
    page.click("#start")
    page.wait_for_selector('#jobs li[data-state="running"], #jobs li[data-state="done"]')
    page.wait_for_selector('#jobs li[data-state="done"]', timeout=180_000)
    canvas = page.wait_for_selector('canvas.view[data-series="sense"]')
    page.wait_for_function(
        "() => document.querySelector('#panels canvas.view').width > 0 && "
        "document.querySelector('#slice-label').textContent !== '–'"
    )
    time.sleep(0.3)
    image = pixels(canvas.screenshot())
    grey = image.mean(axis=2)
    assert grey.shape[0] >= 200 and grey.shape[1] >= 200
    assert (grey > 60).mean() > 0.15, "the reconstructed brain is not visible"
    assert (grey < 10).mean() > 0.05, "no dark background around the head"
    assert grey.std() > 25
    truth = pixels(page.query_selector('canvas.view[data-series="truth"]').screenshot()).mean(axis=2)
    h, w = min(truth.shape[0], grey.shape[0]), min(truth.shape[1], grey.shape[1])
    assert np.corrcoef(truth[:h, :w].ravel(), grey[:h, :w].ravel())[0, 1] > 0.8
    assert "NMSE" in page.inner_text("#panels")
    assert page.is_visible("#mask")
    page.wait_for_selector("#exam-list tr[data-exam] td")
    assert page.query_selector('#files a[href$="raw.h5"]') is not None
    console_tools.save_screenshot(page.screenshot(full_page=True), "viewer", tmp_path)
    page.check("#show-error")
    error = page.wait_for_selector('canvas.view[data-series="error-cs"]')
    time.sleep(0.3)
    assert pixels(error.screenshot()).mean() < grey.mean()  # the error is smaller than the image
    console_tools.save_screenshot(page.query_selector("#viewer").screenshot(), "errors", tmp_path)


def _synthetic_exam(root: Path) -> str:
    """An exam folder with a smooth synthetic image (no scan needed)."""
    from hifield.console.exams import save_viewer_data

    exam = "20260101-000000-synthetic-001"
    folder = root / exam
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    disc = (np.hypot(y - 32, x - 32) < 26) * (0.3 + 0.7 * x / 63)
    truth = np.stack([disc * (0.5 + 0.5 * k) for k in range(3)])  # three slices, brighter each
    image = truth + 0.05 * np.sin(y / 3)
    mask = np.zeros((1, 64), dtype=np.uint8)
    mask[0, ::2] = 1
    save_viewer_data(folder, truth.astype(np.float32), {"fft": image.astype(np.float32)}, mask)
    summary = {
        "protocol": "synthetic",
        "field_t": 3.0,
        "matrix": [64, 64],
        "acceleration": 2.0,
        "scan_time_s": 1.0,
        "reconstructions": [{"method": "fft", "nmse": 0.01, "psnr": 30.0, "ssim": 0.9}],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return exam


def test_window_level_changes_displayed_pixels(console_page: Any, server: Any) -> None:
    page = console_page
    exam = _synthetic_exam(server.app.state.exams_dir)
    open_console(page, server.url)
    page.evaluate(f"openExam('{exam}')")
    canvas = page.wait_for_selector('canvas.view[data-series="truth"]')
    page.wait_for_function("() => document.querySelector('canvas.view[data-series=\"truth\"]').width > 0")
    time.sleep(0.3)
    before = pixels(canvas.screenshot()).mean(axis=2)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 120, cy + 60, steps=8)  # narrower window, lower level: brighter, more contrast
    page.mouse.up()
    time.sleep(0.3)
    after = pixels(canvas.screenshot()).mean(axis=2)
    inside = before > 5  # the disc
    assert after[inside].mean() > before[inside].mean() + 20
    assert "W " in page.inner_text("#wl-label")
    page.select_option("#wl-preset", "full")
    time.sleep(0.3)
    preset = pixels(canvas.screenshot()).mean(axis=2)
    assert np.abs(preset - after).mean() > 5
    # scroll through the slices with the mouse wheel: the next slice is brighter
    assert page.inner_text("#slice-label") == "2 / 3"
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 120)
    page.wait_for_function("() => document.querySelector('#slice-label').textContent === '3 / 3'")
    time.sleep(0.3)
    brighter = pixels(canvas.screenshot()).mean(axis=2)
    assert brighter[inside].mean() > preset[inside].mean() + 5
    # zoom
    width = canvas.bounding_box()["width"]
    page.select_option("#zoom", "2")
    time.sleep(0.2)
    assert page.query_selector('canvas.view[data-series="truth"]').bounding_box()["width"] == pytest.approx(2 * width)
    # the error map against truth: |fft - truth| is the small sine ripple, dark next to the image
    page.check("#show-error")
    error = page.wait_for_selector('canvas.view[data-series="error-fft"]')
    time.sleep(0.3)
    assert "|fft − truth|" in page.inner_text("#panels")
    ripple = pixels(error.screenshot()).mean(axis=2)
    assert 0 < ripple.mean() < brighter[inside].mean()


def test_token_is_required_off_loopback(chromium: Any, tmp_path: Path, console_tools: Any) -> None:
    port = console_tools.free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hifield.cli.main",
            "console",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--exams",
            str(tmp_path / "exams"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("hifield console: http://0.0.0.0:"), first
        token = second.strip().rsplit(" ", 1)[-1]
        assert f"?token={token}" in first
        base = f"http://127.0.0.1:{port}/"
        context = chromium.new_context()
        page = context.new_page()
        page.set_default_timeout(60_000)
        deadline = time.monotonic() + 60
        while True:
            try:
                response = page.goto(base)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert response.status == 401
        assert "access token" in page.inner_text("body")
        assert page.goto(base + "api/exams").status == 401
        assert page.goto(base + "?token=wrong").status == 401
        assert page.goto(f"{base}?token={token}").status == 200
        page.wait_for_selector('input[data-key="tr_ms"]')  # the API answered the page's own requests
        wait_checked(page)
        assert page.get_attribute("#scan-time", "data-seconds") is not None
        context.close()
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def test_a_failing_job_shows_its_one_line_reason(chromium: Any, failing_server: Any) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_console(page, failing_server.url)
        page.click("#start")
        page.click("#start")  # a second job queues behind the first
        page.wait_for_function("() => document.querySelectorAll('#jobs li[data-state=\"failed\"]').length === 2")
        item = page.inner_text("#jobs li")
        assert "the phantom file is damaged; make it again with hifield phantom" in item
    finally:
        context.close()
