"""Print pip constraints that pin every core dependency of pyproject.toml to its lowest allowed version.

``.ci/run`` installs hifield with these constraints in a fresh virtual environment and runs the fast tests, so the
lower bounds in pyproject.toml stay true: ``python tools/lowest_constraints.py > lowest.txt`` then
``pip install -c lowest.txt -e ".[test]"``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def lowest_constraints(pyproject: Path) -> list[str]:
    """``name==version`` for each core dependency with a ``>=`` lower bound; refuses one without."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)", requirement)
        if match is None:
            raise SystemExit(f"dependency {requirement!r} has no '>=' lower bound; give it one")
        pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print("\n".join(lowest_constraints(root / "pyproject.toml")))
