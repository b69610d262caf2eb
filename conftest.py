"""Collection rules for the whole run (tests and the doctests of src/hifield)."""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("torch") is None:
    # the learned-reconstruction modules import torch at the top (extra `dl`): without it their doctests cannot be
    # collected; their tests in tests/recon/learned skip themselves
    collect_ignore_glob.append("src/hifield/recon/learned/nets.py")
