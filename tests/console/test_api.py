"""The console's JSON API through FastAPI's TestClient: card checks, jobs, exams, downloads, PACS and the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hifield.console.app import create_app
from hifield.console.exams import save_viewer_data
from hifield.errors import ConfigError

LOCAL = "http://127.0.0.1:8765"
"""The console serves loopback Host names only when it has no token."""

SMALL_SCAN = {"params": {"matrix": 64}, "acceleration": 2, "n_calibration": 12}


@pytest.fixture
def client(exams_dir: Path) -> Any:
    with TestClient(create_app(exams_dir=exams_dir), base_url=LOCAL) as test_client:
        yield test_client
        test_client.app.state.queue.stop()


def test_options_and_parameters_with_units(client: TestClient) -> None:
    options = client.get("/api/options").json()
    assert options["scanners"] == ["1.5T", "3T", "5T", "7T"]
    assert "tse_t2_2d" in [p["name"] for p in options["protocols"]]
    assert "brain" in options["phantoms"]
    params = {p["key"]: p for p in client.get("/api/protocols/gre_t1_2d").json()["parameters"]}
    assert params["tr_ms"]["unit"] == "ms" and params["tr_ms"]["value"] == 250.0
    assert params["flip_angle_deg"]["unit"] == "deg"
    assert params["fov_mm"]["unit"] == "mm"
    assert params["gradient_mode"]["choices"] == ["normal", "fast"]
    missing = client.get("/api/protocols/nope")
    assert missing.status_code == 400 and "unknown protocol 'nope'" in missing.json()["error"]


def test_learned_methods_are_offered_only_with_torch_and_never_checked_by_default(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    options = client.get("/api/options").json()
    assert options["default_recons"] == ["fft", "sense", "cs"]  # a Start with the defaults never needs torch
    has_torch = importlib.util.find_spec("torch") is not None
    assert ("varnet" in options["recons"]) == has_torch
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    without = client.get("/api/options").json()
    assert "varnet" not in without["recons"] and "modl" not in without["recons"] and "cs" in without["recons"]


def test_card_scan_time_follows_tr_and_results_are_complete(client: TestClient) -> None:
    default = client.post("/api/card", json={}).json()
    short = client.post("/api/card", json={"params": {"tr_ms": 125}}).json()
    assert default["ok"] and short["ok"]
    assert short["results"]["scan_time_s"] == pytest.approx(default["results"]["scan_time_s"] / 2, rel=0.01)
    results = default["results"]
    for key in (
        "min_te_ms",
        "min_tr_ms",
        "sar_head_w_per_kg",
        "sar_whole_body_w_per_kg",
        "pns_percent",
        "peak_gradient_mt_per_m",
        "peak_slew_t_per_m_per_s",
        "acceleration",
    ):
        assert isinstance(results[key], (int, float)), key
    assert 0 < results["min_te_ms"] < results["te_ms"] and 0 < results["min_tr_ms"] < results["tr_ms"]
    accelerated = client.post("/api/card", json={"acceleration": 4}).json()
    assert accelerated["results"]["acceleration"] == pytest.approx(4, rel=0.05)
    mask = np.asarray(accelerated["mask"])
    assert mask.shape == (1, 256) and (mask > 0).sum() == 64 and (mask == 2).sum() == 24


def test_card_minimum_te_is_the_value_that_passes(client: TestClient) -> None:
    card = client.post("/api/card", json={"params": {"te_ms": 1}}).json()
    assert not card["ok"]
    error = card["errors"][0]
    assert error["key"] == "te_ms" and "below the minimum" in error["message"]
    assert client.post("/api/card", json={"params": {"te_ms": error["passing"]}}).json()["ok"]


def test_7t_sar_refusal_names_the_limit_as_hifield_check_does(client: TestClient) -> None:
    body = {"protocol": "tse_t2_2d", "field": "7T", "params": {"tr_ms": 500}}
    card = client.post("/api/card", json=body).json()
    assert not card["ok"]
    inline = next(e for e in card["errors"] if e["key"] == "tr_ms")
    assert inline["limit"] == "head SAR (6 min) in normal mode"
    assert inline["passing"] > 500
    passing = client.post("/api/card", json={**body, "params": {"tr_ms": inline["passing"]}}).json()
    assert passing["ok"], passing["errors"]
    # the same words as the command line's refusal
    protocol_file = Path(client.app.state.exams_dir).parent / "tse7t.yaml"
    from hifield.sequence import get_protocol, save_protocol

    save_protocol(get_protocol("tse_t2_2d").with_changes(tr_s=0.5), protocol_file)
    cli = subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", "check", str(protocol_file), "--scanner", "7T"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 2
    assert card["errors"][0]["message"] in cli.stderr.replace("hifield: error: ", "").strip()
    refused = client.post("/api/jobs", json=body)
    assert refused.status_code == 409 and refused.json()["error"].startswith("refused: head SAR")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"params": {"tr_ms": "fast"}}, "tr_ms = 'fast' is not a number"),
        ({"params": {"tr_ms": -5}}, "tr_ms = -5 is outside the allowed range 1 to 20000"),
        ({"params": {"matrix": 64.5}}, "matrix = 64.5 must be a whole number"),
        ({"params": {"bogus_ms": 1}}, "unknown key 'bogus_ms'"),
        ({"field": "9.4T"}, "unknown scanner preset '9.4T'"),
        ({"protocol": "../../etc/passwd"}, "unknown protocol"),
        ({"phantom": "banana"}, "unknown phantom 'banana'"),
        ({"acceleration": 0.5}, "acceleration must be a number >= 1"),
        ({"recons": ["magic"]}, "unknown reconstruction magic"),
        ({"mode": "overdrive"}, "not an IEC operating mode"),
        ({"protocol": "mprage_3d", "phantom": "nist"}, "3D protocols run on the brain phantom"),
    ],
)
def test_bad_values_get_a_message_not_a_500(client: TestClient, body: dict[str, Any], words: str) -> None:
    response = client.post("/api/card", json=body)
    assert response.status_code == 200
    card = response.json()
    assert not card["ok"] and words in card["errors"][0]["message"]
    job = client.post("/api/jobs", json=body)
    assert job.status_code == 409 and words in job.json()["error"]


@pytest.mark.parametrize(
    "body",
    [{"acceleration": "lots"}, {"n_calibration": "x"}, {"params": "tr=3"}, {"unknown_option": 1}, {"port": 1}],
)
def test_malformed_requests_are_400_with_one_line(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/card", json=body)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message and "\n" not in message


def test_failing_job_shows_its_one_line_reason(exams_dir: Path) -> None:
    def runner(job: Any, reporter: Any) -> None:
        with reporter.step("Building protocol"):
            time.sleep(0.4)
        time.sleep(0.4)
        raise ConfigError("phantom file is\nbroken; make it again")

    with TestClient(create_app(exams_dir=exams_dir, runner=runner), base_url=LOCAL) as client:
        client.post("/api/jobs", json={})
        client.post("/api/jobs", json={})  # several jobs queue
        with client.stream("GET", "/api/events", params={"until_idle": True}) as stream:
            events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
        jobs = events[-1]["jobs"]
        assert len(jobs) == 2 and all(j["state"] == "failed" for j in jobs)
        assert jobs[0]["message"] == "phantom file is broken; make it again"
        assert len(events) >= 3  # queued, running, step, failed ... pushed as they happen


def test_progress_is_pushed_step_by_step(exams_dir: Path) -> None:
    def runner(job: Any, reporter: Any) -> None:
        for name in ("setup", "phantom", "simulate"):
            with reporter.step(name):
                time.sleep(0.3)

    with TestClient(create_app(exams_dir=exams_dir, runner=runner), base_url=LOCAL) as client:
        client.post("/api/jobs", json={"recons": ["fft"]})
        with client.stream("GET", "/api/events", params={"until_idle": True}) as stream:
            events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    progress = [e["jobs"][0]["progress"] for e in events if e["jobs"]]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert len({p for p in progress if 0 < p < 1}) >= 2


def test_a_scan_job_makes_an_exam_with_downloads_and_viewer_data(client: TestClient, exams_dir: Path) -> None:
    job = client.post("/api/jobs", json=SMALL_SCAN)
    assert job.status_code == 202
    assert client.app.state.queue.wait_idle(300)
    state = client.get(f"/api/jobs/{job.json()['id']}").json()
    assert state["state"] == "done", state["message"]
    exams = client.get("/api/exams").json()
    assert [e["id"] for e in exams] == [state["exam"]]
    exam = client.get(f"/api/exams/{state['exam']}").json()
    kinds = {f["kind"] for f in exam["files"]}
    assert {"DICOM", "NIfTI", "ISMRMRD", "figure", "summary"} <= kinds
    assert {"truth", "fft", "sense", "cs", "error-sense"} <= set(exam["series"])
    assert exam["shape"] == [1, 64, 64]
    raw = client.get(f"/api/exams/{state['exam']}/files/raw.h5")
    assert raw.status_code == 200 and raw.content[:8] == b"\x89HDF\r\n\x1a\n"
    dicom = next(f["path"] for f in exam["files"] if f["kind"] == "DICOM")
    assert client.get(f"/api/exams/{state['exam']}/files/{dicom}").content[128:132] == b"DICM"
    plane = client.get(f"/api/exams/{state['exam']}/slice", params={"series": "sense", "index": 0})
    assert plane.headers["X-Shape"] == "64,64"
    image = np.frombuffer(plane.content, dtype="<f4").reshape(64, 64)
    truth = np.frombuffer(
        client.get(f"/api/exams/{state['exam']}/slice", params={"series": "truth"}).content, dtype="<f4"
    ).reshape(64, 64)
    assert np.corrcoef(image.ravel(), truth.ravel())[0, 1] > 0.9
    mask = client.get(f"/api/exams/{state['exam']}/mask.png")
    assert mask.headers["content-type"] == "image/png" and mask.content[:4] == b"\x89PNG"
    bad = client.get(f"/api/exams/{state['exam']}/slice", params={"series": "sense", "index": 5})
    assert bad.status_code == 400 and "slice 5 is outside 0..0" in bad.json()["error"]


def _fake_exam(root: Path, name: str = "20260101-000000-fake-001") -> str:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"protocol": "fake", "reconstructions": []}))
    (folder / "dicom" / "fft").mkdir(parents=True)
    (folder / "dicom" / "fft" / "a.dcm").write_bytes(b"not really")
    save_viewer_data(folder, np.ones((1, 8, 8), np.float32), {"fft": np.ones((1, 8, 8), np.float32)}, None)
    return name


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "..%2Fsecret.txt",
        "%2E%2E/secret.txt",
        "dicom/../../secret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "link.txt",
        ".hidden",
        "dicom",
        "nothing.h5",
    ],
)
def test_downloads_cannot_leave_the_exam_folder(client: TestClient, exams_dir: Path, path: str) -> None:
    exam = _fake_exam(exams_dir)
    (exams_dir / "secret.txt").write_text("TOPSECRET-CONTENT")
    (exams_dir / exam / ".hidden").write_text("TOPSECRET-CONTENT")
    os.symlink(exams_dir / "secret.txt", exams_dir / exam / "link.txt")
    response = client.get(f"/api/exams/{exam}/files/{path}")
    assert response.status_code in (404, 400), (path, response.status_code)
    assert b"TOPSECRET" not in response.content
    assert client.get(f"/api/exams/{exam}/files/dicom/fft/a.dcm").content == b"not really"


@pytest.mark.parametrize("exam", ["..", "..%2F..", ".hidden", "a%2Fb", "missing-exam"])
def test_exam_ids_cannot_leave_the_exams_folder(client: TestClient, exams_dir: Path, exam: str) -> None:
    exams_dir.mkdir(parents=True, exist_ok=True)
    (exams_dir.parent / "summary.json").write_text("{}")
    response = client.get(f"/api/exams/{exam}")
    assert response.status_code in (404, 400)


def test_token_is_required_when_set(exams_dir: Path) -> None:
    with TestClient(create_app(exams_dir=exams_dir, token="s3cret-token")) as client:
        for path in ("/", "/api/options", "/api/exams", "/static/app.js"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert "access token" in response.json()["error"]
        assert client.post("/api/card", json={}).status_code == 401
        assert client.get("/api/options", headers={"X-Hifield-Token": "wrong"}).status_code == 401
        assert client.get("/api/options", headers={"X-Hifield-Token": "s3cret-token"}).status_code == 200
        assert client.get("/api/options", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        page = client.get("/", params={"token": "s3cret-token"})
        assert page.status_code == 200 and "hifield console" in page.text
        # the browser keeps the token as a cookie for the page's own requests
        assert client.get("/api/exams").status_code == 200


def test_no_token_needed_on_loopback(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/api/options", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/options", headers={"host": "[::1]:8765"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.5:8765"])
def test_without_token_other_host_names_are_refused(client: TestClient, host: str) -> None:
    response = client.get("/api/options", headers={"host": host})
    assert response.status_code == 403 and "loopback" in response.json()["error"]


@pytest.fixture
def storage_scp(console_tools: Any) -> Any:
    """A DICOM storage SCP (pynetdicom) on a free loopback port that records what it stores."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    ae = AE(ae_title="TESTPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    port = console_tools.free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    yield port, received
    server.shutdown()


