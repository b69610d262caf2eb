"""The study package loads Dask, pyarrow and matplotlib only when a study runs."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_study_package_loads_no_dask() -> None:
    code = (
        "import sys, json, hifield as hf; hf.batch; import hifield.cli.study; "
        "print(json.dumps(sorted(m for m in ('dask', 'distributed', 'pyarrow', 'matplotlib', 'dask_jobqueue') "
        "if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(proc.stdout) == []
