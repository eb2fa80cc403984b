"""The response models: every JSON route declares one, and under LABELLOOP_STRICT_RESPONSES a
field a service adds without declaring it is refused instead of dropped (the live servers of the
API and browser tests run that way and fail on any such answer)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from labelloop.api import responses as rs
from labelloop.api.app import openapi_document

ANNOTATION: dict[str, Any] = {
    "id": 1, "image_id": 2, "class_id": 3, "label": "cat", "bbox": [1.0, 2.0, 3.0, 4.0], "polygons": None,
    "rle": None, "iscrowd": False, "source": "human", "model_id": None, "score": None, "review_state": None,
    "author": "ann", "version": 1, "attributes": {}, "created_at": None, "updated_at": None}


def test_strict_mode_refuses_an_undeclared_field_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rs.STRICT_ENV, "1")
    assert rs.Annotation.model_validate(ANNOTATION).label == "cat"
    with pytest.raises(ValidationError, match="Annotation does not declare colour"):
        rs.Annotation.model_validate({**ANNOTATION, "colour": "red"})
    # nested models are checked too
    with pytest.raises(ValidationError, match="Annotation does not declare colour"):
        rs.ImageDetail.model_validate({
            "id": 2, "file_name": "a.png", "width": 4, "height": 4, "status": "new", "split": None, "sha256": "0",
            "damaged": None, "created_at": None, "regions": [], "neighbours": {"previous": None, "next": None},
            "annotations": [{**ANNOTATION, "colour": "red"}]})


def test_without_strict_mode_an_undeclared_field_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(rs.STRICT_ENV, raising=False)
    dumped = rs.Annotation.model_validate({**ANNOTATION, "colour": "red"}).model_dump()
    assert "colour" not in dumped and dumped["bbox"] == (1.0, 2.0, 3.0, 4.0)


def test_a_missing_declared_field_is_refused_in_either_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(rs.STRICT_ENV, raising=False)
    with pytest.raises(ValidationError, match="version"):
        rs.Annotation.model_validate({k: v for k, v in ANNOTATION.items() if k != "version"})


def _json_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status, answer in operation.get("responses", {}).items():
        if status.startswith("2"):
            content = answer.get("content", {})
            if "application/json" in content:
                return dict(content["application/json"].get("schema", {}))
    return None


def test_every_json_route_documents_what_it_answers() -> None:
    doc = openapi_document()
    untyped = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            schema = _json_schema(operation)
            if schema is None:  # files, tiles, logs, event streams
                continue
            target = schema.get("items", schema)
            if "$ref" not in target:
                untyped.append(f"{method.upper()} {path}: {schema}")
    assert not untyped, "routes answering JSON without a response model:\n" + "\n".join(untyped)
    # errors are documented as what the error handlers send, not FastAPI's default validation shape
    ops = [op for item in doc["paths"].values() for op in item.values()]
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    assert all(any(c.get("schema") == ref for c in op["responses"]["4XX"]["content"].values())
               for op in ops if op.get("operationId") != "health_api_health_get")
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    # and the document names the shapes the web app imports from it
    assert {"Annotation", "ImageDetail", "Job", "Overview", "Flipbook", "Effort"} <= set(doc["components"]["schemas"])
    annotation = doc["components"]["schemas"]["Annotation"]
    assert {"bbox", "polygons", "rle", "version", "source", "review_state"} <= set(annotation["required"])


def test_strict_switch_reads_common_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, strict in (("1", True), ("true", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv(rs.STRICT_ENV, value)
        assert rs._strict() is strict