def test_send_to_pacs_shows_what_was_stored_or_why_not(
    client: TestClient, storage_scp: Any, console_tools: Any
) -> None:
    job = client.post("/api/jobs", json={**SMALL_SCAN, "recons": ["fft", "sense"]}).json()
    assert client.app.state.queue.wait_idle(300)
    exam = client.get(f"/api/jobs/{job['id']}").json()["exam"]
    port, received = storage_scp
    sent = client.post(f"/api/exams/{exam}/pacs", json={"host": "127.0.0.1", "port": port, "called_aet": "TESTPACS"})
    assert sent.status_code == 200, sent.text
    report = sent.json()
    assert report["ok"] and report["n_files"] == 2 and sorted(report["stored"]) == sorted(received)
    assert report["summary"] == f"stored 2/2 instances on TESTPACS@127.0.0.1:{port}"
    one = client.post(
        f"/api/exams/{exam}/pacs", json={"host": "127.0.0.1", "port": port, "called_aet": "TESTPACS", "series": "fft"}
    )
    assert one.json()["n_files"] == 1
    down = client.post(
        f"/api/exams/{exam}/pacs",
        json={"host": "127.0.0.1", "port": console_tools.free_port(), "called_aet": "TESTPACS"},
    )
    assert down.status_code == 502 and "\n" not in down.json()["error"] and down.json()["error"]
    for bad in ({"series": "../../x"}, {"series": "nope"}, {"port": 70000}, {"called_aet": "A\\B"}):
        body = {"host": "127.0.0.1", "port": port, "called_aet": "TESTPACS", **bad}
        response = client.post(f"/api/exams/{exam}/pacs", json=body)
        assert response.status_code in (400, 404) and response.json()["error"], bad


