"""Sequence zoo: every library protocol at its defaults builds on every preset and passes every check."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence import check, check_timing, get_protocol, protocol_names
from hifield.sequence.checks import gradient_waveforms
from hifield.sequence.safety import _pns_at_slew_changes, _pns_on_raster_grid, pns_percent
from hifield.sequence.safety_models import pns_coil_for
from hifield.units import GAMMA_BAR_HZ_PER_T

HEAVY = {"gre_t1_3d", "mprage_3d"}  # tens of thousands of blocks: pypulseq's own timing check alone takes ~10 s
PRESETS = ["1.5T", "3T", "5T", "7T"]


def zoo_cases():
    for name in protocol_names():
        for preset in PRESETS:
            slow = name in HEAVY or preset != "3T"
            yield pytest.param(name, preset, marks=[pytest.mark.slow] if slow else [], id=f"{name}-{preset}")


@pytest.mark.parametrize(("name", "preset"), list(zoo_cases()))
def test_protocol_defaults_pass_every_check(name, preset):
    scanner = Scanner.preset(preset)
    built = get_protocol(name).build(scanner)
    check_timing(built)
    assert check(built, scanner) == [], name
    assert built.duration_s > 0
    assert built.seq.adc_times()[0].size > 0


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_protocols_build_a_few_lines_quickly(name):
    scanner = Scanner.preset("3T")
    protocol = get_protocol(name)
    built = protocol.build(scanner, phase_encode_lines=range(0, protocol.matrix, 16), partition_lines=[0, 10, 31])
    check_timing(built)
    assert check(built, scanner) == []
    assert built.partition_lines.tolist() == [0, 10, 31]


def test_every_protocol_has_a_distinct_name_and_kind_round_trips(tmp_path):
    from hifield.sequence import load_protocol, save_protocol

    names = protocol_names()
    assert len(names) == len(set(names)) >= 12
    for name in names:
        protocol = get_protocol(name)
        assert load_protocol(save_protocol(protocol, tmp_path / f"{name}.yaml")) == protocol


def test_fast_waveforms_match_pypulseq():
    built = get_protocol("tse_t2_2d").build(Scanner.preset("3T"), phase_encode_lines=range(0, 256, 8))
    ours = gradient_waveforms(built.seq)
    ref = built.seq.waveforms()
    grid = np.linspace(0, built.duration_s, 100001)
    for axis in range(3):
        r = np.asarray(ref[axis])
        a = np.interp(grid, ours[axis][0], ours[axis][1])
        b = np.interp(grid, r[0], r[1] / GAMMA_BAR_HZ_PER_T)
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_pns_methods_agree():
    built = get_protocol("epi_gre_segmented_2d").build(Scanner.preset("3T"))
    waves = gradient_waveforms(built.seq)
    coil = pns_coil_for(3.0)
    raster = 1e-5
    grid = _pns_on_raster_grid(waves, coil.chronaxie_s, raster, built.duration_s)
    changes = _pns_at_slew_changes(waves, coil.chronaxie_s)
    peak_grid = np.sqrt((grid**2).sum(axis=0)).max()
    peak_changes = np.sqrt((changes**2).sum(axis=0)).max()
    assert peak_grid == pytest.approx(peak_changes, rel=1e-6)
    assert pns_percent(built.seq, coil)[0] == pytest.approx(100 * peak_grid / coil.min_slew_t_per_m_per_s)
