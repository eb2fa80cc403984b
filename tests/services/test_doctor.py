"""Broken images among many: import decodes every file once (a truncated one is kept and flagged
damaged, undecodable ones are refused by name), and `doctor` finds what broke on disk afterwards."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.services.doctor import check_images
from labelloop.services.images import ImageFilter, list_images
from labelloop.services.importing import import_dataset
from labelloop.services.projects import new_project
from labelloop.services.stats import project_stats
from labelloop.store.tables import Image

LABELLOOP = str(Path(sys.executable).parent / "labelloop")
N = 1000


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.full((24, 32, 3), seed % 255, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _dataset(root: Path) -> tuple[DatasetRecord, dict[str, str]]:
    """N images; four broken on purpose: truncated (still decodes), cut to 20 bytes, zero bytes, not an image;
    and one with the wrong extension (a PNG named .jpg: the content decides, so it is fine)."""
    root.mkdir(parents=True)
    broken = {"img_0007.jpg": "truncated", "img_0100.jpg": "20 bytes", "img_0500.jpg": "empty",
              "img_0900.jpg": "garbage", "img_0300.jpg": "png inside"}
    images = []
    for i in range(N):
        name = f"img_{i:04d}.jpg"
        data = _jpeg(i)
        kind = broken.get(name)
        data = {"truncated": data[: len(data) * 2 // 3], "20 bytes": data[:20], "empty": b"",
                "garbage": b"this is not a picture" * 10, "png inside": _png(i)}.get(kind, data) if kind else data
        (root / name).write_bytes(data)
        images.append(ImageRecord(file_name=name, path=root / name, annotations=[
            AnnotationRecord(label="thing", bbox=(2, 2, 12, 12))]))
    return DatasetRecord(labels=["thing"], images=images), broken


def test_import_decodes_every_image_and_doctor_finds_what_broke_later(tmp_path: Path) -> None:
    data, broken = _dataset(tmp_path / "data")
    ctx = new_project(tmp_path / "p", labels=["thing"])
    with pytest.raises(FormatError):  # all or nothing: three files cannot be decoded
        import_dataset(ctx, data)
    assert project_stats(ctx)["images"]["total"] == 0
    report = import_dataset(ctx, data, skip_invalid=True)
    refused = {name for name, kind in broken.items() if kind not in ("truncated", "png inside")}
    assert report.images_added == N - 3
    assert len(report.skipped) == 3 and all(any(name in line for line in report.skipped) for name in refused)
    assert [d["file_name"] for d in report.damaged] == ["img_0007.jpg"] and "truncated" in report.damaged[0]["reason"]
    stats = project_stats(ctx)["images"]
    assert stats["damaged"] == 1
    flagged = list_images(ctx, ImageFilter(damaged=True))["items"]
    assert [i["file_name"] for i in flagged] == ["img_0007.jpg"] and flagged[0]["damaged"]
    assert list_images(ctx, ImageFilter(damaged=False), with_total=True)["total"] == N - 4
    from labelloop.services.images import thumbnail

    with PILImage.open(thumbnail(ctx, flagged[0]["id"], 128)) as thumb:  # a damaged image still shows
        assert thumb.size == (32, 24)

    # on disk afterwards: one file removed, one overwritten with other pixels
    with ctx.store.session() as s:
        rows = {i.file_name: i for i in s.query(Image).filter(Image.project_id == ctx.id)}
        gone, replaced = rows["img_0001.jpg"], rows["img_0002.jpg"]
        (ctx.root / gone.storage_path).unlink()
        (ctx.root / replaced.storage_path).write_bytes(_jpeg(12345))
    found = check_images(ctx)
    assert found["checked"] == N - 3 and found["counts"] == {"damaged": 1, "missing": 1, "changed": 1}
    assert {p["file_name"]: p["problem"] for p in found["problems"]} == {
        "img_0007.jpg": "damaged", "img_0001.jpg": "missing", "img_0002.jpg": "changed"}
    assert found["fixed"] == 0 and project_stats(ctx)["images"]["damaged"] == 1  # a report changes nothing
    fixed = check_images(ctx, fix=True)
    assert fixed["fixed"] == 2 and project_stats(ctx)["images"]["damaged"] == 3
    ctx.close()
    r = subprocess.run([LABELLOOP, "doctor", "--json", "-p", str(tmp_path / "p")], capture_output=True, text=True,
                       env={**os.environ, "LABELLOOP_DEBUG": ""}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == {"damaged": 1, "missing": 1, "changed": 1}


def test_doctor_fix_marks_the_file_in_every_layer(tmp_path: Path) -> None:
    from labelloop.services.layers import add_layer, layer_context

    data, _ = _dataset(tmp_path / "data")
    data.images = [i for i in data.images[:30] if i.file_name != "img_0007.jpg"]  # whole files only
    ctx = new_project(tmp_path / "p", labels=["thing"])
    try:
        import_dataset(ctx, data)
        add_layer(ctx, "cells", "detect", labels=["cell"])
        first, cells = layer_context(ctx, None, default_first=True), layer_context(ctx, "cells")
        with first.store.session() as s:
            row = s.query(Image).filter(Image.project_id == first.id, Image.file_name == "img_0003.jpg").one()
            (first.root / row.storage_path).unlink()
        fixed = check_images(cells, fix=True)  # run from the second layer
        assert fixed["counts"] == {"missing": 1} and fixed["fixed"] == 1
        assert project_stats(first)["images"]["damaged"] == project_stats(cells)["images"]["damaged"] == 1
        assert [i["file_name"] for i in list_images(first, ImageFilter(damaged=True))["items"]] == ["img_0003.jpg"]
        (first.root / row.storage_path).write_bytes(_jpeg(3))  # whole again: cleared everywhere
        assert check_images(first, fix=True)["fixed"] == 1
        assert project_stats(first)["images"]["damaged"] == project_stats(cells)["images"]["damaged"] == 0
    finally:
        ctx.close()
