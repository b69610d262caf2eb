"""A .seq file without LIN labels is Cartesian when its readouts lie on a Cartesian grid (issue 19)."""

from __future__ import annotations

import math

import numpy as np
import pypulseq as pp
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence.seq_io import load_seq

from .community import community_flash, community_system


def _load(seq, tmp_path, name="f"):
    path = tmp_path / f"{name}.seq"
    seq.write(str(path))
    return load_seq(path)


@pytest.mark.parametrize("order", ["linear", "reversed", "centre_out"])
def test_unlabelled_cartesian_file_is_cartesian_with_lines_from_the_phase_encode_areas(tmp_path, order):
    plain = _load(community_flash(32, order=order), tmp_path, "plain")
    labelled = _load(community_flash(32, order=order, labels=True), tmp_path, "labelled")
    assert plain.trajectory == labelled.trajectory == "cartesian"
    assert plain.phase_encode_lines.tolist() == labelled.phase_encode_lines.tolist()
    expected = {"linear": list(range(32)), "reversed": list(range(31, -1, -1))}.get(order)
    if expected is not None:
        assert plain.phase_encode_lines.tolist() == expected
    else:
        assert plain.phase_encode_lines[:3].tolist() == [16, 15, 17]


def test_file_without_fov_definition_takes_it_from_the_readout_step(tmp_path):
    seq = community_flash(32)
    seq.definitions.pop("FOV")
    built = _load(seq, tmp_path)
    assert built.trajectory == "cartesian"
    assert built.protocol.fov_m == pytest.approx(0.256, rel=1e-6)
    assert built.phase_encode_lines.tolist() == list(range(32))


def _radial(n: int = 32, n_spokes: int = 24, *, spiral: bool = False) -> pp.Sequence:
    system = community_system()
    seq = pp.Sequence(system)
    fov = 0.256
    rf = pp.make_block_pulse(math.radians(10), duration=0.5e-3, system=system, delay=system.rf_dead_time)
    gx = pp.make_trapezoid("x", flat_area=n / fov, flat_time=2e-3, system=system)
    gx_pre = pp.make_trapezoid("x", area=-gx.area / 2, duration=1e-3, system=system)
    adc = pp.make_adc(num_samples=n, duration=gx.flat_time, delay=gx.rise_time, system=system)
    for i in range(n_spokes):
        phi = math.pi * i / n_spokes
        seq.add_block(rf)
        if spiral:
            t = np.arange(200) * system.grad_raster_time
            amp = 2e5 * np.sin(np.pi * (t + t[1] / 2) / (t[-1] + t[1]))  # Hz/m: a spiral in and out
            g1 = pp.make_arbitrary_grad("x", amp * np.cos(1.5e4 * t + phi), system=system, first=0, last=0)
            g2 = pp.make_arbitrary_grad("y", amp * np.sin(1.5e4 * t + phi), system=system, first=0, last=0)
            adc_s = pp.make_adc(num_samples=n, duration=1.92e-3, delay=20e-6, system=system)
            seq.add_block(g1, g2, adc_s)
        else:
            seq.add_block(*pp.rotate(gx_pre, angle=phi, axis="z"))
            seq.add_block(*pp.rotate(gx, adc, angle=phi, axis="z"))
        seq.add_block(pp.make_delay(5e-3))
    seq.set_definition("FOV", [fov, fov, 3e-3])
    return seq


@pytest.mark.parametrize("spiral", [False, True], ids=["radial", "spiral"])
def test_non_cartesian_file_stays_non_cartesian(tmp_path, spiral):
    built = _load(_radial(spiral=spiral), tmp_path)
    assert built.trajectory == "unknown"


def test_unlabelled_cartesian_file_simulates_as_the_labelled_one(tmp_path):
    """The fast engine takes the Cartesian path for both, with identical k-space."""
    from hifield.phantom import make_phantom
    from hifield.sim import simulate

    scanner = Scanner.preset("3T").with_receive_coils(2)
    phantom = make_phantom("shepp-logan", b0_t=3.0, matrix=32, fov_m=0.256, oversampling=2)
    raws = [
        simulate(
            phantom,
            _load(community_flash(32, order="centre_out", labels=lab), tmp_path, str(lab)),
            scanner,
            noise=False,
        )
        for lab in (False, True)
    ]
    assert raws[0].trajectory is None and raws[0].header.trajectory == "cartesian"
    np.testing.assert_allclose(raws[0].kspace, raws[1].kspace, rtol=0, atol=1e-6 * np.abs(raws[1].kspace).max())


@pytest.mark.parametrize("n", [64, 128])
def test_larger_matrices_are_detected(tmp_path, n):
    """With an even sample count kx = 0 falls between the two centre samples, half a step from each."""
    built = _load(community_flash(n), tmp_path)
    assert built.trajectory == "cartesian"
    assert built.phase_encode_lines.tolist() == list(range(n))


@pytest.mark.parametrize("thickness_m", [3e-3, 8e-3])
def test_file_without_slice_definitions_takes_the_thickness_its_excitation_plays(tmp_path, thickness_m):
    """RF bandwidth / slice-select gradient, not a 5 mm default (the community FLASH plays 3 mm)."""
    seq = community_flash(16, slice_thickness_m=thickness_m)
    seq.definitions.pop("FOV")
    built = _load(seq, tmp_path)
    assert built.protocol.slice_thickness_m == pytest.approx(thickness_m, rel=0.01)


def test_slice_thickness_comes_from_the_definition_then_from_the_third_fov_entry(tmp_path):
    declared = _load(community_flash(16, slice_thickness_m=3e-3), tmp_path, "fov")  # FOV = [fov, fov, 3 mm]
    assert declared.protocol.slice_thickness_m == 3e-3
    seq = community_flash(16, slice_thickness_m=3e-3)
    seq.set_definition("SliceThickness", 2.5e-3)
    assert _load(seq, tmp_path, "defined").protocol.slice_thickness_m == 2.5e-3


def test_rf_bandwidth_of_a_hard_pulse_is_the_analytic_sinc_width():
    """The spectrum of a 1 ms rectangle is |sinc(f T)|: half maximum at f T = 0.60335, FWHM 1206.7 Hz."""
    from hifield.sequence.events import rf_bandwidth_hz

    system = community_system()
    rf = pp.make_block_pulse(math.radians(5), duration=1e-3, system=system, delay=system.rf_dead_time)
    assert rf_bandwidth_hz(rf) == pytest.approx(2 * 0.60335 / 1e-3, rel=0.005)


def test_non_selective_excitation_keeps_the_5_mm_default(tmp_path):
    system = community_system()
    seq = pp.Sequence(system)
    seq.add_block(pp.make_block_pulse(math.radians(10), duration=0.5e-3, system=system, delay=system.rf_dead_time))
    seq.add_block(pp.make_adc(num_samples=16, duration=1e-3, system=system, delay=system.adc_dead_time))
    built = _load(seq, tmp_path)
    assert built.protocol.slice_thickness_m == 0.005
