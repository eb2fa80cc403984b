"""``num_clones`` on a Ray cluster: the same per-rank training (:func:`labelloop.training.loop._run`)
under Ray Train's ``TorchTrainer``, one worker per clone (one GPU each with CUDA, else one CPU; gloo on
the CPU, NCCL on CUDA, the process group set up by Ray Train).

Used by :func:`labelloop.training.loop.train_model` when it runs inside a Ray worker (a job dispatched
by ``labelloop serve --executor ray``); locally the clones are spawned processes. A small actor relays
rank 0's progress events and the result to the caller, and the caller's stop request to the ranks
(which agree on it at the next step, as locally). A worker that dies restarts the whole group once
(``FailureConfig(max_failures=1)``): the restarted ranks resume from ``last.pt``, which every node
reads from the shared project folder. Ray is imported here only.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from labelloop.core.progress import tag_engine
from labelloop.errors import TrainingError

if TYPE_CHECKING:
    from labelloop.core.progress import TrainProgress
    from labelloop.training.loop import TrainResult, _Job

__all__ = ["on_ray", "train_on_ray"]

#: how often the caller drains the relay and rank 0 asks whether to stop, seconds
POLL_SECONDS = 0.2
#: a worker group that fails this many times in a row gives up (its error reaches the job)
MAX_FAILURES = 1


def on_ray() -> bool:
    """True inside a process connected to Ray (a job running on a Ray worker), without importing Ray."""
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


class _Relay:
    """The Ray actor between the caller and the ranks: events and the result up, the stop flag down."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.stop_requested = False
        self.starts: dict[int, int] = {}

    def put(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        out, self.events = self.events, []
        return out

    def stop(self) -> None:
        self.stop_requested = True

    def stopped(self) -> bool:
        return self.stop_requested

    def start(self, rank: int) -> int:
        """How many times ``rank`` started before (> 0 after a restart of the worker group)."""
        count = self.starts.get(rank, 0)
        self.starts[rank] = count + 1
        return count


def _per_worker(config: dict[str, Any]) -> None:
    """One rank of the run (Ray Train has set up the process group): the local DDP rank's function."""
    import ray
    import ray.train
    import torch

    from labelloop.training.loop import _run

    job: _Job = config["job"]
    relay = config["relay"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(max(1, int(config["threads"])))
    restarted = ray.get(relay.start.remote(rank)) > 0
    if restarted and (job.out_dir / "last.pt").is_file():
        job = dataclasses.replace(job, resume=True)
    last_check, stop = 0.0, False

    def stopped() -> bool:  # only rank 0's answer counts (the ranks agree on it through an all-reduce)
        nonlocal last_check, stop
        if rank == 0 and not stop and time.monotonic() - last_check > POLL_SECONDS:
            last_check, stop = time.monotonic(), bool(ray.get(relay.stopped.remote()))
        return stop

    device = None
    if job.config.device != "cpu" and torch.cuda.is_available():
        import ray.train.torch

        device = ray.train.torch.get_device()
    result = _run(rank, world, job, relay.put.remote, stopped, device=device)
    if rank == 0:
        ray.get(relay.put.remote({"type": "_result", "result": result}))


def train_on_ray(job: _Job, progress: TrainProgress | None, stop_event: threading.Event | None) -> TrainResult:
    """Run ``job`` on ``num_clones`` Ray Train workers; relay rank 0's events to ``progress``."""
    try:
        import ray
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise TrainingError("training on Ray needs Ray Train", "pip install 'labelloop[ray]'") from None

    job = dataclasses.replace(job, out_dir=job.out_dir.resolve())  # Ray Train moves the workers' cwd
    cfg = job.config
    cluster = ray.cluster_resources()
    cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and float(cluster.get("GPU", 0)) > 0)
    _check_room(cluster, cfg.num_clones, "GPU" if cuda else "CPU")
    relay: Any = ray.remote(num_cpus=0)(_Relay).remote()
    threads = 1  # one CPU per clone, as a Ray worker asks
    trainer = TorchTrainer(
        _per_worker,
        train_loop_config={"job": job, "relay": relay, "threads": threads},
        torch_config=TorchConfig(backend="nccl" if cuda else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.num_clones, use_gpu=cuda,
                                     resources_per_worker={"GPU": 1} if cuda else {"CPU": threads}),
        run_config=RunConfig(name=f"labelloop-{job.out_dir.name}", storage_path=str(job.out_dir / "ray"),
                             failure_config=FailureConfig(max_failures=MAX_FAILURES)),
    )
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # the caller's thread raises it, with the workers' reason
            errors.append(exc)

    engine = f"Ray Train: {cfg.num_clones} workers, {'1 GPU' if cuda else '1 CPU'} each ({'NCCL' if cuda else 'gloo'})"
    runner = threading.Thread(target=fit, name="ray-train", daemon=True)
    runner.start()
    result: TrainResult | None = None
    stop_sent = False
    try:
        while True:
            alive = runner.is_alive()
            for event in ray.get(relay.drain.remote()):
                if event["type"] == "_result":
                    result = event["result"]
                elif progress is not None:
                    progress(tag_engine(event, engine))
            if not alive:
                break
            if stop_event is not None and stop_event.is_set() and not stop_sent:
                relay.stop.remote()
                stop_sent = True
            runner.join(POLL_SECONDS)
    finally:
        ray.kill(relay)
    if errors:
        reason = str(errors[0]).strip().splitlines()
        raise TrainingError(f"training on Ray failed: {reason[-1] if reason else type(errors[0]).__name__}",
                            "check the job's log; try fewer num_clones or free the cluster's resources")
    if result is None:
        raise TrainingError("the Ray Train workers exited without a result")
    return result


def _check_room(cluster: dict[str, float], clones: int, resource: str) -> None:
    """Ray Train would wait for ever for workers the cluster (``ray.cluster_resources()``) cannot ever
    hold: refuse those at once."""
    have = float(cluster.get(resource, 0))
    if have < clones:
        raise TrainingError(f"num_clones={clones} needs {clones} {resource}s on the Ray cluster, which has {have:g}",
                            f"lower num_clones to {int(have) or 1}, or add nodes (`ray start --address=...`)")

