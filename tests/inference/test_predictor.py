"""Predictors: ONNX parity with eager torch, input checks, embeddings, tiling and merging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelloop.errors import ConfigError, InvalidInputError
from labelloop.inference import Predictions, export_onnx, load_predictor
from labelloop.inference.predictions import merge_tiles, tile_windows
from labelloop.training.data import load_rgb
from training.synth import make_sample


def test_onnx_matches_torch(model_dir: Path, tmp_path: Path) -> None:
    path = export_onnx(model_dir)
    assert path.is_file() and (model_dir / "embed.onnx").is_file()
    image = load_rgb(make_sample(tmp_path, 99, size=(90, 130), seed=5).path)
    onnx, eager = load_predictor(model_dir, "onnx"), load_predictor(model_dir, "torch")
    assert onnx.classes == eager.classes == ["rect", "ellipse"]
    a, b = onnx.predict(image), eager.predict(image)
    assert len(a) == len(b) > 0
    # order can differ among near-equal scores: match each detection to its twin
    for box, score, label in zip(a.boxes, a.scores, a.labels, strict=True):
        twin = (np.abs(b.boxes - box).max(axis=1) < 1e-2) & (np.abs(b.scores - score) < 1e-4) & (b.labels == label)
        assert twin.any(), (box, score, label)
    assert (a.boxes[:, 2] <= 130.01).all() and (a.boxes[:, 3] <= 90.01).all()  # original pixels
    ea, eb = onnx.embed(image), eager.embed(image)
    assert ea.shape == (320,) and np.allclose(ea, eb, atol=1e-4)
    assert len(onnx.predict_batch([image, image])) == 2


def test_bad_inputs_are_domain_errors(model_dir: Path) -> None:
    predictor = load_predictor(model_dir, "torch")
    with pytest.raises(InvalidInputError, match="uint8"):
        predictor.predict(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="backend"):
        load_predictor(model_dir, "tensorrt")


def test_big_images_are_tiled(model_dir: Path, tmp_path: Path) -> None:
    tiled = tmp_path / "tiled"
    tiled.mkdir()
    for name in ("model.json", "best.pt"):
        (tiled / name).write_bytes((model_dir / name).read_bytes())
    meta = json.loads((tiled / "model.json").read_text())
    (tiled / "model.json").write_text(json.dumps({**meta, "tile_size": 96}))
    predictor = load_predictor(tiled, "torch")
    image = load_rgb(make_sample(tmp_path, 7, size=(200, 300), n_objects=(4, 6), obj_size=(20, 30)).path)
    preds = predictor.predict(image)
    assert (preds.boxes[:, 2] <= 300.01).all() and (preds.boxes[:, 3] <= 200.01).all()
    assert preds.boxes[:, 0].max() > 96  # boxes from later tiles are shifted into image coordinates


def test_tile_windows_cover_the_image() -> None:
    wins = tile_windows(300, 200, 96, 0.2)
    covered = np.zeros((200, 300), bool)
    for x0, y0, x1, y1 in wins:
        assert x1 - x0 <= 96 and y1 - y0 <= 96
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tile_windows(50, 40, 96) == [(0, 0, 50, 40)]


def test_merge_tiles_removes_duplicates_per_class() -> None:
    same = Predictions(np.array([[10, 10, 30, 30]]), np.array([0.9]), np.array([0]))
    other_class = Predictions(np.array([[0, 10, 20, 30]]), np.array([0.8]), np.array([1]))
    dup = Predictions(np.array([[0, 10, 20, 30]]), np.array([0.7]), np.array([0]))
    merged = merge_tiles([((0, 0, 50, 50), same), ((10, 0, 60, 50), dup), ((10, 0, 60, 50), other_class)],
                         60, 50)
    assert len(merged) == 2 and sorted(merged.labels.tolist()) == [0, 1]
    assert merged.scores.max() == pytest.approx(0.9)


def test_mirror_tta_fuses_both_views(model_dir: Path, tmp_path: Path) -> None:
    from labelloop.inference.predictions import fuse_views, mirror

    tta = tmp_path / "tta"
    tta.mkdir()
    for name in ("model.json", "best.pt"):
        (tta / name).write_bytes((model_dir / name).read_bytes())
    meta = json.loads((tta / "model.json").read_text())
    (tta / "model.json").write_text(json.dumps({**meta, "config": {**meta["config"], "tta": True}}))
    image = load_rgb(make_sample(tmp_path, 3, size=(90, 130), seed=2).path)
    plain, with_tta = load_predictor(model_dir, "torch"), load_predictor(tta, "torch")
    assert with_tta.tta and not plain.tta
    expected = fuse_views([plain.predict(image), mirror(plain.predict(np.ascontiguousarray(image[:, ::-1])), 130)])
    got = with_tta.predict(image)
    assert len(got) == len(expected) > 0
    assert np.allclose(got.boxes, expected.boxes, atol=1e-3) and np.allclose(got.scores, expected.scores, atol=1e-5)


def test_both_backends_predict_at_the_models_prediction_size(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    bigger = tmp_path / "bigger"
    shutil.copytree(model_dir, bigger, ignore=shutil.ignore_patterns("*.onnx"))
    meta = json.loads((bigger / "model.json").read_text())
    (bigger / "model.json").write_text(json.dumps({**meta, "predict_size": 2 * meta["input_size"]}))
    image = load_rgb(make_sample(tmp_path, 98, size=(96, 96), seed=3).path)
    at_training_size = load_predictor(model_dir, "torch").predict(image)
    onnx, eager = load_predictor(bigger, "onnx"), load_predictor(bigger, "torch")
    a, b = onnx.predict(image), eager.predict(image)
    assert len(a) == len(b) > 0
    assert np.allclose(np.sort(a.scores), np.sort(b.scores), atol=1e-4)  # the ONNX graph resizes to 192 px too
    assert len(a) != len(at_training_size) or not np.allclose(np.sort(a.scores), np.sort(at_training_size.scores),
                                                             atol=1e-3)


def test_an_onnx_export_is_redone_when_the_prediction_size_or_the_weights_change(model_dir: Path,
                                                                                 tmp_path: Path) -> None:
    import shutil

    from labelloop.inference.export import current_onnx

    folder = tmp_path / "m"
    shutil.copytree(model_dir, folder)
    first = current_onnx(folder).stat().st_mtime_ns
    assert current_onnx(folder).stat().st_mtime_ns == first  # up to date: not exported again
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "predict_size": 2 * meta["input_size"]}))
    second = current_onnx(folder).stat().st_mtime_ns
    assert second > first and json.loads((folder / "onnx.json").read_text())["predict_size"] == 2 * meta["input_size"]
    (folder / "best.pt").write_bytes((folder / "best.pt").read_bytes())  # resumed training rewrote the weights
    assert current_onnx(folder).stat().st_mtime_ns > second
