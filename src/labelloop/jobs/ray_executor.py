"""Jobs on a Ray cluster (extra ``[ray]``): ``labelloop serve --executor ray [--ray-address ADDR]``.

Each job is one Ray task that runs the same :func:`labelloop.jobs.runner.execute_job` the local
worker runs, so progress, logs, events, cancellation (the runner's own watcher) and failure
reasons reach the job row exactly as locally. The task asks for the job's resources: CPUs
(``num_cpus``; ``num_clones`` CPUs, or GPUs with ``device=cuda``, for a training) and custom Ray
resources (``ray_resources``). A training with ``num_clones > 1`` runs its ranks on Ray Train workers
(:mod:`labelloop.training.ray_train`), a sweep its configurations as Ray Tune trials
(:mod:`labelloop.services.sweep_tune`), and a pre-annotation its images on Ray Data actors: each asks
for its own resources, and the job's task only waits. Every node must reach the database
(PostgreSQL for a real cluster) and the project folders (a shared path).

A task whose worker or node dies is retried (``LABELLOOP_RAY_RETRIES`` times, default 1) from
the start, then fails with a reason naming what was lost; it never stays "running". Ray's usage
statistics are off; nothing is downloaded. Ray is imported here only.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from labelloop.errors import ConfigError
from labelloop.jobs.executor import Executor
from labelloop.jobs.records import requeue_interrupted
from labelloop.store.db import Store
from labelloop.store.tables import Job, utcnow

__all__ = ["RayExecutor", "connect", "job_resources", "ray_node_reports", "run_on_ray"]

log = logging.getLogger("labelloop.ray")
WAIT_SECONDS = 0.5
#: environment variables a Ray worker needs to run jobs as this server does
_PASSED = ("PYTHONPATH", "HF_HUB_OFFLINE")

_worker_registry: Any = None


def run_on_ray(job_id: int, home: str, database_url: str) -> str:
    """The Ray task: run job ``job_id`` against the server's projects (one registry per worker process)."""
    global _worker_registry
    from labelloop.jobs.registry import load_plugins
    from labelloop.jobs.runner import execute_job
    from labelloop.services.projects import ProjectRegistry

    if _worker_registry is None:
        load_plugins()
        _worker_registry = ProjectRegistry(Path(home), database_url)
    return execute_job(_worker_registry.store(), job_id, _worker_registry.open)


