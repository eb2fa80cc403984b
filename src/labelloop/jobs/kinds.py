"""The built-in job kinds: thin adapters from a job's params to the services.

The services they call are imported when a job runs; if one is not installed (or not written
yet) the job fails with a reason that says so instead of the worker crashing.
"""

from __future__ import annotations

import importlib
from typing import Any

from labelloop.errors import JobError
from labelloop.jobs.runner import JobContext

__all__ = ["preannotate", "qa", "suggest", "sweep", "train"]


def _service(module: str, name: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name)):
            raise JobError(f"{module} is not available yet in this installation",
                           "update labelloop; this feature is still being built") from exc
        raise JobError(f"{module} needs {exc.name}, which is not installed",
                       "install labelloop[train] on the server") from exc
    try:
        return getattr(mod, name)
    except AttributeError as exc:
        raise JobError(f"{module}.{name} is not available yet", "update labelloop") from exc


class _TrainProgress:
    """Maps the training callback's events to a progress fraction, a message and stored events."""

    def __init__(self, job: JobContext, offset: float = 0.0, share: float = 1.0, prefix: str = "") -> None:
        self.job, self.offset, self.share, self.prefix = job, offset, share, prefix
        self.epochs = 1
        self.steps = 1

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        self.job.event({**event, "variant": self.prefix} if self.prefix else dict(event))
        if kind == "skipped":
            for img in event.get("images") or []:
                self.job.log(f"{self.prefix}warning: image {img.get('image_id')} left out: {img.get('reason')}")
        elif kind == "start":
            self.epochs = max(1, int(event.get("epochs") or 1))
            self.steps = max(1, int(event.get("steps_per_epoch") or 1))
            self._report(0.0, f"training {self.epochs} epochs")
        elif kind == "step":
            epoch = int(event.get("epoch") or 1)
            step = int(event.get("step") or 0)
            steps = max(1, int(event.get("steps") or self.steps))
            done = (max(epoch, 1) - 1 + step / steps) / self.epochs
            loss = event.get("loss")
            loss_txt = f", loss {loss:.3f}" if isinstance(loss, (int, float)) else ""
            self._report(done, f"epoch {epoch}/{self.epochs}, step {step}/{steps}{loss_txt}")
        elif kind == "epoch":
            epoch = int(event.get("epoch") or 1)
            metrics = event.get("metrics") or {}
            shown = ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:3] if isinstance(v, (int, float)))
            self._report(epoch / self.epochs, f"epoch {epoch}/{self.epochs} done" + (f": {shown}" if shown else ""))
            self.job.log(f"{self.prefix}epoch {epoch}: losses {event.get('losses')} metrics {metrics}")
        elif kind == "end":
            self._report(1.0, f"finished ({event.get('reason', 'done')}), best epoch {event.get('best_epoch')}")

    def _report(self, fraction: float, message: str) -> None:
        self.job.raise_on_cancel = False  # training stops itself through stop_event, cleanly
        self.job.progress(self.offset + self.share * fraction, self.prefix + message)


