"""The written CVAT function passes cvat-sdk's own checks (spec validation and the driver's
output validation/remapping), without a CVAT server."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image as PILImage

from labelloop.errors import InvalidInputError
from labelloop.integrations.cvat import write_cvat_function
from selection.loopkit import trained_demo

cvataa = pytest.importorskip("cvat_sdk.auto_annotation")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow

from cvat_sdk import models  # noqa: E402
from cvat_sdk.auto_annotation.driver import _AnnotationMapper, _DetectionFunctionContextImpl  # noqa: E402


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset_labels(names: list[str], kind: str) -> list:
    return [models.PatchedLabelRequest(id=100 + i, name=n, type=kind, sublabels=[], attributes=[])
            for i, n in enumerate(names)]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    root, model_id = trained_demo()
    return root / "models" / str(model_id)


def _frame(model_dir: Path) -> PILImage.Image:
    images = sorted((model_dir.parents[1] / "demo-source" / "images").glob("*.jpg"))
    return PILImage.open(images[-1])


def test_detection_function_passes_the_driver_checks(model_dir, tmp_path):
    out = write_cvat_function(model_dir, tmp_path / "fn" / "labelloop_fn.py")
    assert (tmp_path / "fn" / "labelloop_fn.onnx").is_file()
    module = _load(out)
    assert isinstance(module.spec, cvataa.DetectionFunctionSpec)
    assert [lab.name for lab in module.spec.labels] == ["circle", "square", "triangle"]
    mapper = _AnnotationMapper(logging.getLogger("test"), module.spec.labels,
                               _dataset_labels(["circle", "square", "triangle"], "rectangle"),
                               allow_unmatched_labels=False, conv_mask_to_poly=False)
    ctx = _DetectionFunctionContextImpl(frame_name="x.jpg", conf_threshold=0.01)
    shapes = module.detect(ctx, _frame(model_dir))
    assert shapes, "a low threshold should give some boxes"
    _, remapped = mapper.validate_and_remap(shapes, 7)
    assert len(remapped) == len(shapes) and {s.frame for s in remapped} == {7}
    assert {s.label_id for s in remapped} <= {100, 101, 102} and all(s.type.value == "rectangle" for s in remapped)
    strict = module.detect(_DetectionFunctionContextImpl(frame_name="x.jpg", conf_threshold=0.99), _frame(model_dir))
    assert len(strict) <= len(shapes)
    # create(**params) as cvat-cli calls it, with the model moved elsewhere
    moved = tmp_path / "elsewhere.onnx"
    shutil.copyfile(tmp_path / "fn" / "labelloop_fn.onnx", moved)
    fn = module.create(model_path=str(moved), threshold="0.01")
    assert len(fn.detect(_DetectionFunctionContextImpl(frame_name="x.jpg"), _frame(model_dir))) == len(shapes)


def test_segment_function_gives_masks_or_polygons(model_dir, tmp_path):
    seg_dir = tmp_path / "seg"
    shutil.copytree(model_dir, seg_dir)
    meta = json.loads((seg_dir / "model.json").read_text())
    (seg_dir / "model.json").write_text(json.dumps({**meta, "task": "segment"}))
    module = _load(write_cvat_function(seg_dir, tmp_path / "seg_fn.py"))
    assert all(lab.type == "mask" for lab in module.spec.labels)
    mask = np.zeros((1, 1, 40, 60), dtype=np.float32)
    mask[0, 0, 10:30, 5:25] = 0.9
    fake = {"boxes": np.array([[5, 10, 25, 30]], np.float32), "scores": np.array([0.8], np.float32),
            "labels": np.array([2]), "masks": mask}
    fn = module.create()
    fn._run = lambda pixels: fake  # the mask path without a segment model
    image = PILImage.new("RGB", (60, 40))
    for to_poly, kind in ((False, "mask"), (True, "polygon")):
        ctx = _DetectionFunctionContextImpl(frame_name="f.png", conf_threshold=0.5, conv_mask_to_poly=to_poly)
        shapes = fn.detect(ctx, image)
        mapper = _AnnotationMapper(logging.getLogger("test"), module.spec.labels,
                                   _dataset_labels(["circle", "square", "triangle"], "any"),
                                   allow_unmatched_labels=False, conv_mask_to_poly=to_poly)
        _, remapped = mapper.validate_and_remap(shapes, 0)
        assert [s.type.value for s in remapped] == [kind] and remapped[0].label_id == 101
    assert fn.detect(_DetectionFunctionContextImpl(frame_name="f.png", conf_threshold=0.9), image) == []


def test_refuses_what_it_cannot_write(model_dir, tmp_path):
    with pytest.raises(InvalidInputError, match=r"\.py"):
        write_cvat_function(model_dir, tmp_path / "fn.txt")
    with pytest.raises(Exception, match="model.json"):
        write_cvat_function(tmp_path, tmp_path / "fn.py")
