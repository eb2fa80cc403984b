"""Background jobs: kinds registered by name, an executor interface, the local Huey worker.

    executor = HueyExecutor(store, home / "queue.db")
    job_id = executor.submit("train", {"project": "cats", "args": "epochs=5"}, actor="ana")
"""

from labelloop.jobs.executor import Executor, HueyExecutor
from labelloop.jobs.records import FINAL_STATES, cancel_job, get_job, list_jobs
from labelloop.jobs.registry import JobKind, get_job_kind, job_kinds, register_job_kind
from labelloop.jobs.runner import JobCancelled, JobContext, execute_job

__all__ = [
    "FINAL_STATES",
    "Executor",
    "HueyExecutor",
    "JobCancelled",
    "JobContext",
    "JobKind",
    "cancel_job",
    "execute_job",
    "get_job",
    "get_job_kind",
    "job_kinds",
    "list_jobs",
    "register_job_kind",
]
