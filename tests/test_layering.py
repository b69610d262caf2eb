"""Imports point down DESIGN.md's table: checked on the source, for the layers that have a rule here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hifield

SRC = Path(hifield.__file__).parent

# package (or module) -> the hifield packages it may import besides itself
ALLOWED: dict[str, set[str]] = {
    "_atomic": {"errors"},
    "_pypulseq": set(),
    "_lazy": set(),
    "backend": set(),
    "units": set(),
    "errors": set(),
    "solvers": {"backend", "errors"},
    "ops": {"backend", "data", "errors"},
    "hardware": {"backend", "errors", "units"},  # backend: the one BLAS-thread helper (DESIGN's row says units)
    # sim: ops for the NUFFT of non-Cartesian readouts in the fast engine (DESIGN's row lists no ops)
    "sim": {"backend", "data", "errors", "hardware", "ops", "phantom", "sampling", "sequence", "units"},
    "metrics": {"data", "errors"},
    "report": {"data", "errors", "metrics"},
}

BOTTOM = {"_atomic", "_interrupt", "_lazy", "_pypulseq"}
"""Bottom modules every layer may import, like ``errors``: the one write-to-a-temporary-name-then-rename helper,
the record of a signal (``_interrupt``), the lazy public names of a package (``_lazy``) and pypulseq's import
without its plotting dependencies (``_pypulseq``)."""


def _hifield_imports(path: Path) -> set[str]:
    """Top-level hifield packages imported by one module (``hifield.x.y`` -> ``x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("hifield.") and name.count(".") >= 1}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_the_table_allows(layer: str) -> None:
    files = [SRC / f"{layer}.py"] if (SRC / f"{layer}.py").exists() else sorted((SRC / layer).rglob("*.py"))
    assert files, layer
    for path in files:
        bad = _hifield_imports(path) - ALLOWED[layer] - {layer} - BOTTOM
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_no_module_imports_a_private_backend() -> None:
    for path in sorted(SRC.rglob("*.py")):
        assert "_backend" not in path.read_text(encoding="utf-8"), path.relative_to(SRC)
