"""A light semantic-segmentation model (Semantic FPN head) with a torchvision-like interface.

Class 0 is background (a real class, counted in mIoU); class ``k + 1`` is the
data set's class ``k``. Pixels labelled ``IGNORE_INDEX`` (outside training regions,
padding) carry no loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["IGNORE_INDEX", "SemanticFPN"]

IGNORE_INDEX = 255


class _SemanticHead(nn.Module):
    """Sums upsampled FPN levels (strides 8/16/32) and predicts ``(B, num_classes, H/8, W/8)`` logits."""

    def __init__(self, in_channels: int, num_classes: int, mid: int = 64, levels: int = 3) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, mid, 3, padding=1, bias=False), nn.GroupNorm(8, mid),
                          nn.ReLU(inplace=True))
            for _ in range(levels))
        self.classifier = nn.Conv2d(mid, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        size = feats[0].shape[-2:]
        x = self.lateral[0](feats[0])
        for conv, f in zip(self.lateral[1:], feats[1:], strict=True):
            x = x + F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False)
        return self.classifier(x)


class SemanticFPN(nn.Module):
    """``backbone`` (an :class:`EfficientNetLiteFPN` without extra levels) + a semantic head.

    Call like a torchvision detector:

    * training: ``model(images, targets) -> {"loss_seg": Tensor}`` where ``images`` is a
      list of ``(3, H, W)`` float ``[0, 1]`` tensors and each target has ``"semantic"``:
      ``(H, W)`` int64 class map (0 = background, 255 = ignore);
    * eval: ``model(images) -> [{"semantic": (H, W) int64, "scores": (H, W) float}]`` at
      each image's original size.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, input_size: int,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = _SemanticHead(backbone.out_channels, num_classes)
        self.num_classes = num_classes
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1), persistent=False)

    def _prepare(self, image: Tensor) -> tuple[Tensor, float]:
        """Normalise and resize so the longest side is ``input_size``: ``(3, h, w)`` and the scale."""
        h, w = image.shape[-2], image.shape[-1]
        x = (image - self.mean) / self.std
        if isinstance(h, Tensor):  # ONNX tracing: sizes are tensors, keep the graph dynamic
            scale_t = self.input_size / torch.maximum(h, w).float()
            size = [(h.float() * scale_t).round().long(), (w.float() * scale_t).round().long()]
            return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0], 1.0
        scale = self.input_size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        return x, scale

    def _batch(self, images: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """Pad to a common size divisible by 32: ``(B, 3, H, W)`` and each image's resized size."""
        prepared = [self._prepare(im)[0] for im in images]
        if len(prepared) == 1:  # no padding needed (and none traced into ONNX)
            return prepared[0][None], [(prepared[0].shape[-2], prepared[0].shape[-1])]
        sizes = [(int(p.shape[-2]), int(p.shape[-1])) for p in prepared]
        ph = (max(s[0] for s in sizes) + 31) // 32 * 32
        pw = (max(s[1] for s in sizes) + 31) // 32 * 32
        batch = prepared[0].new_zeros((len(prepared), 3, ph, pw))
        for i, p in enumerate(prepared):
            batch[i, :, : p.shape[-2], : p.shape[-1]] = p
        return batch, sizes

    def logits(self, batch: Tensor) -> Tensor:
        """``(B, 3, H, W)`` normalised -> ``(B, num_classes, H, W)`` logits at input resolution."""
        feats = list(self.backbone(batch).values())[:3]
        out = self.head(feats)
        return F.interpolate(out, size=batch.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
                ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        batch, sizes = self._batch(images)
        logits = self.logits(batch)
        if self.training:
            if targets is None:
                raise ValueError("SemanticFPN needs targets in training mode")
            label = torch.full(logits.shape[:1] + logits.shape[2:], IGNORE_INDEX, dtype=torch.long,
                               device=logits.device)
            for i, (t, (h, w)) in enumerate(zip(targets, sizes, strict=True)):
                sem = t["semantic"][None, None].float()
                label[i, :h, :w] = F.interpolate(sem, size=(h, w), mode="nearest")[0, 0].long()
            return {"loss_seg": F.cross_entropy(logits, label, ignore_index=IGNORE_INDEX)}
        results = []
        for i, (im, (h, w)) in enumerate(zip(images, sizes, strict=True)):
            lg = logits[i : i + 1] if len(images) == 1 else logits[i : i + 1, :, :h, :w]
            lg = F.interpolate(lg, size=im.shape[-2:], mode="bilinear", align_corners=False)
            probs = lg.softmax(1)[0]
            scores, semantic = probs.max(0)
            results.append({"semantic": semantic, "scores": scores})
        return results
