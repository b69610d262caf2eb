"""PACS: send a hifield series to a real Orthanc on loopback and check it through Orthanc's REST API."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pydicom
import pytest

from hifield.errors import ConfigError, ExternalServiceError, FileFormatError
from hifield.io.dicom import write_dicom_series
from hifield.io.pacs import echo_pacs, parse_pacs_address, send_to_pacs

from .conftest import make_image

PACS_AET = "HIFIELDPACS"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.access(p, os.X_OK)), None
    )


class OrthancServer:
    def __init__(self, root, exe):
        self.http_port, self.dicom_port = _free_port(), _free_port()
        (root / "db").mkdir()
        (root / "log").mkdir()
        config = {
            "Name": "hifield-test-pacs",
            "StorageDirectory": str(root / "db"),
            "IndexDirectory": str(root / "db"),
            "StorageCompression": False,
            "Plugins": [],
            "ConcurrentJobs": 1,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "HttpThreadsCount": 4,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": PACS_AET,
            "DicomCheckCalledAet": True,
            "DicomPort": self.dicom_port,
            "DicomThreadsCount": 2,
            # only our sender, and only from loopback, may talk to it
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {"hifield": ["HIFIELD", "127.0.0.1", 11112]},
            "UnknownSopClassAccepted": False,
            "SaveJobs": False,
        }
        (root / "orthanc.json").write_text(json.dumps(config))
        self.log = open(root / "orthanc.stdout", "w")
        self.proc = subprocess.Popen(
            [exe, f"--logdir={root / 'log'}", str(root / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.rest("/system")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.skip(f"Orthanc did not start: {(root / 'orthanc.stdout').read_text()[-300:]}")
                time.sleep(0.2)

    def rest(self, path, data=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=data,
            headers={"Content-Type": "application/json"} if data else {},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return json.loads(body) if response.headers.get_content_type() == "application/json" else body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    exe = _orthanc_binary()
    if exe is None:
        pytest.skip("Orthanc not installed")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), exe)
    yield server
    server.stop()


@pytest.mark.external
def test_series_arrives_with_tags_and_pixels(orthanc, tmp_path):
    image = make_image(np.random.default_rng(5))
    files = write_dicom_series(image, tmp_path / "series", series_description="GRE T1 2D", series_number=3)
    assert echo_pacs("127.0.0.1", orthanc.dicom_port, called_aet=PACS_AET) == 0
    report = send_to_pacs(tmp_path / "series", "127.0.0.1", orthanc.dicom_port, called_aet=PACS_AET)
    assert report.ok and report.echo_status == 0 and len(report.stored) == len(files) == 3
    assert "stored 3/3" in report.summary()
    local = {str(pydicom.dcmread(f).SOPInstanceUID): pydicom.dcmread(f) for f in files}
    series_uid = next(iter(local.values())).SeriesInstanceUID
    found = orthanc.rest(
        "/tools/find", json.dumps({"Level": "Instance", "Query": {"SeriesInstanceUID": series_uid}}).encode()
    )
    assert len(found) == 3
    for oid in found:
        tags = orthanc.rest(f"/instances/{oid}/simplified-tags")
        ours = local[tags["SOPInstanceUID"]]
        assert tags["Modality"] == "MR"
        assert float(tags["MagneticFieldStrength"]) == pytest.approx(7.0)
        assert float(tags["EchoTime"]) == pytest.approx(4.2)
        assert float(tags["RepetitionTime"]) == pytest.approx(12.3)
        assert float(tags["FlipAngle"]) == pytest.approx(15.0)
        assert tags["SeriesDescription"] == "GRE T1 2D" and int(tags["SeriesNumber"]) == 3
        assert tags["ImagePositionPatient"] == "\\".join(str(v) for v in ours.ImagePositionPatient)
        back = pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{oid}/file")))
        assert back.PixelData == ours.PixelData
    assert all(f.exists() for f in files)


@pytest.mark.external
def test_wrong_called_aet_is_rejected(orthanc, tmp_path):
    files = write_dicom_series(make_image(np.random.default_rng(1), shape=(1, 4, 4)), tmp_path, series_description="x")
    with pytest.raises(ExternalServiceError) as err:
        send_to_pacs(files, "127.0.0.1", orthanc.dicom_port, called_aet="NOTTHEPACS", timeout_s=5)
    assert f"127.0.0.1:{orthanc.dicom_port}" in str(err.value) and "\n" not in str(err.value)
    assert all(f.exists() for f in files)


def test_pacs_down_is_one_line_error(tmp_path):
    files = write_dicom_series(make_image(np.random.default_rng(1), shape=(1, 4, 4)), tmp_path, series_description="x")
    port = _free_port()  # nothing listens there
    with pytest.raises(ExternalServiceError) as err:
        send_to_pacs(files, "127.0.0.1", port, called_aet="ANY", timeout_s=3)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message
    assert err.value.exit_code == 3
    assert all(f.exists() for f in files)
    with pytest.raises(ExternalServiceError):
        echo_pacs("127.0.0.1", port, called_aet="ANY", timeout_s=3)


def test_address_and_inputs():
    assert parse_pacs_address("pacs.example.org:104") == ("pacs.example.org", 104)
    for bad in ("localhost", "host:", ":104", "host:70000", "a b:1", "host:port"):
        with pytest.raises(ConfigError):
            parse_pacs_address(bad)
    with pytest.raises(ConfigError):
        send_to_pacs([], "127.0.0.1", 1, called_aet="THIS_AET_IS_TOO_LONG")


def test_not_dicom_refused_before_connecting(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_text("nope")
    with pytest.raises(FileFormatError, match="nothing was sent"):
        send_to_pacs([bad], "127.0.0.1", 1, called_aet="PACS")


def _export_app():
    import typer

    from hifield.cli.export import export_command

    app = typer.Typer()
    app.command()(export_command)
    return app


def _run_export(args):
    from typer.testing import CliRunner

    return CliRunner().invoke(_export_app(), [str(a) for a in args])


@pytest.mark.external
def test_export_cli_nifti_to_pacs(orthanc, tmp_path):
    from hifield.io.nifti import write_nifti

    nifti = write_nifti(make_image(np.random.default_rng(2)), tmp_path / "sense.nii.gz")
    before = orthanc.rest("/statistics")["CountInstances"]
    result = _run_export([nifti, "--pacs", f"127.0.0.1:{orthanc.dicom_port}", "--called-aet", PACS_AET, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["stored"] == 3 and summary["failed"] == []
    assert orthanc.rest("/statistics")["CountInstances"] == before + 3
    assert len(list((tmp_path / "sense_dicom").glob("*.dcm"))) == 3


def test_export_cli_errors(tmp_path):
    files = write_dicom_series(
        make_image(np.random.default_rng(1), shape=(1, 4, 4)), tmp_path / "s", series_description="x"
    )
    port = _free_port()
    down = _run_export([tmp_path / "s", "--pacs", f"127.0.0.1:{port}", "--called-aet", "X"])
    assert down.exit_code == 3 and f"127.0.0.1:{port}" in down.output
    assert all(f.exists() for f in files)
    bad_address = _run_export([tmp_path / "s", "--pacs", "nonsense", "--called-aet", "X"])
    assert bad_address.exit_code == 1 and "HOST:PORT" in bad_address.output
    ct = tmp_path / "ct"
    ct.mkdir()
    shutil.copy(os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "CT_small.dcm"), ct / "ct.dcm")
    not_mr = _run_export([ct, "--pacs", f"127.0.0.1:{port}"])
    assert not_mr.exit_code == 1 and "not MR" in not_mr.output
    local = _run_export([tmp_path / "s"])
    assert local.exit_code == 0 and "nothing sent" in local.output