def _stage_progress(job: JobContext) -> Any:
    """A progress callback that accepts the services' shapes: (stage, done, total), (done, total),
    a fraction, or an event dict."""
    def progress(*args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and isinstance(args[0], dict):
            event = args[0]
            job.event(event)
            done, total = event.get("done"), event.get("total")
            frac = done / total if isinstance(done, (int, float)) and total else None
            job.progress(frac, str(event.get("message") or event.get("stage") or event.get("type") or ""))
        elif len(args) == 3:
            stage, done, total = args
            job.progress(done / total if total else None, f"{stage} {done}/{total}")
        elif len(args) == 2:
            done, total = args
            job.progress(done / total if total else None, f"{done}/{total}")
        elif len(args) == 1 and isinstance(args[0], (int, float)):
            job.progress(float(args[0]))
        elif kwargs:
            job.progress(kwargs.get("fraction"), kwargs.get("message"))
    return progress


def train(job: JobContext) -> dict[str, Any]:
    train_project = _service("labelloop.services.training", "train_project")
    p = job.params
    record = train_project(job.project(), base=p.get("base") or None, args=p.get("args") or "",
                           from_model=p.get("from_model"), resume=bool(p.get("resume")),
                           progress=_TrainProgress(job), stop_event=job.stop_event)
    model = record if isinstance(record, dict) else {"record": str(record)}
    left_out = model.get("unreadable_images") or []
    warn = f" ({len(left_out)} unreadable image(s) left out, listed in the result)" if left_out else ""
    return {"model": model, "model_id": model.get("id"), "warnings": len(left_out),
            "message": f"model {model.get('id', '')} trained{warn}"}


def sweep(job: JobContext) -> dict[str, Any]:
    """Train every configuration of ``grid`` (``"base=a,b;lr=0.01,0.003"``, the cartesian product) or of
    ``variants`` (``["lr=0.01", "lr=0.001"]``, one each), on top of the shared ``base`` and ``args``, in
    parallel; the live leaderboard is streamed as ``{"type": "leaderboard", "rows": [...]}`` events."""
    from labelloop.services.sweep import sweep_configurations

    run_sweep = _service("labelloop.services.sweep", "run_sweep")
    p = job.params
    grid, variants = str(p.get("grid") or "").strip() or None, p.get("variants") or None
    sweep_configurations(grid, variants, base=p.get("base") or None, args=p.get("args") or "")  # fails fast
    job.raise_on_cancel = False

    def on_update(rows: list[dict[str, Any]]) -> None:
        job.event({"type": "leaderboard", "rows": rows})
        finished = sum(1 for r in rows if r.get("status") not in ("training",))
        job.progress(finished / max(1, len(rows)), f"{finished} of {len(rows)} configurations finished")

    result = run_sweep(job.project(), grid, variants=variants, base=p.get("base") or None, args=p.get("args") or "",
                       on_update=on_update)
    best = result.get("best_model_id")
    return {**result, "message": f"best model {best}" if best else "no configuration finished"}


def preannotate(job: JobContext) -> dict[str, Any]:
    run = _service("labelloop.services.preannotate", "preannotate")
    p = job.params
    threshold = p.get("threshold", "auto")
    result = run(job.project(), model_id=p.get("model_id"), images=p.get("images") or "unlabeled",
                 threshold=threshold if threshold not in (None, "") else "auto", progress=_stage_progress(job))
    out = result if isinstance(result, dict) else {"result": result}
    n = out.get("proposals", out.get("annotations", ""))
    return {**out, "message": f"{n} proposals made".strip() if n != "" else "pre-annotation done"}


def _accepts(func: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def suggest(job: JobContext) -> dict[str, Any]:
    try:
        run = _service("labelloop.services.suggest", "suggest")
    except JobError:
        run = _service("labelloop.services.suggest", "suggest_images")
    job.progress(0.02, "ranking images")
    kwargs: dict[str, Any] = {"n": int(job.params.get("n") or 50)}
    if job.params.get("model_id") is not None:
        kwargs["model_id"] = int(job.params["model_id"])
    if job.params.get("strategy"):
        kwargs["strategy"] = str(job.params["strategy"])
    if _accepts(run, "progress"):
        kwargs["progress"] = _stage_progress(job)
    items = list(run(job.project(), **kwargs))
    return {"suggestions": items, "message": f"{len(items)} images suggested"}


def qa(job: JobContext) -> dict[str, Any]:
    run = _service("labelloop.services.qa", "find_label_issues")
    job.progress(0.02, "looking for label errors")
    kwargs: dict[str, Any] = {}
    for key in ("model_id", "folds", "args"):
        if job.params.get(key) not in (None, ""):
            kwargs[key] = job.params[key]
    if _accepts(run, "progress"):
        kwargs["progress"] = _stage_progress(job)
    issues = list(run(job.project(), **kwargs))
    return {"issues": issues, "message": f"{len(issues)} possible label errors"}
