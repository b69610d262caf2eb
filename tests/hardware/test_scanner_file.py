"""User scanners from a YAML file, and ``hifield check --scanner file.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hifield.errors import ConfigError
from hifield.hardware import Scanner
from hifield.sequence import check, get_protocol


def test_scanner_file_overrides_the_nearest_preset(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("name: lab 5T\nb0_t: 5.0\nmax_grad_mt_per_m: 60\nn_receive_coils: 8\nbore_diameter_cm: 70\n")
    scanner = Scanner.load(path)
    assert scanner.name == "lab 5T" and scanner.b0_t == 5.0
    assert scanner.gradients.max_grad_t_per_m == pytest.approx(0.060)
    assert scanner.gradients.max_slew_t_per_m_per_s == Scanner.preset("5T").gradients.max_slew_t_per_m_per_s
    assert scanner.receive.n_coils == 8 and scanner.bore_diameter_m == pytest.approx(0.70)
    assert Scanner.resolve(str(path)).name == "lab 5T"


def test_a_weaker_scanner_refuses_what_the_preset_plays(tmp_path: Path) -> None:
    built = get_protocol("gre_t1_2d").build(Scanner.preset("3T"))
    path = tmp_path / "weak.yaml"
    path.write_text("b0_t: 3.0\nmax_grad_mt_per_m: 20\n")
    limits = [v.limit for v in check(built, Scanner.load(path))]
    assert any("gradient amplitude" in limit for limit in limits), limits


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("b0_t: 30\n", "b0_t = 30"),
        ("gmax: 40\n", "unknown key 'gmax'"),
        ("max_slew_t_per_m_per_s: fast\n", "max_slew_t_per_m_per_s"),
        ("- a\n- b\n", "must be a mapping"),
        ("b0_t: [\n", "not valid YAML"),
    ],
)
def test_bad_scanner_files_give_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Scanner.load(path)
    assert needle in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot be read"):
        Scanner.load(tmp_path / "missing.yaml")
