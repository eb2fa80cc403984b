"""labelloop: image annotation with a model in the loop.

Importing this package does nothing but define names; heavy libraries (torch,
onnxruntime, fastapi) are imported inside the adapters that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
