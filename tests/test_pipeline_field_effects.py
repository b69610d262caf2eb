"""``scan()`` with the high-field effects: on by default, recorded in the summary, ``ideal`` gives the old images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hifield as hf
from hifield.errors import ConfigError


def small(**changes: object) -> hf.ScanConfig:
    options: dict[str, object] = {"matrix": 48, "recons": ("fft",), "n_calibration": 8, "write_files": False, **changes}
    return hf.ScanConfig(**options)  # type: ignore[arg-type]


def test_ideal_leaves_the_phantom_as_it_was() -> None:
    # --ideal: no B1+ map and the phantom's own off-resonance, so the images are those from before issue 14 (checked
    # against the recorded pre-issue-14 snapshot when this branch was merged)
    from hifield.phantom import make_phantom
    from hifield.sim.field_effects import FieldEffects, apply_field_effects

    phantom = make_phantom("brain", b0_t=7.0, matrix=48)
    ideal, _ = apply_field_effects(phantom, FieldEffects.ideal(), head=True)
    np.testing.assert_array_equal(ideal.off_resonance_hz, phantom.off_resonance_hz)
    assert ideal.b1_scale is None or np.all(np.asarray(ideal.b1_scale) == 1.0)
    on, _ = apply_field_effects(phantom, FieldEffects(), head=True)
    assert not np.array_equal(on.off_resonance_hz, phantom.off_resonance_hz)


def test_field_effects_are_on_by_default_and_recorded() -> None:
    ideal = hf.scan(small(field="7T", ideal=True))
    default = hf.scan(small(field="7T"))
    ptx = hf.scan(small(field="7T", rf_shim="pTx"))
    assert ideal.summary["b1_cov"] == 0.0 and ideal.summary["field_effects"]["ideal"]
    fe = default.summary["field_effects"]
    assert fe["rf_shim"] == "cp" and fe["b0_shim"] == "2nd-order"
    assert default.summary["b1_cov"] > 0.15
    assert default.summary["b0_residual_range_hz"] > 50.0
    assert ptx.summary["b1_cov"] < default.summary["b1_cov"]
    assert ptx.summary["field_effects"]["b1_cov_cp"] == pytest.approx(fe["b1_cov_cp"])
    assert not np.allclose(default.truth, ideal.truth)  # centre brightening and B0 change the image
    n = default.truth.shape[-1]
    ratio = default.truth[0] / np.maximum(ideal.truth[0], 1e-6 * ideal.truth.max())
    centre = float(np.median(ratio[n // 2 - 3 : n // 2 + 3, n // 2 - 3 : n // 2 + 3]))
    side = float(np.median(ratio[n // 2 - 3 : n // 2 + 3, int(0.15 * n) : int(0.15 * n) + 4]))
    # B1+ shading: the centre gets ~1.6x the flip angle (70 deg -> ~110 deg, past the Ernst angle: darker here)
    assert abs(centre - side) > 0.1


@pytest.mark.parametrize(
    ("changes", "needle"), [({"rf_shim": "magic"}, "unknown RF shim"), ({"b0_shim": "3rd"}, "unknown B0 shim")]
)
def test_scan_refuses_unknown_shims(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        small(**changes).validated()


def test_cli_shim_options(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "hifield.cli.main",
                "scan",
                "--matrix",
                "32",
                "--slices",
                "1",
                "--calib",
                "8",
                "--recon",
                "fft",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    proc = run("--field", "7T", "--shim", "pTx", "--b0-shim", "linear", "--json", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    fe = summary["field_effects"]
    assert fe["rf_shim"] == "ptx" and fe["b0_shim"] == "linear"
    assert fe["b1_cov_ptx"] < fe["b1_cov_cp"]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["b1_cov"] == summary["b1_cov"]
    bad = run("--shim", "bogus", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "unknown RF shim" in bad.stderr