def test_a_scanner_yaml_from_the_browser_is_checked_like_a_file(client: TestClient) -> None:
    lab = "name: lab 2.9T\nb0_t: 2.89\nmax_grad_mt_per_m: 45\n"
    card = client.post("/api/card", json={"scanner_yaml": lab}).json()
    assert card["ok"] and card["results"]["scanner"] == "lab 2.9T"
    assert card["results"]["gradient_limit_mt_per_m"] == pytest.approx(45)
    bad = client.post("/api/card", json={"scanner_yaml": "b0_t: [1, 2\n"}).json()
    assert not bad["ok"] and "not valid YAML" in bad["errors"][0]["message"]
    assert "/tmp" not in bad["errors"][0]["message"] and "(uploaded)" in bad["errors"][0]["message"]
    unknown = client.post("/api/card", json={"scanner_yaml": "warp_drive: 9\n"}).json()
    assert not unknown["ok"] and "warp_drive" in unknown["errors"][0]["message"]
    huge = client.post("/api/card", json={"scanner_yaml": "#" * 70000}).json()
    assert not huge["ok"] and "at most 65536 bytes" in huge["errors"][0]["message"]


def test_a_job_on_an_uploaded_scanner_keeps_its_yaml_in_the_exam(client: TestClient) -> None:
    lab = "name: lab 2.9T\nb0_t: 2.89\nn_receive_coils: 4\n"
    job = client.post("/api/jobs", json={**SMALL_SCAN, "scanner_yaml": lab, "recons": ["fft"]}).json()
    assert "lab 2.9T" in job["title"]
    assert client.app.state.queue.wait_idle(300)
    state = client.get(f"/api/jobs/{job['id']}").json()
    assert state["state"] == "done", state["message"]
    exam = client.get(f"/api/exams/{state['exam']}").json()
    assert exam["summary"]["scanner"] == "lab 2.9T" and exam["summary"]["n_coils"] == 4
    assert client.get(f"/api/exams/{state['exam']}/files/scanner.yaml").text == lab


