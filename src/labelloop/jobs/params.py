"""What a job may be started with: the parameters of each kind, checked when it is submitted (the
API and the Label Studio backend submit through here), so a bad one is refused with its reason
before a job row exists."""

from __future__ import annotations

import json
from typing import Any

from labelloop.errors import InvalidInputError

__all__ = ["check_job_params"]


def check_job_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` when a job of ``kind`` can start with them, else an :class:`InvalidInputError` saying
    which parameter is wrong and what was expected (before any job row exists)."""
    if len(json.dumps(params)) > 20_000:
        raise InvalidInputError("job parameters are too large", "keep them under 20 kB")
    if kind in ("train", "sweep") and not isinstance(params.get("args", ""), str):
        raise InvalidInputError("args must be a string like 'epochs=30;batch_size=8'")
    if kind == "sweep":
        from labelloop.services.sweep import sweep_configurations

        grid, variants = params.get("grid"), params.get("variants")
        if grid is not None and not isinstance(grid, str):
            raise InvalidInputError('grid must be a string, e.g. "lr=0.01,0.003;epochs=10,30"')
        if variants is not None and not (isinstance(variants, list) and all(isinstance(v, str) for v in variants)):
            raise InvalidInputError('variants must be a list of argument strings, e.g. ["lr=0.01", "lr=0.001"]')
        sweep_configurations(grid, variants, base=params.get("base") or None, args=params.get("args") or "")
    if kind == "preannotate" and params.get("engine") not in (None, "", "auto", "local", "ray"):
        raise InvalidInputError(f"engine must be auto, local or ray, got {params['engine']!r}")
    if kind == "suggest":
        n = params.get("n", 50)
        if not isinstance(n, int) or not 1 <= n <= 10_000:
            raise InvalidInputError(f"n must be a whole number in 1..10000, got {n!r}")
        if params.get("strategy") is not None:
            from labelloop.selection.strategies import check_strategy

            check_strategy(str(params["strategy"]))
    return params
