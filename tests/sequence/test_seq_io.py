"""Pulseq .seq files: our sequences write out and read back identically; bad files give one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import FileFormatError, SequenceError
from hifield.hardware.scanner import Scanner
from hifield.sequence import GreProtocol, check
from hifield.sequence.library.tse import TseProtocol
from hifield.sequence.seq_io import load_seq, read_seq, seq_file_version, write_seq

from .helpers import adc_labels


@pytest.fixture(scope="module")
def gre():
    return GreProtocol(matrix=32, tr_s=0.02, te_s=0.006).build(Scanner.preset("3T"), phase_encode_lines=[3, 16, 30])


def assert_same_sequence(a, b):
    assert len(a.block_events) == len(b.block_events)
    np.testing.assert_allclose(list(a.block_durations.values()), list(b.block_durations.values()), atol=1e-12)
    wa, wb = a.waveforms(), b.waveforms()
    for axis in range(3):
        np.testing.assert_allclose(wa[axis], wb[axis], rtol=1e-5, atol=1e-3)  # Hz/m, written with 6-digit precision
    np.testing.assert_allclose(a.adc_times()[0], b.adc_times()[0], atol=1e-12)
    ta, tb = a.rf_times(), b.rf_times()
    np.testing.assert_allclose(ta[0], tb[0], atol=1e-12)
    np.testing.assert_allclose(np.asarray(ta[1]), np.asarray(tb[1]), atol=1e-5)  # phases: 6 digits in the file
    assert adc_labels(a) == adc_labels(b)


def test_write_read_round_trip(tmp_path, gre):
    path = write_seq(gre, tmp_path / "gre.seq")
    assert path.name == "gre.seq"
    assert seq_file_version(path)[:2] == (1, 5)
    again = read_seq(path)
    assert_same_sequence(gre.seq, again)
    # writing what was read gives the identical file
    second = write_seq(again, tmp_path / "again")
    assert second.name == "again.seq"
    assert second.read_text() == path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.seq", "gre.seq"]


def test_tse_round_trip(tmp_path):
    built = TseProtocol(matrix=32, tr_s=0.5, te_s=0.024, echo_spacing_s=0.012, echo_train_length=4).build(
        Scanner.preset("3T")
    )
    assert_same_sequence(built.seq, read_seq(write_seq(built, tmp_path / "tse.seq")))


def test_read_v141_file(tmp_path, gre):
    path = tmp_path / "old.seq"
    gre.seq.write(str(path), v141_compat=True)
    assert seq_file_version(path)[:2] == (1, 4)
    assert_same_sequence(gre.seq, read_seq(path))


def test_loaded_sequence_describes_itself_and_checks(tmp_path, gre):
    loaded = load_seq(write_seq(gre, tmp_path / "gre.seq"))
    np.testing.assert_array_equal(loaded.phase_encode_lines, [3, 16, 30])
    assert loaded.n_readout_samples == 32
    assert loaded.readout_dwell_s == pytest.approx(gre.readout_dwell_s)
    assert loaded.te_s == pytest.approx(gre.te_s, abs=1e-6)
    assert loaded.tr_s == pytest.approx(gre.tr_s, abs=1e-9)
    assert loaded.flip_angle_rad == pytest.approx(gre.flip_angle_rad, rel=1e-4)
    assert loaded.duration_s == pytest.approx(gre.duration_s)
    assert check(loaded, Scanner.preset("3T")) == []
    assert {v.limit for v in check(loaded, Scanner.preset("1.5T").replace(gradients=_weak()))} >= {"slew rate on x"}


def _weak():
    import dataclasses

    return dataclasses.replace(Scanner.preset("1.5T").gradients, max_slew_t_per_m_per_s=20.0)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("hello\n", "not a Pulseq .seq file"),
        ("[VERSION]\nmajor 1\nminor 2\nrevision 0\n", "Pulseq format 1.2; supported: 1.4, 1.5"),
        ("[VERSION]\nmajor 1\nminor 5\nrevision 0\n\n[BLOCKS]\n1 1 1 0 0 0 0 0\n", "malformed Pulseq file"),
    ],
)
def test_bad_files(tmp_path, text, pattern):
    path = tmp_path / "bad.seq"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=pattern) as info:
        read_seq(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="cannot read sequence file"):
        read_seq(tmp_path / "none.seq")


def test_sequence_without_adc_is_refused():
    import pypulseq as pp

    from hifield.sequence.seq_io import built_from_seq

    seq = pp.Sequence()
    seq.add_block(pp.make_delay(1e-3))
    with pytest.raises(SequenceError, match="no ADC"):
        built_from_seq(seq)


def test_adc_times_shorter_than_the_first_readout_give_no_index_error(tmp_path, gre, monkeypatch):
    # a fuzzed file on which pypulseq's adc_times() returned fewer sample times than the first ADC's sample count
    # (the input was not kept): TE then comes from the file's definitions, or is 0, instead of an IndexError
    from hifield.sequence.seq_io import built_from_seq

    seq = read_seq(write_seq(gre, tmp_path / "gre.seq"))
    seq.definitions.pop("TE", None)
    monkeypatch.setattr(seq, "adc_times", lambda *a, **k: (np.zeros(3), np.zeros((3, 2))))
    assert built_from_seq(seq).te_s == 0.0


def test_golden_seq_file(tmp_path):
    """A small GRE written today matches the stored file byte for byte (regenerate with HIFIELD_SAVE_EXPECTED=1)."""
    import os
    from pathlib import Path

    golden = Path(__file__).parent / "expected" / "gre_small.seq"
    built = GreProtocol(matrix=16, tr_s=0.02, te_s=0.006).build(Scanner.preset("3T"), phase_encode_lines=[0, 8, 15])
    written = write_seq(built, tmp_path / "gre_small.seq")
    if os.environ.get("HIFIELD_SAVE_EXPECTED") == "1":
        golden.write_text(written.read_text())
    assert golden.exists(), "golden missing: run with HIFIELD_SAVE_EXPECTED=1 once"
    assert written.read_text() == golden.read_text()
    assert_same_sequence(read_seq(golden), built.seq)


@pytest.mark.parametrize("name", ["mprage_3d", "flair_2d", "tse_t2_2d", "gre_t1_2d"])
def test_seq_file_reports_the_excitation_flip_angle(tmp_path, name):
    """The flip angle of a read .seq is its first excitation's: not a preparation inversion (FLAIR), and a block
    pulse (MPRAGE's time-shaped hard pulses) integrated as a time shape, not as a raster."""
    from hifield.sequence import get_protocol

    built = get_protocol(name).with_changes(matrix=32).build(Scanner.preset("3T"))
    loaded = load_seq(write_seq(built, tmp_path / f"{name}.seq"))
    assert np.degrees(loaded.flip_angle_rad) == pytest.approx(np.degrees(built.flip_angle_rad), abs=0.1)


def test_rf_facts_reads_flip_centre_and_use():
    import math

    import pypulseq as pp

    from hifield.sequence.events import rf_facts

    rf = pp.make_block_pulse(math.pi, duration=2e-3, delay=1e-4, use="inversion")
    facts = rf_facts(rf)
    assert math.degrees(facts.flip_rad) == pytest.approx(180.0, abs=1e-6)
    assert facts.centre_s == pytest.approx(1e-4 + 1e-3, abs=1e-9) and facts.use == "inversion"


def test_a_parse_that_never_ends_is_stopped_by_the_watchdog(tmp_path, gre, monkeypatch):
    # defence behind the validator: should pypulseq loop on a file that passed validation, the read still ends
    import signal
    import time

    import pypulseq as pp

    path = write_seq(gre, tmp_path / "gre.seq")

    def spin(self, *args, **kwargs):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(pp.Sequence, "read", spin)
    monkeypatch.setenv("HIFIELD_SEQ_READ_LIMIT_S", "0.3")
    before = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(FileFormatError, match=r"gre\.seq.*did not finish reading it in 0\.3 s"):
        read_seq(path)
    assert time.perf_counter() - start < 5
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    monkeypatch.setenv("HIFIELD_SEQ_READ_LIMIT_S", "soon")
    with pytest.raises(FileFormatError, match="HIFIELD_SEQ_READ_LIMIT_S"):
        read_seq(path)