def test_gradient_amplitude_refusal_offers_a_field_of_view_that_passes(client: TestClient) -> None:
    params = {"fov_mm": 20, "te_ms": 20, "tr_ms": 100, "readout_bandwidth_hz_per_pixel": 2000}
    card = client.post("/api/card", json={"params": params}).json()
    assert not card["ok"]
    error = card["errors"][0]
    assert error["key"] == "fov_mm" and error["limit"] == "gradient amplitude on x"
    assert error["message"].startswith("refused: gradient amplitude on x is ")
    assert error["passing"] > 20
    fixed = client.post("/api/card", json={"params": {**params, "fov_mm": error["passing"]}}).json()
    assert not any("gradient amplitude" in e["message"] for e in fixed["errors"]), fixed["errors"]


def test_with_a_dask_scheduler_the_scan_runs_as_a_task_on_the_cluster(exams_dir: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as dask,
        TestClient(create_app(exams_dir=exams_dir, scheduler=dask), base_url=LOCAL) as client,
    ):
        job = client.post("/api/jobs", json={**SMALL_SCAN, "recons": ["fft"]}).json()
        assert client.app.state.queue.wait_idle(300)
        state = client.get(f"/api/jobs/{job['id']}").json()
        client.app.state.queue.stop()
        assert state["state"] == "done", state["message"]
        assert state["step"].startswith("Scanning on the cluster at")
        # the scheduler ran hifield's scan as a task, and the exam is complete in the shared folder
        tasks = dask.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        assert "scan" in tasks
        assert (exams_dir / state["exam"] / "summary.json").is_file()
        assert client.get(f"/api/exams/{state['exam']}").json()["shape"] == [1, 64, 64]


@pytest.mark.torch
def test_a_learned_scan_shows_its_uncertainty_and_hallucination_maps(client: TestClient) -> None:
    pytest.importorskip("torch")
    job = client.post("/api/jobs", json={**SMALL_SCAN, "acceleration": 4, "recons": ["fft", "varnet"]}).json()
    assert client.app.state.queue.wait_idle(600)
    state = client.get(f"/api/jobs/{job['id']}").json()
    assert state["state"] == "done", state
    exam = client.get(f"/api/exams/{state['exam']}").json()
    maps = [s for s in exam["series"] if s.startswith("varnet-")]
    assert maps, exam["series"]  # residual, null-space map, uncertainty interval
    assert "error-varnet" in exam["series"] and not any(s.startswith("error-varnet-") for s in exam["series"])
    plane = client.get(f"/api/exams/{state['exam']}/slice", params={"series": maps[0], "index": 0})
    assert plane.status_code == 200 and plane.headers["X-Shape"] == "64,64"
