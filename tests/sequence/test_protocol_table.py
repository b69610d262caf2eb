"""The protocol layer: one typed ImagingProtocol base, an explicit protocol table, no import side effects."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import math
import pkgutil
import typing
from pathlib import Path

import pytest

import hifield.sequence.library as library
from hifield.errors import ConfigError
from hifield.sequence import (
    MATRIX_MAX,
    MATRIX_MIN,
    PROTOCOL_KINDS,
    PROTOCOL_TABLE,
    ImagingProtocol,
    SlabProtocol,
    SliceProtocol,
    get_protocol,
    load_protocol,
    protocol_names,
    protocol_to_dict,
)

SEQUENCE_DIR = Path(library.__file__).parent.parent
FAMILY_MODULES = sorted(m.name for m in pkgutil.iter_modules(library.__path__) if not m.name.startswith("_"))
SHARED_FIELDS = {
    "fov_m": float,
    "matrix": int,
    "tr_s": float,
    "te_s": float,
    "flip_angle_rad": float,
    "readout_bandwidth_hz_per_pixel": float,
    "n_averages": int,
    "rf_duration_s": float,
    "rf_time_bandwidth": float,
}


def _imports(path: Path) -> set[str]:
    """Every module a source file imports (at any depth, lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_family_module_has_its_own_module_and_every_protocol_class_is_in_the_kind_table() -> None:
    defined = set()
    for name in FAMILY_MODULES:
        module = importlib.import_module(f"hifield.sequence.library.{name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ImagingProtocol) and cls.__module__ == module.__name__:
                defined.add(cls)
    assert defined, "no protocol classes found in the library"
    assert defined == set(PROTOCOL_KINDS.values())
    assert all(PROTOCOL_KINDS[cls.KIND] is cls for cls in defined)


def test_table_names_match_the_protocols_they_make_and_every_kind_has_a_default() -> None:
    assert protocol_names() == tuple(PROTOCOL_TABLE)
    for name, factory in PROTOCOL_TABLE.items():
        made = factory()
        assert made.name == name
        assert get_protocol(name) == made
        assert type(made) in PROTOCOL_KINDS.values()
    assert {type(get_protocol(n)) for n in protocol_names()} == set(PROTOCOL_KINDS.values())


def test_no_family_module_registers_itself_and_protocol_py_imports_no_family() -> None:
    """The table is the only list: family modules do not import the registry/file layer, and the base module
    (``protocol.py``) imports no family (no cycle ``protocol.py`` <-> ``library/gre.py``)."""
    for name in FAMILY_MODULES:
        imported = _imports(SEQUENCE_DIR / "library" / f"{name}.py")
        assert "hifield.sequence.protocol_io" not in imported, name
        assert not any(m == "hifield.sequence" for m in imported), name
    base_imports = _imports(SEQUENCE_DIR / "protocol.py")
    assert not any(m.startswith("hifield.sequence.library") for m in base_imports)
    assert not hasattr(importlib.import_module("hifield.sequence.protocol_io"), "register_protocol")


@pytest.mark.parametrize("kind", list(PROTOCOL_KINDS))
def test_every_protocol_class_is_an_imaging_protocol_with_the_shared_typed_fields(kind: str) -> None:
    cls = PROTOCOL_KINDS[kind]
    assert issubclass(cls, ImagingProtocol)
    assert issubclass(cls, SliceProtocol) != issubclass(cls, SlabProtocol)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for attr, expected in SHARED_FIELDS.items():
        assert hints[attr] is expected, (kind, attr)
        assert fields[attr].kw_only, (kind, attr)
    # declared once: a family may set a default, but the documented declaration lives on the base
    assert all(attr in ImagingProtocol.__dataclass_fields__ for attr in SHARED_FIELDS)


@pytest.mark.parametrize("name", protocol_names())
def test_slice_geometry_reads_the_same_way_on_every_protocol(name: str) -> None:
    p = get_protocol(name)
    if isinstance(p, SlabProtocol):
        assert p.slice_thickness_m is None
        assert p.slab_thickness_m is not None and p.slab_thickness_m > 0
        assert p.n_partitions >= 4 and p.n_slices == 1
    else:
        assert p.slab_thickness_m is None and p.n_partitions == 1
        assert p.slice_thickness_m is not None and p.slice_thickness_m > 0
    assert p.nyquist_readouts > 0


def test_derived_shared_fields_are_typed_but_neither_arguments_nor_file_keys() -> None:
    bssfp = get_protocol("bssfp_2d")
    assert bssfp.te_s == pytest.approx(bssfp.tr_s / 2)
    assert bssfp.with_changes(tr_s=0.008).te_s == pytest.approx(0.004)
    assert "te_ms" not in protocol_to_dict(bssfp) and "te_s" not in protocol_to_dict(bssfp)
    with pytest.raises(ConfigError, match="unknown BssfpProtocol field"):
        bssfp.with_changes(te_s=0.002)
    spiral = get_protocol("spiral_vd_2d")
    assert spiral.readout_bandwidth_hz_per_pixel == pytest.approx(1.0 / (spiral.adc_dwell_s * spiral.matrix))
    assert "readout_bandwidth_hz_per_pixel" not in protocol_to_dict(spiral)
    assert spiral.nyquist_readouts == spiral.n_interleaves
    assert get_protocol("radial_gre_2d").nyquist_readouts == pytest.approx(math.pi / 2 * 256)


def test_one_matrix_range_for_every_protocol() -> None:
    assert (MATRIX_MIN, MATRIX_MAX) == (8, 1024)
    for name in ("gre_t1_2d", "radial_gre_2d", "gre_t1_3d"):
        p = get_protocol(name)
        assert p.SPECS["matrix"].low == MATRIX_MIN and p.SPECS["matrix"].high == MATRIX_MAX
        assert p.with_changes(matrix=MATRIX_MIN).matrix == MATRIX_MIN
        with pytest.raises(ConfigError, match=f"allowed range {MATRIX_MIN} to {MATRIX_MAX}"):
            p.with_changes(matrix=MATRIX_MAX + 1)
        with pytest.raises(ConfigError, match=f"allowed range {MATRIX_MIN} to {MATRIX_MAX}"):
            p.with_changes(matrix=MATRIX_MIN - 1)


@pytest.mark.parametrize("name", protocol_names())
def test_protocol_files_written_before_the_base_class_still_load(name: str) -> None:
    """``expected/protocol_files`` holds each default as ``save_protocol`` wrote it before ImagingProtocol."""
    path = Path(__file__).parent / "expected" / "protocol_files" / f"{name}.yaml"
    assert load_protocol(path) == get_protocol(name)


def test_pipeline_and_engines_read_protocol_geometry_as_typed_attributes() -> None:
    """The slice geometry, averages and Nyquist readouts are ImagingProtocol attributes: no ``getattr`` guesses."""
    src = SEQUENCE_DIR.parent
    for path in (src / "pipeline.py", src / "sim" / "engines" / "fast.py", src / "sim" / "engines" / "bloch.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
                target = node.args[0]
                assert not (isinstance(target, ast.Name) and target.id == "protocol"), (path.name, node.lineno)


def test_a_sequence_file_is_described_by_an_imaging_protocol(tmp_path: Path) -> None:
    from hifield.hardware import Scanner
    from hifield.sequence import load_seq, write_seq

    built = get_protocol("gre_t1_2d").with_changes(matrix=32, tr_s=0.02).build(Scanner.preset("3T"))
    loaded = load_seq(write_seq(built, tmp_path / "gre.seq"))
    assert isinstance(loaded.protocol, SliceProtocol)
    assert loaded.protocol.te_s == loaded.te_s and loaded.protocol.tr_s == loaded.tr_s
    assert loaded.protocol.slab_thickness_m is None and loaded.protocol.n_averages == 1
