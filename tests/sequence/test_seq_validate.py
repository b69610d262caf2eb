"""Hostile ``.seq`` files are refused with one FileFormatError line before pypulseq reads them (no hang, no OOM)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hifield.errors import FileFormatError
from hifield.hardware import Scanner
from hifield.sequence import get_protocol, load_seq, read_seq, write_seq
from hifield.sequence.seq_validate import MAX_ADC_SAMPLES, validate_seq_file


@pytest.fixture(scope="module")
def good_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    built = get_protocol("gre_t1_2d").with_changes(matrix=16).build(Scanner.preset("3T"), phase_encode_lines=[3, 8])
    path = write_seq(built, tmp_path_factory.mktemp("seq") / "good.seq")
    return path.read_text()


def _section_row(text: str, section: str, index: int = 0) -> str:
    """The ``index``-th row of a table section."""
    body = text.split(section + "\n", 1)[1]
    rows = [line for line in body.split("\n") if line.strip() and not line.startswith("#")]
    return rows[index]


def _cut_in_shapes(text: str) -> str:
    start = text.index("[SHAPES]")
    lines = text[start:].split("\n")
    return text[:start] + "\n".join(lines[:8]) + "\n"  # inside the first shape's samples


def _adc_samples(n: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        row = _section_row(text, "[ADC]")
        fields = row.split()
        fields[1] = n
        return text.replace(row + "\n", " ".join(fields) + "\n")

    return mutate


def _block_duration(text: str) -> str:
    row = _section_row(text, "[BLOCKS]")
    fields = row.split()
    fields[1] = "-" + fields[1]
    return text.replace(row + "\n", " ".join(fields) + "\n", 1)


def _raster(value: str) -> Callable[[str], str]:
    return lambda text: re.sub(r"BlockDurationRaster \S+", f"BlockDurationRaster {value}", text)


def _drop_extension_row(text: str) -> str:
    row = _section_row(text, "[EXTENSIONS]", 2)
    return text.replace("\n" + row + "\n", "\n", 1)


CASES: dict[str, tuple[Callable[[str], str], str]] = {
    "cut inside [SHAPES]": (_cut_in_shapes, "cut short"),
    "ADC of 1e8 samples": (_adc_samples("100000000"), f"more than the {MAX_ADC_SAMPLES} allowed"),
    "ADC of 0 samples": (_adc_samples("0"), "below 1"),
    "negative block duration": (_block_duration, "below 0"),
    "negative raster": (_raster("-1e-05"), "BlockDurationRaster"),
    "NaN raster": (_raster("nan"), "BlockDurationRaster"),
    "missing [EXTENSIONS] row": (_drop_extension_row, "EXT event"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_seq_is_refused_in_one_line(case: str, good_text: str, tmp_path: Path) -> None:
    mutate, words = CASES[case]
    path = tmp_path / "bad.seq"
    path.write_text(mutate(good_text))
    with pytest.raises(FileFormatError, match=re.escape(words)) as info:
        validate_seq_file(path)
    assert "\n" not in str(info.value)
    assert "malformed Pulseq file" in str(info.value)


def test_good_file_passes(good_text: str, tmp_path: Path) -> None:
    path = tmp_path / "good.seq"
    path.write_text(good_text)
    facts = validate_seq_file(path)
    assert facts.version == (1, 5) and facts.max_adc_samples == 16 and facts.total_adc_samples == 32
    assert load_seq(path).n_readout_samples == 16


def test_file_without_final_blank_line_after_shapes_is_refused(good_text: str, tmp_path: Path) -> None:
    """pypulseq loops forever on a file that ends right after shape samples (it reads the end as -1 forever)."""
    text = good_text.split("\n[SIGNATURE]")[0].rstrip("\n") + "\n"
    path = tmp_path / "nosig.seq"
    path.write_text(text)
    with pytest.raises(FileFormatError, match="cut short"):
        read_seq(path)
    path.write_text(text + "\n")  # with the blank line it is complete
    assert read_seq(path).block_events


@pytest.mark.parametrize("case", ["cut inside [SHAPES]", "ADC of 1e8 samples", "missing [EXTENSIONS] row"])
def test_check_and_simulate_refuse_the_same_file_with_exit_1(case: str, good_text: str, tmp_path: Path) -> None:
    """Run as a user would, with a time limit: before validation the cut file hung and the big ADC ran out of memory."""
    path = tmp_path / "bad.seq"
    path.write_text(CASES[case][0](good_text))
    codes = []
    for args in (["check", str(path)], ["simulate", "--seq", str(path), "--out", str(tmp_path / "o.h5")]):
        proc = subprocess.run(
            [sys.executable, "-m", "hifield.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
        )
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "malformed Pulseq file" in lines[0], proc.stderr
        codes.append(proc.returncode)
    assert codes == [1, 1]
    assert not (tmp_path / "o.h5").exists()
