"""Clusters for studies beyond one machine: a SLURM cluster (dask-jobqueue) set up as hifield's exams want."""

from __future__ import annotations

from typing import Any

from hifield.errors import ConfigError

SLURM_MISSING = 'a SLURM cluster needs dask-jobqueue: pip install "hifield[cluster]"'
"""The one line raised when dask-jobqueue is not installed."""

WORKER_ENV: tuple[str, ...] = (
    "export OMP_NUM_THREADS=1",
    "export OPENBLAS_NUM_THREADS=1",
    "export MKL_NUM_THREADS=1",
    "export NUMBA_NUM_THREADS=1",
)
"""Lines each SLURM job runs before its workers start: one thread per worker process (an exam is one task)."""


def slurm_cluster(
    *,
    cores_per_job: int = 8,
    memory_per_job: str = "32GB",
    walltime: str = "02:00:00",
    queue: str | None = None,
    account: str | None = None,
    python: str | None = None,
    local_directory: str | None = None,
    job_directives: tuple[str, ...] = (),
) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` whose jobs each run ``cores_per_job`` single-threaded worker processes.

    Scale it with ``cluster.scale(jobs=N)`` or ``cluster.adapt(maximum_jobs=N)`` and pass it to
    :func:`~hifield.distributed.batch` as ``scheduler=cluster`` (the study folder must be on a shared file system).
    Nothing is submitted until the cluster is scaled.

    Parameters
    ----------
    cores_per_job
        CPU cores (and worker processes) per SLURM job.
    memory_per_job
        Memory per job (``"32GB"``), split evenly between its workers: each worker's memory limit.
    walltime
        Job time limit ``HH:MM:SS``.
    queue
        SLURM partition (``#SBATCH -p``).
    account
        SLURM account (``#SBATCH -A``).
    python
        Python executable of the workers (default: this one); it must import hifield on the compute nodes.
    local_directory
        Node-local scratch folder for the workers' spill files.
    job_directives
        Further ``#SBATCH`` options, such as ``("--constraint=avx2",)``.

    Raises
    ------
    ConfigError
        If dask-jobqueue is not installed or an option is out of range.
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError(SLURM_MISSING) from None
    if cores_per_job < 1:
        raise ConfigError(f"cores_per_job must be >= 1; got {cores_per_job}")
    options: dict[str, Any] = {
        "cores": cores_per_job,
        "processes": cores_per_job,
        "memory": memory_per_job,
        "walltime": walltime,
        "queue": queue,
        "account": account,
        "job_script_prologue": list(WORKER_ENV),
        "job_extra_directives": list(job_directives),
        "local_directory": local_directory,
        "name": "hifield-study",
    }
    if python is not None:
        options["python"] = python
    return SLURMCluster(**options)


__all__ = ["SLURM_MISSING", "WORKER_ENV", "slurm_cluster"]
