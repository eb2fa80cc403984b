"""Base-model catalog: pick an architecture + local ImageNet weights by name.

Importing this package does not import torch; builders import it when called::

    spec = get_base_model("fcos-lite0")
    model = spec.build(num_classes=3)            # ImageNet backbone from a local package
"""

from labelloop.models.spec import (
    TASKS,
    BaseModelSpec,
    ClassHead,
    get_base_model,
    list_base_models,
    register_base_model,
)

__all__ = [
    "TASKS",
    "BaseModelSpec",
    "ClassHead",
    "get_base_model",
    "list_base_models",
    "register_base_model",
]
