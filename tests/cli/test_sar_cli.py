"""``hifield scan``: a 7 T TSE stack over the head SAR limit exits 2 naming what would pass; ``--adapt`` scans it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Runner = Callable[..., subprocess.CompletedProcess[str]]

TSE_STACK = """kind: tse_2d
name: tse_stack
matrix: 32
n_slices: 12
tr_ms: 3000
te_ms: 48
echo_train_length: 8
echo_spacing_ms: 12
"""


def test_7t_tse_stack_refused_then_adapted(hifield_cli: Runner, tmp_path: Path) -> None:
    protocol = tmp_path / "tse_stack.yaml"
    protocol.write_text(TSE_STACK)
    args = ["scan", "--field", "7T", "--protocol", str(protocol), "--recon", "fft", "--calib", "8"]
    refused = hifield_cli(*args, "--out", str(tmp_path / "refused"))
    assert refused.returncode == 2, refused.stderr
    assert "head SAR (6 min)" in refused.stderr and "> 3.2 W/kg: raise TR to" in refused.stderr
    assert "slices" in refused.stderr and not (tmp_path / "refused").exists()
    adapted = hifield_cli(*args, "--adapt", "--out", str(tmp_path / "adapted"))
    assert adapted.returncode == 0, adapted.stderr
    summary = json.loads((tmp_path / "adapted" / "summary.json").read_text())
    record = summary["sar_adaptation"]
    assert record["limit"] == "head SAR (6 min)" and record["sar_after_w_per_kg"] <= 3.2
    assert record["applied"] in record["suggestions"]
    assert "adapted (lower the" in adapted.stdout + adapted.stderr
    import pydicom

    files = sorted((tmp_path / "adapted" / "dicom" / "fft").glob("*.dcm"))
    for file in files:  # every instance says what --adapt changed
        comments = str(pydicom.dcmread(file, stop_before_pixels=True).ImageComments)
        assert "[SAR adapted: head SAR (6 min)" in comments and f"{record['parameter']} " in comments
    assert files


def test_protocols_lists_per_field_defaults_with_sources(hifield_cli: Runner) -> None:
    entries = {}
    for field in ("1.5T", "7T"):
        done = hifield_cli("protocols", "--scanner", field, "--json")
        assert done.returncode == 0, done.stderr
        entries[field] = {e["name"]: e for e in json.loads(done.stdout)}
    for field, by_name in entries.items():
        for name, tissue in (("flair_2d", "csf"), ("stir_2d", "fat")):
            note = {n["parameter"]: n for n in by_name[name]["field_defaults"]}["ti_ms"]
            assert note["value"] == by_name[name]["ti_ms"], field
            assert f"nulls {tissue}" in note["reason"] and note["source"]
    # 7 T: the bandwidth keeps the fat shift (-3.4 ppm, 1011 Hz) at 1.5 px or less; the T1 GRE flip follows the
    # Ernst angle of white matter (longer T1 at 7 T: a smaller flip); 1.5 T: 260 Hz/px already keeps 1.5 px
    gre7 = {n["parameter"]: n for n in entries["7T"]["gre_t1_2d"]["field_defaults"]}
    assert (
        gre7["readout_bandwidth_hz_per_pixel"]["value"] == entries["7T"]["gre_t1_2d"]["readout_bandwidth_hz_per_pixel"]
    )
    assert (
        1011 / gre7["readout_bandwidth_hz_per_pixel"]["value"] <= 1.5
        and "Hamilton" in gre7["readout_bandwidth_hz_per_pixel"]["source"]
    )
    assert gre7["flip_angle_deg"]["value"] < 70.0 and "Ernst" in gre7["flip_angle_deg"]["source"]
    gre15 = {n["parameter"]: n for n in entries["1.5T"]["gre_t1_2d"]["field_defaults"]}
    assert "readout_bandwidth_hz_per_pixel" not in gre15 and gre15["flip_angle_deg"]["value"] > 70.0
    assert entries["7T"]["stir_2d"]["ti_ms"] > entries["1.5T"]["stir_2d"]["ti_ms"] + 30  # fat T1 343 -> 423 ms
    text = hifield_cli("protocols", "--scanner", "7T").stdout
    assert "stir_2d: ti_ms = " in text and "de Bazelaire" in text
