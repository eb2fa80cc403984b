"""The built-in job kinds: thin adapters from a job's params to the services, called by their
real signatures. Services are imported when a job runs (importing this module stays light); a
job that needs the ``[train]`` extra on a server without it fails with a reason that says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from labelloop.core.progress import StageProgress, TrainEvent
from labelloop.core.unreadable import Unreadable
from labelloop.errors import JobError
from labelloop.jobs.runner import JobContext

__all__ = ["preannotate", "qa", "suggest", "sweep", "train"]

#: the heavy modules of the ``[train]`` extra
_TRAIN_EXTRA = ("torch", "torchvision", "timm", "onnxruntime", "faster_coco_eval", "pycocotools")


@contextmanager
def _needs_train_extra() -> Iterator[None]:
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _TRAIN_EXTRA:
            raise
        raise JobError(f"this job needs {exc.name}, which is not installed on this server",
                       "install labelloop[train] on the server (pip install 'labelloop[train]')") from exc


class _TrainProgress:
    """Maps the training callback's events to a progress fraction, a message and stored events."""

    def __init__(self, job: JobContext, offset: float = 0.0, share: float = 1.0, prefix: str = "") -> None:
        self.job, self.offset, self.share, self.prefix = job, offset, share, prefix
        self.epochs = 1
        self.steps = 1

    def __call__(self, event: TrainEvent) -> None:
        self.job.event({**event, "variant": self.prefix} if self.prefix else dict(event))
        if event["type"] == "skipped":
            for img in event["images"]:
                self.job.log(f"{self.prefix}warning: image {img.get('image_id')} left out: {img.get('reason')}")
        elif event["type"] == "start":
            self.epochs = max(1, event["epochs"])
            self.steps = max(1, event["steps_per_epoch"])
            note = event.get("length_note")
            if event.get("engine"):
                self.job.log(f"{self.prefix}training on {event['engine']}")
            self._report(0.0, f"training {self.epochs} epochs" + (f" ({note})" if note else ""))
        elif event["type"] == "step":
            epoch, step, steps = max(1, event["epoch"]), event["step"], max(1, event["steps"])
            done = (epoch - 1 + step / steps) / self.epochs
            self._report(done, f"epoch {epoch}/{self.epochs}, step {step}/{steps}, loss {event['loss']:.3f}")
        elif event["type"] == "epoch":
            epoch, metrics = event["epoch"], event["metrics"]
            shown = ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:3] if isinstance(v, (int, float)))
            self._report(epoch / self.epochs, f"epoch {epoch}/{self.epochs} done" + (f": {shown}" if shown else ""))
            self.job.log(f"{self.prefix}epoch {epoch}: losses {event['losses']} metrics {metrics}")
        elif event["type"] == "predict_size":
            self._report(1.0, f"choosing the prediction size: {event['size']} px gives {event['seconds_per_image']:.1f}"
                              f" s of review per image ({event['done']}/{event['total']})")
        elif event["type"] == "end":
            size = f", predicts at {event['predict_size']} px" if "predict_size" in event else ""
            self._report(1.0, f"finished ({event['reason']}), best epoch {event['best_epoch']}{size}")

    def _report(self, fraction: float, message: str) -> None:
        self.job.raise_on_cancel = False  # training stops itself through stop_event, cleanly
        self.job.progress(self.offset + self.share * fraction, self.prefix + message)


def _stage_progress(job: JobContext) -> StageProgress:
    """The job's progress bar and message from a service's ``(stage, done, total)``."""
    def progress(stage: str, done: int, total: int) -> None:
        job.progress(done / total if total else None, f"{stage} {done}/{total}")
    return progress


def _skip_note(skipped: Sequence[Mapping[str, Any]], verb: str = "skipped") -> str:
    return f" ({len(skipped)} unreadable image(s) {verb}, listed in the result)" if skipped else ""


def _log_skipped(job: JobContext, skipped: Sequence[Mapping[str, Any]]) -> None:
    for img in skipped:
        job.log(f"warning: image {img.get('image_id')} ({img.get('file_name')}) skipped: {img.get('reason')}")