def job_resources(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Ray task options for a job: ``num_cpus``, ``num_gpus`` and custom ``resources``."""
    from labelloop.training.config import requested_devices

    device = str(params.get("device", ""))
    clones, cuda = (requested_devices(str(params.get("args") or ""), device) if kind in ("train", "sweep")
                    else (1, device.startswith("cuda")))
    # a pre-annotation hands its images to Ray Data actors, a sweep its configurations to Ray Tune trials,
    # a training of several clones its ranks to Ray Train workers (each asks for its own CPUs or GPUs):
    # the job's own task only waits for them
    waits = kind in ("preannotate", "sweep") or (kind == "train" and clones > 1)
    default_cpus = 0 if waits else 1 if cuda else clones
    options: dict[str, Any] = {"num_cpus": float(params.get("num_cpus", default_cpus)),
                               "num_gpus": float(0 if waits or not cuda else clones)}
    custom = params.get("ray_resources")
    if custom is not None:
        if not isinstance(custom, dict) or not all(isinstance(v, int | float) for v in custom.values()):
            raise ConfigError("ray_resources must map resource names to amounts", 'e.g. {"gpu_a100": 1}')
        options["resources"] = {str(k): float(v) for k, v in custom.items()}
    return options


def connect(ray: Any, home: Path, database_url: str, address: str | None) -> None:
    """``ray.init`` for this server: its settings passed to the workers, usage statistics off."""
    env = {k: v for k, v in os.environ.items() if k.startswith("LABELLOOP_") or k in _PASSED}
    env.update(LABELLOOP_DATABASE_URL=database_url, LABELLOOP_HOME=str(home), RAY_USAGE_STATS_ENABLED="0")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False,
                 namespace="labelloop", ignore_reinit_error=True, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address or 'a new local one'}: {exc}",
                          "start it with `ray start --head` and give its address (--ray-address or "
                          "RAY_ADDRESS), e.g. 127.0.0.1:6379") from None


def ray_node_reports(home: Path, database_url: str, image: str | None, address: str | None, *,
                     timeout: float = 120.0) -> list[dict[str, Any]]:
    """:func:`labelloop.jobs.node_check.node_report` run on every alive node of the cluster (pinned to
    it, no CPU asked); a node that does not answer within ``timeout`` seconds is reported as such."""
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise ConfigError("checking a Ray cluster needs Ray", "pip install 'labelloop[ray]'") from None
    from labelloop.jobs.node_check import node_report

    connect(ray, home, database_url, address)
    try:
        task = ray.remote(num_cpus=0, max_retries=0)(node_report)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(home), database_url, image) for n in nodes]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        reports = []
        for node, ref in zip(nodes, refs, strict=True):
            base = {"node_id": node["NodeID"], "address": node.get("NodeManagerAddress"),
                    "cpus": float(node.get("Resources", {}).get("CPU", 0))}
            if ref not in ready:
                reports.append({**base, "ok": False, "checks": [], "error": f"did not answer within {timeout:g} s"})
                continue
            try:
                answer: dict[str, Any] = ray.get(ref)
                reports.append({**base, **answer})
            except ray.exceptions.RayError as exc:
                reports.append({**base, "ok": False, "checks": [], "error": str(exc).splitlines()[0][:300]})
        return reports
    finally:
        ray.shutdown()


class RayExecutor(Executor):
    """Dispatches every job to Ray; a thread follows the tasks and retries or fails the lost ones."""

    name = "Ray cluster"

    def __init__(self, store: Store, *, home: Path, database_url: str, address: str | None = None,
                 retries: int | None = None) -> None:
        super().__init__(store)
        try:
            import ray
        except ImportError:
            raise ConfigError("the Ray executor needs Ray", "pip install 'labelloop[ray]'") from None
        self.ray = ray
        self.home, self.database_url = home, database_url
        self.retries = int(os.environ.get("LABELLOOP_RAY_RETRIES", "1")) if retries is None else retries
        connect(ray, home, database_url, address)
        self._task = ray.remote(max_retries=0)(run_on_ray)
        self._running: dict[Any, tuple[int, int]] = {}  # object ref -> (job id, attempt)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._follow, name="ray-jobs", daemon=True)
        self._watcher.start()
        for job_id in requeue_interrupted(store):
            log.info("job %s was interrupted by a restart: queued again on Ray", job_id)
            self._dispatch(job_id)

    def resources(self) -> dict[str, float]:
        """What the cluster has (CPU, GPU, custom resources), for the train page."""
        return {k: float(v) for k, v in self.ray.cluster_resources().items() if not k.startswith("node:")}

    def _dispatch(self, job_id: int, attempt: int = 0) -> None:
        with self.store.session() as s:
            row = s.get(Job, job_id)
            kind, params = (row.kind, dict(row.params or {})) if row is not None else ("", {})
        ref = self._task.options(**job_resources(kind, params), name=f"labelloop-job-{job_id}").remote(
            job_id, str(self.home), self.database_url)
        with self._lock:
            self._running[ref] = (job_id, attempt)

    def _follow(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                refs = list(self._running)
            if not refs:
                self._stop.wait(WAIT_SECONDS)
                continue
            done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=WAIT_SECONDS)
            for ref in done:
                with self._lock:
                    job_id, attempt = self._running.pop(ref)
                try:
                    self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:  # the job's own failures never raise: this is Ray's
                    self._lost(job_id, attempt, exc)

    def _lost(self, job_id: int, attempt: int, exc: Exception) -> None:
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        retry = attempt < self.retries
        with self.store.session() as s:
            row = s.get(Job, job_id)
            if row is None or row.status in ("succeeded", "failed", "cancelled"):
                return
            if retry and not row.cancel_requested:
                row.status = "queued"
                row.message = f"retrying: the Ray worker running it was lost ({type(exc).__name__})"
                row.log = (row.log or "") + f"attempt {attempt + 1} lost on Ray: {reason}\n"
            else:
                row.status, row.finished_at, row.message = "failed", utcnow(), "failed"
                row.error = (f"the Ray worker running this job was lost ({type(exc).__name__}: {reason}); "
                             "start the job again once the cluster's nodes are up")
        log.warning("job %s lost on Ray (%s): %s", job_id, type(exc).__name__, "retrying" if retry else "failed")
        if retry:
            self._dispatch(job_id, attempt + 1)

    def cancel(self, job_id: int, *, project: str | None = None) -> dict[str, Any]:
        """As locally (a running job stops at its next progress report); a job not yet started is
        also taken off Ray's queue."""
        view = super().cancel(job_id, project=project)
        with self._lock:
            refs = [r for r, (jid, _) in self._running.items() if jid == job_id]
        if view["status"] == "cancelled":
            for ref in refs:
                self.ray.cancel(ref, force=False)
        return view

    def close(self) -> None:
        self._stop.set()
        self._watcher.join(timeout=5)
        self.ray.shutdown()

