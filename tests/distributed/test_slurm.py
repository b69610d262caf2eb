"""The SLURM cluster hifield recommends: its job script runs single-threaded worker processes."""

from __future__ import annotations

import sys

import pytest

from hifield.distributed import slurm_cluster

pytest.importorskip("dask_jobqueue")


def test_slurm_job_script_runs_one_single_threaded_worker_per_core() -> None:
    with slurm_cluster(
        cores_per_job=8,
        memory_per_job="32GB",
        walltime="01:30:00",
        queue="compute",
        account="mri-lab",
        job_directives=("--constraint=avx2",),
    ) as cluster:
        script = cluster.job_script()
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in ("-p compute", "-A mri-lab", "-n 1", "--cpus-per-task=8", "-t 01:30:00", "--constraint=avx2"):
        assert f"#SBATCH {directive}" in lines, directive
    assert any(line.startswith("#SBATCH --mem=") for line in lines)
    for line in ("export OMP_NUM_THREADS=1", "export OPENBLAS_NUM_THREADS=1", "export NUMBA_NUM_THREADS=1"):
        assert line in lines
    command = lines[-1]
    assert command.startswith(sys.executable) and "distributed.cli.dask_worker" in command
    assert "--nworkers 8" in command and "--nthreads 1" in command and "--memory-limit 3.73GiB" in command
    assert "--nanny" in command  # a killed worker process is restarted and its tasks retried
