"""Protocol registry and YAML files: round trip, units in keys, one-line errors."""

from __future__ import annotations

import math

import pytest
import yaml

from hifield.errors import ConfigError, FileFormatError
from hifield.sequence import GreProtocol, get_protocol, load_protocol, protocol_names, save_protocol


def test_round_trip_defaults(tmp_path):
    path = save_protocol(GreProtocol(), tmp_path / "gre.yaml")
    assert load_protocol(path) == GreProtocol()


def test_round_trip_changed_values(tmp_path):
    p = GreProtocol(name="mine", te_s=0.0051, tr_s=0.1234, flip_angle_rad=math.radians(25), fov_m=0.2, matrix=192)
    again = load_protocol(save_protocol(p, tmp_path / "p.yaml"))
    assert again.name == "mine"
    assert again.matrix == 192
    for attr in ("te_s", "tr_s", "flip_angle_rad", "fov_m"):
        assert getattr(again, attr) == pytest.approx(getattr(p, attr), rel=1e-11)


def test_file_has_units_in_key_names(tmp_path):
    data = yaml.safe_load(save_protocol(GreProtocol(), tmp_path / "g.yaml").read_text())
    assert data["kind"] == "gre_2d"
    assert data["te_ms"] == pytest.approx(4.6)
    assert data["tr_ms"] == pytest.approx(250)
    assert data["flip_angle_deg"] == pytest.approx(70)
    assert data["fov_mm"] == pytest.approx(240)
    assert data["slice_thickness_mm"] == pytest.approx(5)
    assert data["readout_bandwidth_hz_per_pixel"] == pytest.approx(260)
    assert data["matrix"] == 256
    assert not any(key.endswith("_s") or key.endswith("_rad") or key.endswith("_m") for key in data)


def test_partial_file_takes_defaults(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("kind: gre_2d\nte_ms: 6\nflip_angle_deg: 20\n")
    p = load_protocol(path)
    assert p.te_s == pytest.approx(0.006)
    assert p.flip_angle_rad == pytest.approx(math.radians(20))
    assert p.matrix == 256


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("kind: gre_2d\nte_s: 0.005\n", r"unknown key 'te_s' for kind gre_2d; allowed keys: .*te_ms"),
        ("kind: gre_2d\nte_ms: 0.1\n", r"te_ms = 0.1 is outside the allowed range 0.5 to 1000"),
        ("kind: gre_2d\nfov_mm: 5000\n", r"fov_mm = 5000 is outside the allowed range 10 to 600"),
        ("kind: gre_2d\nmatrix: 100.5\n", r"matrix = 100.5 must be a whole number"),
        ("kind: gre_2d\nflip_angle_deg: ninety\n", r"flip_angle_deg = 'ninety' is not a number"),
        ("kind: spaceship\n", r"kind = 'spaceship' is not a protocol kind; choose one of .*gre_2d"),
        ("te_ms: 5\n", r"kind = None is not a protocol kind"),
        ("- 1\n- 2\n", r"expected a mapping"),
        # unhashable kinds (found by the long text-mutation fuzz profile: a TypeError before)
        ("kind: []\n", r"kind = \[\] is not a protocol kind"),
        ("kind: {a: 1}\n", r"kind = \{'a': 1\} is not a protocol kind"),
    ],
)
def test_bad_files_give_one_line_config_errors(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_protocol(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_malformed_yaml_is_file_format_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: gre_2d\nte_ms: [5\n")
    with pytest.raises(FileFormatError, match="not valid YAML"):
        load_protocol(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read protocol file"):
        load_protocol(tmp_path / "nope.yaml")


def test_registry():
    assert "gre_t1_2d" in protocol_names()
    assert get_protocol("gre_t1_2d") == GreProtocol()
    with pytest.raises(ConfigError, match=r"unknown protocol 'nope'; choose one of .*gre_t1_2d"):
        get_protocol("nope")


def test_save_leaves_no_temporary_file(tmp_path):
    save_protocol(GreProtocol(), tmp_path / "a.yaml")
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]
