"""Artifacts written beside the weights: flipbook frames and matplotlib plots (Agg, no GUI)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labelloop.core.predictions import Predictions
from labelloop.core.samples import Sample
from labelloop.training.checkpoint import write_json

__all__ = ["choose_flipbook_ids", "write_flipbook_frame", "write_plots"]

MAX_FLIPBOOK = 16
DEFAULT_FLIPBOOK = 8


def choose_flipbook_ids(val: Sequence[Sample], requested: Sequence[int] | None) -> list[int]:
    """Up to 16 requested val image ids (unknown ids dropped), else 8 spread evenly by id."""
    ids = sorted(s.image_id for s in val)
    if requested is not None:
        known = set(ids)
        return [i for i in requested if i in known][:MAX_FLIPBOOK]
    if len(ids) <= DEFAULT_FLIPBOOK:
        return ids
    step = len(ids) / DEFAULT_FLIPBOOK
    return [ids[int(k * step)] for k in range(DEFAULT_FLIPBOOK)]


def write_flipbook_frame(out_dir: Path, epoch: int, preds: Mapping[int, Predictions],
                         samples: Mapping[int, Sample], min_score: float = 0.05, top: int = 100) -> Path:
    """``flipbook/epoch_NNN.json``: predictions (boxes, scores, 0-based labels, RLE masks) per image."""
    images = []
    for image_id, p in preds.items():
        keep = (p.scores >= min_score).nonzero()[0][:top]
        s = samples[image_id]
        images.append({"image_id": image_id, "width": s.width, "height": s.height,
                       **p.select(keep).to_json()})
    path = out_dir / "flipbook" / f"epoch_{epoch:03d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"epoch": epoch, "images": images}, path)
    return path


def _figure() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "class"


def write_plots(out_dir: Path, history: Sequence[Mapping[str, Any]], pr_curves: Mapping[str, Any]) -> list[Path]:
    """``plots/loss.png``, ``plots/map.png`` (or mIoU) and ``plots/pr_<class>.png``."""
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    epochs = [r["epoch"] for r in history]
    written = []
    fig = _figure()
    ax = fig.add_subplot()
    for key in sorted({k for r in history for k in r["losses"]}):
        ax.plot(epochs, [r["losses"].get(key, float("nan")) for r in history], marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="train loss", title="Training loss")
    ax.legend(fontsize=7)
    fig.savefig(plots / "loss.png")
    written.append(plots / "loss.png")
    fig = _figure()
    ax = fig.add_subplot()
    for key in ("map", "map50", "mask_map", "miou"):
        values = [r["metrics"].get(key) for r in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="validation", ylim=(0, 1), title="Validation metrics")
    ax.legend(fontsize=7)
    fig.savefig(plots / "map.png")
    written.append(plots / "map.png")
    for name, (recall, precision) in pr_curves.items():
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot(recall, precision)
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=f"PR @ IoU .5: {name}")
        path = plots / f"pr_{_safe(name)}.png"
        fig.savefig(path)
        written.append(path)
    return written
