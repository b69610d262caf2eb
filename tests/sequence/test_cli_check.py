"""``hifield check`` and ``hifield protocols`` as a user runs them (through the real entry point)."""

from __future__ import annotations

import json

import pytest

from hifield.cli.main import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_default_protocol_passes(capsys):
    code, out, err = run(capsys, "check", "gre_t1_2d", "--scanner", "3T", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["violations"] == []
    names = {row["quantity"] for row in data["rows"]}
    assert {"peak gradient x", "peak slew y", "whole-body SAR 6 min", "head SAR 10 s", "PNS", "RF peak B1"} <= names
    assert data["scan_time_s"] == pytest.approx(64.0)


def test_check_prints_a_table(capsys):
    code, out, _ = run(capsys, "check", "gre_t1_2d")
    assert code == 0
    assert "whole-body SAR 6 min" in out and "PNS" in out and "scan time" in out


def test_check_refuses_with_exit_2_naming_every_limit(capsys, tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text("kind: gre_2d\nmatrix: 64\ntr_ms: 12\nte_ms: 5\nflip_angle_deg: 90\ngradient_mode: fast\n")
    code, _out, err = run(capsys, "check", str(path), "--scanner", "5T")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "whole-body SAR (6 min) in normal mode" in lines[0]
    assert "PNS in normal mode" in lines[0]
    assert "above the limit of 2 W/kg" in lines[0]


def test_first_level_mode_allows_more(capsys, tmp_path):
    path = tmp_path / "sar.yaml"
    path.write_text("kind: gre_2d\nmatrix: 64\ntr_ms: 12\nte_ms: 5\nflip_angle_deg: 75\n")
    assert run(capsys, "check", str(path), "--scanner", "5T")[0] == 2
    assert run(capsys, "check", str(path), "--scanner", "5T", "--mode", "first_level")[0] == 0


def test_hardware_refusal_exit_2(capsys, tmp_path):
    path = tmp_path / "fov.yaml"
    path.write_text("kind: gre_2d\nfov_mm: 20\nreadout_bandwidth_hz_per_pixel: 1000\n")
    code, _out, err = run(capsys, "check", str(path))
    assert code == 2
    assert "gradient amplitude on x" in err


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("check", "nope"), "unknown protocol 'nope'"),
        (("check", "gre_t1_2d", "--scanner", "9.4T"), "unknown scanner preset"),
        (("check", "gre_t1_2d", "--mode", "reckless"), "operating mode 'reckless' is unknown"),
    ],
)
def test_bad_input_exit_1(capsys, args, pattern):
    code, _out, err = run(capsys, *args)
    assert code == 1
    assert pattern in err
    assert len(err.strip().splitlines()) == 1


def test_bad_yaml_exit_1(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: gre_2d\nte_seconds: 5\n")
    code, _out, err = run(capsys, "check", str(path))
    assert code == 1
    assert "unknown key 'te_seconds'" in err


def test_check_seq_file(capsys, tmp_path):
    from hifield.hardware.scanner import Scanner
    from hifield.sequence import GreProtocol, write_seq

    path = write_seq(GreProtocol(matrix=32, tr_s=0.02, te_s=0.006).build(Scanner.preset("3T")), tmp_path / "g.seq")
    code, out, err = run(capsys, "check", str(path), "--json")
    assert code == 0, err
    assert json.loads(out)["scan_time_s"] == pytest.approx(32 * 0.02)


def test_protocols_lists_every_protocol(capsys):
    from hifield.sequence import protocol_names

    code, out, _ = run(capsys, "protocols", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [e["name"] for e in entries] == list(protocol_names())
    gre = next(e for e in entries if e["name"] == "gre_t1_2d")
    assert gre["te_ms"] == pytest.approx(4.6) and gre["kind"] == "gre_2d"
    code, out, _ = run(capsys, "protocols")
    assert code == 0 and "gre_t1_2d" in out
