"""Test kit for the loop: demo projects with their ground truth, and an oracle predictor.

The oracle answers ``predict`` from a table keyed by the image's pixels, so tests plant exactly
the predictions they need (a hard image, a confident mislabel) without training a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labelloop.core.predictions import Predictions
from labelloop.core.records import AnnotationRecord
from labelloop.formats import ReadOptions, get_format
from labelloop.services.datasets import image_path
from labelloop.services.demo import create_demo_project
from labelloop.services.preannotate import read_rgb
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image, TrainedModel

__all__ = ["TINY_ARGS", "OraclePredictor", "add_fake_model", "demo_with_truth", "image_ids", "pixels_of",
           "trained_demo"]

TINY_ARGS = "epochs=1;image_size=128;batch_size=4"
_TRAINED: dict[str, tuple[Path, int]] = {}


def _key(pixels: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest() + str(pixels.shape)


@dataclass
class OraclePredictor:
    """A stand-in for ``labelloop.inference.Predictor``: planted predictions per image."""

    classes: list[str]
    task: str = "detect"
    backend: str = "oracle"
    table: dict[str, Predictions] = field(default_factory=dict)

    def add(self, pixels: np.ndarray, boxes: list, scores: list, labels: list[str],
            mirrored: tuple[list, list, list[str]] | None = None) -> None:
        """Plant predictions for ``pixels``; the mirror image gets mirrored boxes unless ``mirrored`` says."""
        w = pixels.shape[1]
        idx = [self.classes.index(n) for n in labels]
        self.table[_key(pixels)] = Predictions(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(scores),
                                               np.array(idx))
        if mirrored is None:
            b = np.array(boxes, dtype=np.float32).reshape(-1, 4)
            mb = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1) if len(b) else b
            mirrored = (mb.tolist(), scores, labels)
        mb, ms, ml = mirrored
        self.table[_key(np.ascontiguousarray(pixels[:, ::-1]))] = Predictions(
            np.array(mb, dtype=np.float32).reshape(-1, 4), np.array(ms), np.array([self.classes.index(n) for n in ml]))

    def add_truth(self, pixels: np.ndarray, truth: list[AnnotationRecord], score: float = 0.95) -> None:
        self.add(pixels, [a.bbox for a in truth], [score] * len(truth), [a.label for a in truth])

    def predict(self, image: np.ndarray) -> Predictions:
        return self.table.get(_key(image), Predictions.empty())

    def embed(self, image: np.ndarray) -> np.ndarray:
        """``(48,)``: the image shrunk to 4x4x3, L2-normalised (near-duplicates embed alike)."""
        h, w = image.shape[:2]
        small = image[: h - h % 4, : w - w % 4].reshape(4, h // 4, 4, w // 4, 3).mean(axis=(1, 3)).reshape(-1)
        small = small - small.mean()
        return (small / max(np.linalg.norm(small), 1e-6)).astype(np.float32)


def demo_with_truth(root: Path, *, n_images: int = 12, labelled: int = 6, seed: int = 0
                    ) -> tuple[ProjectContext, dict[str, list[AnnotationRecord]]]:
    """A demo project and the full ground truth by file name."""
    ctx, _ = create_demo_project(root, n_images=n_images, labelled=labelled, seed=seed)
    truth = get_format("coco").read(root / "demo-source" / "ground_truth", ReadOptions())
    return ctx, {img.file_name: list(img.annotations) for img in truth.images}


def image_ids(ctx: ProjectContext) -> dict[str, int]:
    with ctx.store.session() as s:
        return {f: i for f, i in s.query(Image.file_name, Image.id).filter(Image.project_id == ctx.id)}


def pixels_of(ctx: ProjectContext, image_id: int) -> np.ndarray:
    with ctx.store.session() as s:
        return read_rgb(image_path(ctx, s.get(Image, image_id).storage_path))


def add_fake_model(ctx: ProjectContext, classes: list[str], *, round_: int = 1) -> int:
    """A ready model record (with its folder) for services given an oracle predictor."""
    with ctx.store.session() as s:
        m = TrainedModel(project_id=ctx.id, name=f"oracle {round_}", base="oracle", task=ctx.task, round=round_,
                         status="ready", classes=classes, metrics={"map50": 0.9}, directory="")
        s.add(m)
        s.flush()
        m.directory = f"models/{m.id}"
        model_id = m.id
    (ctx.root / "models" / str(model_id)).mkdir(parents=True, exist_ok=True)
    return model_id


def trained_demo() -> tuple[Path, int]:
    """A demo project with one really trained (tiny) model, made once per test process and shared
    by the modules that need a real model (``(project root, model id)``); removed at exit."""
    if "demo" not in _TRAINED:
        import atexit
        import shutil
        import tempfile

        from labelloop.services.training import train_project

        root = Path(tempfile.mkdtemp(prefix="labelloop-loop-tests-")) / "proj"
        atexit.register(shutil.rmtree, root.parent, True)
        ctx, _ = create_demo_project(root, n_images=20, labelled=12, seed=1)
        try:
            model = train_project(ctx, args=TINY_ARGS)
        finally:
            ctx.close()
        _TRAINED["demo"] = (root, int(model["id"]))
    return _TRAINED["demo"]
