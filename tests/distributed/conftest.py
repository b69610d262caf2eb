"""Fixtures for study tests: a tiny study (64 x 64, 4 coils) whose exams take about a second each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tiny_spec(**changes: Any) -> dict[str, Any]:
    """A study of 4 exams (2 fields x 2 accelerations) of a 64 x 64 Shepp-Logan slice, fft and SENSE."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "fixed": {
            "matrix": 64,
            "n_coils": 4,
            "n_calibration": 12,
            "phantom": "shepp-logan",
            "write_files": False,
        },
        "methods": ["fft", "sense"],
        "axes": {"fields": ["1.5T", "3T"], "accelerations": [2, 3]},
    }
    spec.update(changes)
    return spec


@pytest.fixture(scope="session")
def tiny() -> Any:
    """:func:`tiny_spec`: ``tiny(**changes)`` gives the spec of the tiny study."""
    return tiny_spec


@pytest.fixture(scope="session")
def examples() -> Path:
    """The repository's ``examples/`` folder."""
    return EXAMPLES


@pytest.fixture(scope="session")
def sar_protocol() -> str:
    """A bSSFP protocol file refused for head SAR at 7 T (fine at 3 T)."""
    return str(EXAMPLES / "bssfp_flip60.yaml")
