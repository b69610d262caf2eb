"""Every 2D protocol family plays a stack of slices: positions, interleaved order, labels, timing and SAR."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence import assess, check_timing, get_protocol
from hifield.sequence.library import PROTOCOL_TABLE
from hifield.sequence.protocol import SliceProtocol

from .helpers import adc_labels

SLICE_NAMES = [name for name, make in PROTOCOL_TABLE.items() if isinstance(make(), SliceProtocol)]


def _small(name: str, n_slices: int):
    p = get_protocol(name)
    changes = {"matrix": 32, "n_slices": n_slices, "slice_gap_m": 0.001}
    if p.KIND != "bssfp_2d":  # bSSFP keeps its TR: its slices follow one another
        changes["tr_s"] = min(p.tr_s * n_slices, 20.0)
    if hasattr(p, "n_interleaves"):
        changes["n_interleaves"] = 4
    return p.with_changes(**changes)


def _rf_z(built) -> list[float]:
    """Slice position [m] of every slice-selective RF pulse, from its frequency offset and slice-select gradient."""
    out = []
    for block_id in built.seq.block_events:
        block = built.seq.get_block(block_id)
        if block.rf is not None and block.gz is not None:
            out.append(block.rf.freq_offset / block.gz.amplitude)
    return out


def test_every_2d_family_is_listed():
    kinds = {get_protocol(n).KIND for n in SLICE_NAMES}
    assert kinds >= {"gre_2d", "bssfp_2d", "epi_2d", "radial_2d", "spiral_2d", "se_2d", "tse_2d", "ir_tse_2d"}


@pytest.mark.parametrize("name", SLICE_NAMES)
def test_stack_plays_every_slice(name):
    scanner = Scanner.preset("3T")
    p = _small(name, 3)
    built = p.build(scanner)
    check_timing(built)
    d = p.slice_thickness_m + 0.001
    np.testing.assert_allclose(built.slice_positions_m, [-d, 0.0, d])
    slc = [lab["SLC"] for lab in adc_labels(built.seq)]
    assert sorted(set(slc)) == [0, 1, 2]
    assert slc.count(0) == slc.count(1) == slc.count(2)
    # every RF pulse sits on one of the slices, and every slice is excited
    z = np.asarray(_rf_z(built))
    nearest = np.abs(z[:, None] - built.slice_positions_m[None, :]).min(axis=1)
    assert nearest.max() < 1e-9
    assert {round(v, 6) for v in z} == {round(-d, 6), 0.0, round(d, 6)}
    # slice order within a TR (or, for bSSFP, of the whole stack) is interleaved: 0, 2, 1
    first_seen = list(dict.fromkeys(slc))
    assert first_seen == [0, 2, 1]


@pytest.mark.parametrize("name", SLICE_NAMES)
def test_one_slice_stack_is_the_single_slice_sequence(name):
    scanner = Scanner.preset("3T")
    p = _small(name, 1)
    a = p.build(scanner)
    b = p.with_changes(n_slices=1, slice_gap_m=0.0).build(scanner)
    assert a.duration_s == b.duration_s
    assert [lab.get("SLC", 0) for lab in adc_labels(a.seq)] == [0] * len(adc_labels(a.seq))
    assert all(abs(v) < 1e-12 for v in _rf_z(a))


@pytest.mark.parametrize("name", [n for n in SLICE_NAMES if get_protocol(n).KIND != "bssfp_2d"])
def test_stack_rf_energy_scales_with_slices(name):
    """Interleaved families: same TR, three times the slices -> three times the SAR (whole stack counted)."""
    scanner = Scanner.preset("3T")
    three = _small(name, 3)
    one = three.with_changes(n_slices=1)
    sar1 = assess(one.build(scanner), scanner).sar_head_6min_w_per_kg
    sar3 = assess(three.build(scanner), scanner).sar_head_6min_w_per_kg
    assert sar3 == pytest.approx(3 * sar1, rel=0.02)
