"""Studies of many exams on Dask: ``batch()`` runs each exam as a task, resumable by content hash.

Dask is the optional extra ``dask``; this package imports it only when a study runs on it.
"""

from __future__ import annotations

from hifield.distributed.cluster import slurm_cluster
from hifield.distributed.exam import run_exam
from hifield.distributed.runner import DASK_MISSING, SERIAL, StudyResult, batch, dask_available
from hifield.distributed.study import AXES, Exam, Study, load_study, study_from_dict
from hifield.distributed.table import StudyStatus, read_table, study_status

__all__ = [
    "AXES",
    "DASK_MISSING",
    "SERIAL",
    "Exam",
    "Study",
    "StudyResult",
    "StudyStatus",
    "batch",
    "dask_available",
    "load_study",
    "read_table",
    "run_exam",
    "slurm_cluster",
    "study_from_dict",
    "study_status",
]
