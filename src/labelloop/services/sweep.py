"""Sweeps: many training configurations at once, as parallel jobs sized to the machine.

Jobs go through an :class:`Executor` (``submit(fn, **kwargs) -> Future``); the local one is a
process pool. Inside a Ray job (``labelloop serve --executor ray``) the configurations are Ray Tune
trials across the cluster instead, with ASHA stopping the trailing ones early
(:mod:`labelloop.services.sweep_tune`); the leaderboard reads the same model rows either way.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from labelloop.errors import ConfigError, LabelloopError
from labelloop.store.project import ProjectContext
from labelloop.store.tables import ModelEpoch, TrainedModel

__all__ = ["Executor", "LocalExecutor", "configuration_args", "leaderboard", "open_sweep_project", "parse_grid",
           "parse_variants", "run_sweep", "sweep_configurations", "sweep_slots", "train_configuration"]


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> Future[Any]: ...

    def shutdown(self) -> None: ...


def sweep_slots(n_jobs: int) -> tuple[int, int]:
    """(parallel jobs, threads per job): one job per GPU, else cores shared out, >= 1 core each."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    if gpus:
        return min(n_jobs, gpus), max(1, (os.cpu_count() or 1) // min(n_jobs, gpus))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parallel = max(1, min(n_jobs, cores))
    return parallel, max(1, cores // parallel)


class LocalExecutor:
    """A process pool (spawned workers: safe with torch threads)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(fn, **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def parse_grid(text: str) -> list[dict[str, str]]:
    """``"base=a,b;lr=0.01,0.003"`` -> the cartesian product as a list of {key: value}."""
    axes: dict[str, list[str]] = {}
    for part in [p.strip() for p in text.replace("\n", ";").split(";") if p.strip()]:
        if "=" not in part:
            raise ConfigError(f"grid entry {part!r} has no '='", "write key=v1,v2;key2=v3")
        key, values = (x.strip() for x in part.split("=", 1))
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not items:
            raise ConfigError(f"grid key {key!r} has no values", "write key=v1,v2")
        axes[key] = items
    if not axes:
        raise ConfigError("empty grid", 'e.g. --grid "base=fcos-lite0;lr=0.01,0.003;epochs=10,30"')
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    for combo in combos:  # validate every configuration before anything starts
        _validate(combo)
    return combos


def _validate(combo: dict[str, str]) -> None:
    from labelloop.training.config import TrainConfig

    rest = ";".join(f"{k}={v}" for k, v in combo.items() if k != "base")
    if rest:
        TrainConfig.from_args_string(rest)


def _as_strings(values: dict[str, object]) -> dict[str, str]:
    """Parsed training arguments back as ``k=v`` strings (booleans as ``true``/``false``)."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


def parse_variants(variants: Sequence[str]) -> list[dict[str, str]]:
    """``["lr=0.01", "base=fasterrcnn-lite2;epochs=30"]``: one configuration per argument string."""
    from labelloop.training.config import parse_args_string

    if isinstance(variants, str) or not all(isinstance(v, str) for v in variants):
        raise ConfigError("variants must be a list of argument strings", 'e.g. ["lr=0.01", "lr=0.001;epochs=30"]')
    combos = []
    for text in variants:
        parsed = parse_args_string(text)  # names a bad key or value, or a part without '='
        base = parsed.pop("base", None)
        combos.append({**({"base": base} if base else {}), **_as_strings(parsed)})
    if not combos:
        raise ConfigError("no variants given", 'e.g. ["lr=0.01", "lr=0.001"]')
    return combos


def sweep_configurations(grid: str | None = None, variants: Sequence[str] | None = None, *,
                         base: str | None = None, args: str = "") -> list[dict[str, str]]:
    """The configurations of a sweep: a ``grid`` (cartesian product) or a list of ``variants``, each on
    top of the shared ``base`` and ``args`` (a configuration's own keys win)."""
    from labelloop.training.config import parse_args_string

    if bool(grid and grid.strip()) == bool(variants):
        raise ConfigError("a sweep needs either a grid or a list of variants (not both)",
                          'e.g. grid "lr=0.01,0.003;epochs=10,30" or variants ["lr=0.01", "lr=0.001"]')
    combos = parse_grid(grid) if grid and grid.strip() else parse_variants(variants or [])
    shared = _as_strings(parse_args_string(args))
    out = [{**({"base": base} if base else {}), **shared, **c} for c in combos]
    for combo in out:
        _validate(combo)
    return out


def configuration_args(combo: dict[str, str]) -> str:
    """A configuration's training arguments as one ``k=v;...`` string (its ``base`` apart)."""
    return ";".join(f"{k}={v}" for k, v in combo.items() if k != "base")


def open_sweep_project(project_root: str, database_url: str | None, layer: str = "") -> ProjectContext:
    """The sweep's project, opened in a worker (a process of the local pool, or a Ray Tune trial) on the
    sweep's own database, not on whatever ``LABELLOOP_DATABASE_URL`` the worker has, and on its layer."""
    from labelloop.services.layers import layer_context
    from labelloop.services.projects import project_database
    from labelloop.store.project import open_project

    ctx = open_project(Path(project_root), database=project_database(database_url))
    try:
        return layer_context(ctx, layer or None, default_first=True)
    except LabelloopError:
        ctx.close()
        raise


def train_configuration(ctx: ProjectContext, base: str | None, args: str, sweep: str, **train: Any) -> dict[str, Any]:
    """Train one configuration of ``sweep`` (``train``: the progress and stop event for ``train_project``)."""
    from labelloop.services.training import train_project

    return train_project(ctx, base=base, args=args, sweep=sweep,
                         name=f"sweep {sweep[:6]}: {base or 'default'} {args}".strip(), **train)


def _train_job(project_root: str, base: str | None, args: str, sweep: str, threads: int,
               database_url: str | None = None, layer: str = "") -> dict[str, Any]:
    """Runs in a worker process: its own connection to the sweep's database, its own share of the cores."""
    import torch

    torch.set_num_threads(threads)
    ctx = open_sweep_project(project_root, database_url, layer)
    try:
        return train_configuration(ctx, base, args, sweep)
    except LabelloopError as err:
        return {"error": str(err), "base": base, "args": args}
    finally:
        ctx.close()


def leaderboard(ctx: ProjectContext, sweep: str) -> list[dict[str, Any]]:
    """The sweep's models ranked by validation mAP@.5 (best first), live while they train."""
    with ctx.store.session() as s:
        models = s.scalars(select(TrainedModel).where(TrainedModel.sweep == sweep)).all()
        rows = []
        for m in models:
            epochs = s.scalars(select(ModelEpoch).where(ModelEpoch.model_id == m.id).order_by(ModelEpoch.epoch)).all()
            best = max((e.metrics.get("map50", 0.0) or 0.0 for e in epochs), default=0.0)
            rows.append({"model_id": m.id, "base": m.base, "args": (m.snapshot or {}).get("args_string", ""),
                         "status": m.status, "epoch": epochs[-1].epoch if epochs else 0,
                         "epochs": m.args.get("epochs"), "map50": best,
                         "map": (m.metrics or {}).get("map"), "best": bool((m.snapshot or {}).get("sweep_best")),
                         "stopped_early": (m.snapshot or {}).get("stopped_early")})
    return sorted(rows, key=lambda r: -r["map50"])


def run_sweep(ctx: ProjectContext, grid: str | None = None, *, variants: Sequence[str] | None = None,
              base: str | None = None, args: str = "", executor: Executor | None = None,
              on_update: Callable[[list[dict[str, Any]]], None] | None = None,
              poll_seconds: float = 2.0) -> dict[str, Any]:
    """Train every configuration (see :func:`sweep_configurations`) in parallel; mark and return the best model."""
    combos = sweep_configurations(grid, variants, base=base, args=args)
    sweep = uuid.uuid4().hex[:12]
    engine = "ray tune" if executor is None and _on_ray() else "local"
    if engine == "ray tune":
        parallel, threads, errors = _sweep_on_tune(ctx, combos, sweep, on_update, poll_seconds)
    else:
        parallel, threads = sweep_slots(len(combos))
        errors = _sweep_on_executor(ctx, combos, sweep, executor or LocalExecutor(parallel), executor is None,
                                    threads, on_update, poll_seconds)
    board = leaderboard(ctx, sweep)
    best = next((r for r in board if r["status"] == "ready"), None)
    if best is not None:
        with ctx.store.session() as s:
            m = s.get(TrainedModel, best["model_id"])
            if m is not None:
                m.snapshot = {**(m.snapshot or {}), "sweep_best": True}
        best["best"] = True
    return {"sweep": sweep, "parallel": parallel, "threads_per_job": threads, "leaderboard": board,
            "best_model_id": best["model_id"] if best else None,
            "errors": errors, "engine": engine}


def _on_ray() -> bool:
    from labelloop.training.ray_train import on_ray

    return on_ray()


def _sweep_on_executor(ctx: ProjectContext, combos: list[dict[str, str]], sweep: str, runner: Executor, own: bool,
                       threads: int, on_update: Callable[[list[dict[str, Any]]], None] | None,
                       poll_seconds: float) -> list[str]:
    """Every configuration a job of ``runner`` (closed after when ``own``); the failed ones' errors."""
    try:
        futures = [runner.submit(_train_job, project_root=str(ctx.root), base=c.get("base"),
                                 args=configuration_args(c), sweep=sweep, threads=threads,
                                 database_url=ctx.store.url, layer=ctx.layer_ref) for c in combos]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=poll_seconds)
            if on_update:
                on_update(leaderboard(ctx, sweep))
        results = [f.result() for f in futures]
    finally:
        if own:
            runner.shutdown()
    return [r["error"] for r in results if "id" not in r]


def _sweep_on_tune(ctx: ProjectContext, combos: list[dict[str, str]], sweep: str,
                   on_update: Callable[[list[dict[str, Any]]], None] | None,
                   poll_seconds: float) -> tuple[int, int, list[str]]:
    """Inside a Ray job: the configurations as Ray Tune trials under ASHA (the cluster decides how many
    run at once: ``parallel`` 0), the leaderboard followed meanwhile."""
    from labelloop.services.sweep_tune import run_on_tune

    out: dict[str, Any] = {}

    def tune() -> None:
        try:
            out["errors"] = run_on_tune(ctx, combos, sweep)
        except BaseException as exc:  # re-raised on the caller's thread
            out["raised"] = exc

    runner = threading.Thread(target=tune, name="ray-tune", daemon=True)
    runner.start()
    while runner.is_alive():
        runner.join(poll_seconds)
        if on_update:
            on_update(leaderboard(ctx, sweep))
    if "raised" in out:
        raise out["raised"]
    return 0, 0, out["errors"]
