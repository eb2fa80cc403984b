"""Pre-annotation: load a trained model, predict (onnxruntime or torch), export ONNX.

Names resolve lazily; importing this package does not import torch or onnxruntime::

    predictor = load_predictor("runs/1")          # onnxruntime when installed
    preds = predictor.predict(rgb_uint8_hw3)       # boxes, scores, labels, masks
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Predictions", "Predictor", "export_onnx", "load_predictor"]

_HOME = {"Predictions": "predictions", "Predictor": "predictor", "load_predictor": "predictor",
         "export_onnx": "export"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"labelloop.inference.{_HOME[name]}"), name)
    raise AttributeError(f"module 'labelloop.inference' has no attribute {name!r}")
