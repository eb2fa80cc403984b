"""Integrations with other annotation tools (CVAT auto-annotation functions)."""

from __future__ import annotations

from labelloop.integrations.cvat import write_cvat_function

__all__ = ["write_cvat_function"]
