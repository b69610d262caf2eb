"""``import hifield`` stays light (CONVENTIONS.md §12): no torch, Dask, matplotlib or Numba until they are used."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_hifield_loads_no_heavy_packages() -> None:
    code = (
        "import sys, json, hifield as hf; hf.Scanner.preset('3T'); hf.RawData; "
        "print(json.dumps(sorted(m for m in ('torch', 'dask', 'matplotlib', 'numba', 'pypulseq', 'nilearn', "
        "'pydicom', 'pynetdicom', 'finufft', 'pywt') if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(proc.stdout) == []


def test_every_public_name_resolves() -> None:
    import hifield as hf

    for name in hf.__all__:
        assert getattr(hf, name) is not None, name