def train(job: JobContext) -> dict[str, Any]:
    p = job.params
    with _needs_train_extra():
        from labelloop.services.training import train_project

        model = train_project(job.project(), base=p.get("base") or None, args=p.get("args") or "",
                              from_model=p.get("from_model"), resume=bool(p.get("resume")),
                              progress=_TrainProgress(job), stop_event=job.stop_event)
    left_out = model.get("unreadable_images") or []
    return {"model": model, "model_id": model["id"], "skipped": left_out, "warnings": len(left_out),
            "message": f"model {model['id']} trained{_skip_note(left_out, 'left out')}"}


def sweep(job: JobContext) -> dict[str, Any]:
    """Train every configuration of ``grid`` (``"base=a,b;lr=0.01,0.003"``, the cartesian product) or of
    ``variants`` (``["lr=0.01", "lr=0.001"]``, one each), on top of the shared ``base`` and ``args``, in
    parallel; the live leaderboard is streamed as ``{"type": "leaderboard", "rows": [...]}`` events."""
    from labelloop.services.sweep import run_sweep, sweep_configurations

    p = job.params
    grid, variants = str(p.get("grid") or "").strip() or None, p.get("variants") or None
    sweep_configurations(grid, variants, base=p.get("base") or None, args=p.get("args") or "")  # fails fast
    job.raise_on_cancel = False

    def on_update(rows: list[dict[str, Any]]) -> None:
        job.event({"type": "leaderboard", "rows": rows})
        finished = sum(1 for r in rows if r.get("status") not in ("training",))
        job.progress(finished / max(1, len(rows)), f"{finished} of {len(rows)} configurations finished")

    with _needs_train_extra():
        result = run_sweep(job.project(), grid, variants=variants, base=p.get("base") or None,
                           args=p.get("args") or "", on_update=on_update)
    best = result.get("best_model_id")
    return {**result, "message": f"best model {best}" if best else "no configuration finished"}


def preannotate(job: JobContext) -> dict[str, Any]:
    p = job.params
    threshold = p.get("threshold", "auto")
    with _needs_train_extra():
        from labelloop.services.preannotate import preannotate as run

        out = run(job.project(), model_id=p.get("model_id"), images=p.get("images") or "unlabeled",
                  threshold=threshold if threshold not in (None, "") else "auto", progress=_stage_progress(job),
                  engine=str(p.get("engine") or "auto"))
    _log_skipped(job, out["skipped"])
    return {**out, "warnings": len(out["skipped"]),
            "message": f"{out['proposals']} proposals made{_skip_note(out['skipped'])}"}


def suggest(job: JobContext) -> dict[str, Any]:
    p = job.params
    job.progress(0.02, "ranking images")
    with _needs_train_extra():
        from labelloop.selection.strategies import strategy_note
        from labelloop.services.suggest import DEFAULT_STRATEGY, suggest_images

        strategy = str(p.get("strategy") or DEFAULT_STRATEGY)
        skipped = Unreadable("suggest")
        items = suggest_images(job.project(), n=int(p.get("n") or 50),
                               model_id=int(p["model_id"]) if p.get("model_id") is not None else None,
                               strategy=strategy, progress=_stage_progress(job), unreadable=skipped)
    _log_skipped(job, skipped.items)
    return {"suggestions": items, "note": strategy_note(strategy), "skipped": skipped.items,
            "warnings": len(skipped), "message": f"{len(items)} images suggested{_skip_note(skipped.items)}"}


def qa(job: JobContext) -> dict[str, Any]:
    p = job.params
    job.progress(0.02, "looking for label errors")
    with _needs_train_extra():
        from labelloop.services.qa import find_label_issues

        skipped = Unreadable("label check")
        issues = find_label_issues(job.project(), model_id=p.get("model_id"), folds=int(p.get("folds") or 0),
                                   args=str(p.get("args") or ""), progress=_stage_progress(job), unreadable=skipped)
    _log_skipped(job, skipped.items)
    return {"issues": issues, "skipped": skipped.items, "warnings": len(skipped),
            "message": f"{len(issues)} possible label errors{_skip_note(skipped.items)}"}
