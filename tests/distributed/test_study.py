"""Study files: axes expand to their Cartesian product, exams are named by a content hash, bad files are refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from hifield.distributed import Exam, load_study, study_from_dict
from hifield.errors import ConfigError


def test_axes_expand_to_their_cartesian_product_then_the_explicit_list(tiny: Any) -> None:
    spec = tiny(exams=[{"field": "7T", "acceleration": 4, "seed": 3}])
    spec["axes"]["seeds"] = [0, 1]
    study = study_from_dict(spec)
    assert len(study.exams) == 2 * 2 * 2 + 1
    assert [(e.field, e.acceleration, e.seed) for e in study.exams[:3]] == [
        ("1.5T", 2.0, 0),
        ("1.5T", 2.0, 1),
        ("1.5T", 3.0, 0),
    ]
    last = study.exams[-1]
    assert (last.field, last.acceleration, last.seed, last.matrix, last.recons) == ("7T", 4.0, 3, 64, ("fft", "sense"))
    assert len({e.exam_id for e in study.exams}) == len(study.exams)


def test_duplicate_exams_run_once_and_split_methods_gives_one_exam_per_method(tiny: Any) -> None:
    spec = tiny(exams=[{"field": "3T", "acceleration": 3}])  # already in the product
    assert len(study_from_dict(spec).exams) == 4
    split = study_from_dict(tiny(split_methods=True))
    assert len(split.exams) == 8
    assert sorted({e.recons for e in split.exams}) == [("fft",), ("sense",)]


def test_the_hash_depends_on_every_input_and_on_a_protocol_file_by_content(tmp_path: Path, examples: Path) -> None:
    base = Exam(matrix=64, seed=1)
    assert base.exam_id == Exam(matrix=64, seed=1).exam_id
    others = [Exam(matrix=64, seed=2), Exam(matrix=96, seed=1), Exam(matrix=64, seed=1, recons=("fft",))]
    assert len({base.exam_id, *(e.exam_id for e in others)}) == 4
    first = tmp_path / "a" / "p.yaml"
    first.parent.mkdir()
    shutil.copy(examples / "bssfp_flip60.yaml", first)
    moved = tmp_path / "b.yaml"
    shutil.copy(first, moved)
    assert Exam(protocol=str(first)).exam_id == Exam(protocol=str(moved)).exam_id
    moved.write_text(moved.read_text().replace("flip_angle_deg: 60.0", "flip_angle_deg: 50.0"))
    assert Exam(protocol=str(first)).exam_id != Exam(protocol=str(moved)).exam_id


def test_the_example_study_loads_with_its_protocol_file_beside_it(examples: Path) -> None:
    study = load_study(examples / "study.yaml")
    assert len(study.exams) == 18
    files = {e.protocol for e in study.exams if e.protocol.endswith(".yaml")}
    assert files == {str(examples / "bssfp_flip60.yaml")}
    assert study.out == Path("study_out")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"axes": {"fieldz": ["3T"]}}, "unknown axis 'fieldz'"),
        ({"axis": {"fields": ["3T"]}}, "unknown key 'axis'"),
        ({"fixed": {"matrx": 64}, "axes": {"fields": ["3T"]}}, "unknown option 'matrx'"),
        ({"axes": {"accelerations": [2, 0.5]}}, "exam 2: acceleration must be a number >= 1"),
        ({"methods": ["fft", "magic"], "axes": {"fields": ["3T"]}}, "unknown reconstruction magic"),
        ({"axes": {"seeds": []}}, "axis 'seeds' is empty"),
        ({"name": "empty"}, "the study has no exams"),
        ({"axes": {"fields": ["3T"]}, "retries": -1}, "retries must be an integer >= 0"),
    ],
)
def test_bad_study_files_are_refused_in_one_line(spec: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        study_from_dict(spec, source="s.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("s.yaml")


def test_a_missing_or_broken_study_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_study(bad)


def test_slice_stacks_and_field_options_are_exam_inputs(tmp_path: Path) -> None:
    study = study_from_dict(
        {
            "name": "stack",
            "out": str(tmp_path),
            "fixed": {"matrix": 32, "slice_thickness_m": 0.004, "ideal": False},
            "axes": {"slices": [1, 3], "shims": ["cp", "pTx"]},
        }
    )
    exams = study.exams
    assert {(e.n_slices, e.rf_shim) for e in exams} == {(1, "cp"), (1, "pTx"), (3, "cp"), (3, "pTx")}
    assert len({e.exam_id for e in exams}) == 4
    config = exams[0].scan_config(tmp_path / "x")
    assert config.slice_thickness_m == 0.004 and config.n_slices in (1, 3) and config.rf_shim in ("cp", "pTx")
    assert Exam(ideal=True).exam_id != Exam().exam_id
