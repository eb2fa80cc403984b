"""The local worker: ``python -m labelloop.jobs.worker --home DIR`` consumes the Huey queue.

``labelloop serve`` starts it as a child process in its own process group. On start it puts
jobs that a previous worker left ``running`` back on the queue, so a restart loses no job.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path

from labelloop.jobs.records import requeue_interrupted
from labelloop.jobs.registry import load_plugins
from labelloop.jobs.runner import execute_job
from labelloop.services.projects import ProjectRegistry

__all__ = ["main", "run_in_worker"]

log = logging.getLogger("labelloop.worker")
_registry: ProjectRegistry | None = None


def run_in_worker(job_id: int) -> None:
    """The Huey task body: run the job against the worker's registry."""
    if _registry is None:
        raise RuntimeError("the labelloop worker is not initialised (start it with python -m labelloop.jobs.worker)")
    status = execute_job(_registry.store(), job_id, _registry.open)
    log.info("job %s %s", job_id, status)


def main(argv: list[str] | None = None) -> None:
    global _registry
    from labelloop.jobs.executor import HueyExecutor
    from labelloop.settings import get_settings

    parser = argparse.ArgumentParser(description="labelloop job worker")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")
    for noisy in ("huey", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    home = ns.home.resolve()
    url = os.environ.get("LABELLOOP_DATABASE_URL") or get_settings().database_url
    if not url:
        raise SystemExit("LABELLOOP_DATABASE_URL is not set; start the worker through `labelloop serve`")
    load_plugins()
    _registry = ProjectRegistry(home, url)
    executor = HueyExecutor(_registry.store(), home / "queue.db")
    for job_id in requeue_interrupted(_registry.store()):
        log.info("job %s was interrupted by a restart: queued again", job_id)
        executor._dispatch(job_id)
    consumer = executor.huey.create_consumer(workers=max(1, ns.workers), worker_type="thread", periodic=False,
                                             initial_delay=0.05, backoff=1.15, max_delay=0.5)
    if ns.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(ns.parent_pid,), daemon=True).start()
    log.info("worker ready (%s threads) on %s", ns.workers, home / "queue.db")
    consumer.run()


def _exit_with_parent(parent_pid: int) -> None:
    """An orphaned worker (the server was killed) stops instead of running on unseen."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            log.warning("the server (pid %s) is gone: stopping the worker", parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)
            return


if __name__ == "__main__":
    # run main() of the importable module, not of __main__: Huey's task looks up that module's state
    from labelloop.jobs import worker as _worker

    _worker.main()
