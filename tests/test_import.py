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


def test_simulating_a_small_seq_file_loads_no_scipy(tmp_path) -> None:
    """``hifield simulate --seq`` of a 2D Cartesian file at a small matrix needs neither scipy.fft (NumPy's
    pocketfft runs its single-threaded FFTs) nor scipy.ndimage/special (the brain template is sampled by
    :func:`hifield._interp.sample_linear`): importing SciPy's array-API layer alone costs ~0.2 s of a ~0.7 s
    process. Also no matplotlib, Numba, torch or Dask."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "sequence"))
    from community import community_flash

    seq = tmp_path / "flash.seq"
    community_flash(32, n_dummy=0).write(str(seq))
    out = str(tmp_path / "o.h5")
    code = (
        "import sys, json\n"
        "from hifield.cli.main import main\n"
        f"sys.argv = ['hifield', 'simulate', '--seq', {str(seq)!r}, '--coils', '4', '--out', {out!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'torch', 'dask', 'matplotlib', 'numba'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
