"""Builders for the built-in catalog. Imported lazily (imports torch/torchvision).

Label convention for every model: 0 is background, data-set class ``k`` is ``k + 1``.
Models take a list of ``(3, H, W)`` float ``[0, 1]`` tensors and resize / normalise
internally, so exported ONNX graphs take raw RGB too.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign

from labelloop.models.backbone import EfficientNetLiteFPN
from labelloop.models.semseg import SemanticFPN
from labelloop.models.spec import BaseModelSpec
from labelloop.models.weights import load_weights_file

__all__ = ["build_fasterrcnn", "build_fcos", "build_maskrcnn", "build_semseg", "set_input_size"]

FPN_CHANNELS = 128
MAX_DETECTIONS = 300  # crowded images (cells, cars) easily exceed torchvision's 100


def _finish(model: nn.Module, weights_path: str | Path | None) -> nn.Module:
    if weights_path is not None:
        load_weights_file(model, weights_path)
    return model


def _variant(spec: BaseModelSpec) -> str:
    return "lite2" if "lite2" in spec.weights_package else "lite0"


class FloatLossFCOSHead(FCOSHead):
    """torchvision's FCOS head whose losses are computed in float32 even under autocast: in bfloat16
    the GIoU of tiny decoded boxes and the centre-ness targets lose their precision, and a single
    step's gradients can overflow (seen on 64 px images after a dozen steps).

    ``object_balance`` (0 = torchvision's loss): each positive location's loss is weighted by
    ``1 / positives(object) ** object_balance``, rescaled so the weights still sum to the number of
    positives. FCOS gives an object one positive per location inside it, so a 100 px object outweighs
    a 12 px one ~50 times; at 0.5 the small one counts for more.
    """

    object_balance: float = 0.0

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        device = next(iter(head_outputs.values())).device.type
        outputs = {k: v.float() for k, v in head_outputs.items()}
        with torch.autocast(device, enabled=False):
            if not self.object_balance:
                return super().compute_loss(targets, outputs, [a.float() for a in anchors], matched_idxs)
            return self._balanced_loss(targets, outputs, torch.stack([a.float() for a in anchors]),
                                       torch.stack(matched_idxs))

    def _weights(self, matched: Tensor) -> Tensor:
        """``(N, HWA)`` weight of each positive location (0 elsewhere), summing to the positives' count."""
        weights = torch.zeros_like(matched, dtype=torch.float32)
        for n in range(matched.shape[0]):
            fg = matched[n] >= 0
            if fg.any():
                counts = torch.bincount(matched[n][fg])
                weights[n][fg] = counts[matched[n][fg]].float() ** -self.object_balance
        fg_all = matched >= 0
        total = weights[fg_all].sum()
        return weights * (fg_all.sum() / total) if total > 0 else weights

    def _balanced_loss(self, targets: list[dict[str, Tensor]], outputs: dict[str, Tensor], anchors: Tensor,
                       matched: Tensor) -> dict[str, Tensor]:
        from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

        logits, regression, ctrness = outputs["cls_logits"], outputs["bbox_regression"], outputs["bbox_ctrness"]
        gt_boxes = torch.stack([t["boxes"][m.clip(min=0)] if len(t["boxes"]) else t["boxes"].new_zeros((len(m), 4))
                                for t, m in zip(targets, matched, strict=True)])
        gt_labels = torch.stack([t["labels"][m.clip(min=0)] if len(t["labels"]) else t["labels"].new_zeros(len(m))
                                 for t, m in zip(targets, matched, strict=True)])
        fg = matched >= 0
        num_fg = max(1, int(fg.sum()))
        weights = self._weights(matched)
        onehot = torch.zeros_like(logits)
        onehot[fg, gt_labels[fg]] = 1.0
        cls = sigmoid_focal_loss(logits, onehot, reduction="none").sum(-1)
        cls = (cls * torch.where(fg, weights, torch.ones_like(weights))).sum()
        w = weights[fg]
        pred = self.box_coder.decode(regression, anchors)
        reg = (generalized_box_iou_loss(pred[fg], gt_boxes[fg], reduction="none") * w).sum()
        codes = self.box_coder.encode(anchors, gt_boxes)
        lr, tb = codes[..., [0, 2]], codes[..., [1, 3]]
        target_ctr = torch.sqrt((lr.min(-1)[0] / lr.max(-1)[0]) * (tb.min(-1)[0] / tb.max(-1)[0]))
        ctr = (nn.functional.binary_cross_entropy_with_logits(ctrness.squeeze(-1)[fg], target_ctr[fg],
                                                               reduction="none") * w).sum()
        return {"classification": cls / num_fg, "bbox_regression": reg / num_fg, "bbox_ctrness": ctr / num_fg}


def build_fcos(spec: BaseModelSpec, num_classes: int, pretrained: bool = True,
               weights_path: str | Path | None = None) -> nn.Module:
    """FCOS on P3-P7 (strides 8-128); anchor sizes = strides, so 8 px objects still match."""
    backbone = EfficientNetLiteFPN(_variant(spec), FPN_CHANNELS, extra="p6p7",
                                   pretrained=pretrained and weights_path is None,
                                   freeze=pretrained or weights_path is not None)
    anchors = AnchorGenerator(sizes=((8,), (16,), (32,), (64,), (128,)), aspect_ratios=((1.0,),) * 5)
    head = FloatLossFCOSHead(backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes + 1)
    model = FCOS(backbone, num_classes=num_classes + 1, min_size=spec.input_size, max_size=spec.input_size,
                 image_mean=list(spec.mean), image_std=list(spec.std), anchor_generator=anchors, head=head,
                 score_thresh=0.05, detections_per_img=MAX_DETECTIONS, topk_candidates=1000)
    return _finish(model, weights_path)


def _rcnn_parts(spec: BaseModelSpec, pretrained: bool,
                weights_path: str | Path | None) -> tuple[EfficientNetLiteFPN, AnchorGenerator, RPNHead]:
    backbone = EfficientNetLiteFPN(_variant(spec), FPN_CHANNELS, extra="pool",
                                   pretrained=pretrained and weights_path is None,
                                   freeze=pretrained or weights_path is not None)
    # two sizes x three ratios per level; 12 px at stride 8 for small objects
    sizes = ((12, 20), (32, 48), (80, 128), (200, 400))
    anchors = AnchorGenerator(sizes=sizes, aspect_ratios=((0.5, 1.0, 2.0),) * len(sizes))
    rpn_head = RPNHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0])
    return backbone, anchors, rpn_head


