"""One output file: whole under its name or not there, and an error that says why it cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelloop.core.output import output_file
from labelloop.errors import InvalidInputError


def test_written_whole_under_its_name_with_no_temporary_left(tmp_path: Path) -> None:
    out = tmp_path / "new" / "book.gif"
    with output_file(out, "flipbook") as tmp:
        assert tmp.suffix == ".gif" and tmp.parent == out.parent and not out.exists()
        tmp.write_bytes(b"GIF89a")
    assert out.read_bytes() == b"GIF89a" and [p.name for p in out.parent.iterdir()] == ["book.gif"]


def test_a_failed_write_leaves_nothing_and_the_old_file_as_it_was(tmp_path: Path) -> None:
    out = tmp_path / "book.gif"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), output_file(out, "flipbook") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["book.gif"]


def test_paths_that_cannot_be_written_are_explained(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match="cannot write the ONNX model to .*afile/m.onnx") as err, \
            output_file(tmp_path / "afile" / "m.onnx", "ONNX model") as tmp:
        tmp.write_bytes(b"never")
    assert "parents are folders" in (err.value.hint or "")
    with pytest.raises(InvalidInputError, match="it is a folder") as err, output_file(tmp_path, "flipbook"):
        pass
    assert "give a file name inside it" in (err.value.hint or "")
