"""hifield's k-space integration and RF times against pypulseq's, and a `.seq` load that stays light (issue 19)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence.kspace import adc_kspace, gradient_moment, rf_event_times
from hifield.sequence.protocol_io import get_protocol

from .community import community_flash

# one protocol per way of moving through k-space: spoiled GRE, balanced SSFP, spin echo and TSE (refocusing mirrors
# k), inversion recovery (an inversion neither excites nor refocuses), EPI (gradient and spin echo), radial, spiral
PROTOCOLS = ["gre_t1_2d", "bssfp_2d", "se_t1_2d", "tse_t2_2d", "flair_2d", "epi_gre_2d", "epi_se_2d", "radial_gre_2d"]


def _library_seq(name: str, matrix: int = 32):
    protocol = get_protocol(name)
    return dataclasses.replace(protocol, matrix=matrix).build(Scanner.preset("3T")).seq


@pytest.mark.parametrize("name", PROTOCOLS)
def test_adc_kspace_equals_pypulseq_calculate_kspace(name):
    seq = _library_seq(name)
    reference = np.asarray(seq.calculate_kspace()[0])
    ours = adc_kspace(seq)
    assert ours.shape == reference.shape
    scale = float(np.abs(reference).max())
    assert scale > 0
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-7 * scale)


def test_adc_kspace_equals_pypulseq_on_a_spiral_and_on_the_community_flash():
    for seq in (_library_seq("spiral_vd_2d"), community_flash(24, order="centre_out")):
        reference = np.asarray(seq.calculate_kspace()[0])
        np.testing.assert_allclose(adc_kspace(seq), reference, rtol=0, atol=1e-7 * float(np.abs(reference).max()))


@pytest.mark.parametrize("name", ["se_t1_2d", "flair_2d", "gre_t1_2d"])
def test_rf_event_times_equal_pypulseq_rf_times(name):
    seq = _library_seq(name, matrix=16)
    t_excitation, _, t_refocusing, _ = seq.rf_times()
    ours_excitation, ours_refocusing = rf_event_times(seq)
    np.testing.assert_allclose(ours_excitation, t_excitation, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours_refocusing, t_refocusing, rtol=0, atol=1e-12)
    assert ours_excitation.size > 0


def test_gradient_moment_of_one_trapezoid_is_its_area_at_known_times():
    import pypulseq as pp

    seq = pp.Sequence()
    trap = pp.make_trapezoid("y", amplitude=1000.0, rise_time=1e-4, flat_time=1e-3, fall_time=2e-4)  # [Hz/m], [s]
    seq.add_block(trap)
    times = np.array([0.0, 0.5e-4, 1e-4, 0.6e-3, 1.1e-3, 1.3e-3, 2e-3])
    expected = np.array([0.0, 0.5 * 1000 * 0.5e-4 * 0.5, 0.05, 0.05 + 0.5, 0.05 + 1.0, 0.05 + 1.0 + 0.1, 1.15])
    moment = gradient_moment(seq, times)
    np.testing.assert_allclose(moment[1], expected, rtol=1e-12, atol=1e-12)
    assert not moment[[0, 2]].any()


def test_reading_a_seq_file_loads_neither_matplotlib_nor_scipy_signal_or_interpolate(tmp_path):
    """pypulseq's plotting and spectrum modules load only when used; they still work when they are."""
    path = tmp_path / "flash.seq"
    community_flash(32).write(str(path))
    code = f"""
import json, sys
from hifield.sequence.seq_io import load_seq
built = load_seq({str(path)!r})
heavy = ("matplotlib", "matplotlib.pyplot", "scipy.signal", "scipy.interpolate")
before = [m for m in heavy if m in sys.modules]
import pypulseq
k = built.seq.calculate_kspace()[0]          # scipy.interpolate.PPoly, loaded now
from pypulseq.Sequence import parula
cmap = parula.main(8)                        # matplotlib.colors.LinearSegmentedColormap.from_list
built.seq.plot(plot_now=False)               # matplotlib.pyplot (Agg)
print(json.dumps({{"before": before, "k": list(k.shape), "cmap": type(cmap).__name__,
                  "plt": type(sys.modules["matplotlib.pyplot"]).__name__, "lines": built.phase_encode_lines.size}}))
"""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["before"] == []
    assert out["k"] == [3, 32 * 32]
    assert out["cmap"] == "LinearSegmentedColormap"
    assert out["plt"] == "module"
    assert out["lines"] == 32


def test_a_later_plain_import_of_scipy_signal_is_the_real_module():
    code = """
import json, sys
from hifield._pypulseq import import_pypulseq
pp = import_pypulseq()
import scipy.signal
from scipy.interpolate import PPoly
print(json.dumps([type(sys.modules["scipy.signal"]).__name__, hasattr(scipy.signal, "spectrogram"),
                  isinstance(PPoly, type), pp.Sequence.__name__]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["module", True, True, "Sequence"]