def _rcnn_kwargs(spec: BaseModelSpec) -> dict[str, object]:
    return dict(min_size=spec.input_size, max_size=spec.input_size, image_mean=list(spec.mean),
                image_std=list(spec.std), box_detections_per_img=MAX_DETECTIONS,
                # fewer proposals than torchvision's 2000/1000: the box head dominates CPU time
                rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=600,
                rpn_pre_nms_top_n_test=600, rpn_post_nms_top_n_test=MAX_DETECTIONS,
                box_batch_size_per_image=256,
                box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2))


def build_fasterrcnn(spec: BaseModelSpec, num_classes: int, pretrained: bool = True,
                     weights_path: str | Path | None = None) -> nn.Module:
    """Faster R-CNN + FPN (P3-P5 + pool)."""
    backbone, anchors, rpn_head = _rcnn_parts(spec, pretrained, weights_path)
    model = FasterRCNN(backbone, num_classes=num_classes + 1, rpn_anchor_generator=anchors,
                       rpn_head=rpn_head, **_rcnn_kwargs(spec))
    return _finish(model, weights_path)


def build_maskrcnn(spec: BaseModelSpec, num_classes: int, pretrained: bool = True,
                   weights_path: str | Path | None = None) -> nn.Module:
    """Mask R-CNN + FPN; masks are 28x28 per RoI, pasted to image size by torchvision."""
    backbone, anchors, rpn_head = _rcnn_parts(spec, pretrained, weights_path)
    model = MaskRCNN(backbone, num_classes=num_classes + 1, rpn_anchor_generator=anchors,
                     rpn_head=rpn_head,
                     mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2),
                     **_rcnn_kwargs(spec))
    return _finish(model, weights_path)


def build_semseg(spec: BaseModelSpec, num_classes: int, pretrained: bool = True,
                 weights_path: str | Path | None = None) -> nn.Module:
    """Semantic FPN with ``num_classes + 1`` outputs (0 = background)."""
    backbone = EfficientNetLiteFPN(_variant(spec), FPN_CHANNELS, extra=None,
                                   pretrained=pretrained and weights_path is None,
                                   freeze=pretrained or weights_path is not None)
    model = SemanticFPN(backbone, num_classes + 1, spec.input_size, spec.mean, spec.std)
    return _finish(model, weights_path)


def set_input_size(model: nn.Module, size: int) -> None:
    """Make ``model`` resize every image so its longest side is ``size`` pixels."""
    transform = getattr(model, "transform", None)
    if transform is not None and hasattr(transform, "max_size"):  # torchvision detectors
        transform.min_size = (size,)
        transform.max_size = size
    elif hasattr(model, "input_size"):  # SemanticFPN and custom models
        model.input_size = size
