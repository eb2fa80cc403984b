"""The one "--json or for people" switch every command uses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pytest

from labelloop.cli.common import output


@dataclass
class _Report:
    images: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def test_json_prints_the_data_and_skips_the_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    rendered: list[object] = []
    output({"images": 3, "when": object}, True, rendered.append)
    assert rendered == []
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == 3 and "class" in data["when"]  # non-JSON values as their str()


def test_report_objects_are_printed_through_as_dict(capsys: pytest.CaptureFixture[str]) -> None:
    output(_Report(images=5), True, lambda r: None)
    assert json.loads(capsys.readouterr().out) == {"images": 5}


def test_without_json_the_renderer_gets_the_data_itself(capsys: pytest.CaptureFixture[str]) -> None:
    rendered: list[_Report] = []
    report = _Report(images=2)
    output(report, False, rendered.append)
    assert rendered == [report] and capsys.readouterr().out == ""
