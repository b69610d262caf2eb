"""Fixtures for reconstruction tests: the synthetic multi-coil data helpers in ``simdata.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load_simdata() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hifield_tests_recon_simdata", Path(__file__).with_name("simdata.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def simdata() -> ModuleType:
    """The module with ``make_raw``, ``equispaced_mask``, ``random_mask``, ``smooth_coil_maps``."""
    return _load_simdata()
