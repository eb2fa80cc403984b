"""Zips and uploads of the web import: what escapes the folder or would exhaust the disk is refused
with the limit's name; the rest unpacks to its dataset root."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from labelloop.errors import InvalidInputError
from labelloop.services import archives
from labelloop.services.archives import extract_zip, save_stream, unpack_upload, zip_folder
from labelloop.settings import get_settings


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_a_wrapped_dataset_unpacks_to_its_root_without_mac_folders(tmp_path: Path) -> None:
    upload = _zip(tmp_path / "up.zip", {"ds/annotations.json": b"{}", "ds/images/a.jpg": b"x",
                                        "__MACOSX/ds/._a.jpg": b"junk"})
    root = unpack_upload(upload, tmp_path)
    assert root == tmp_path / "extracted" / "ds" and (root / "images" / "a.jpg").read_bytes() == b"x"
    assert not (tmp_path / "extracted" / "__MACOSX").exists() and not upload.exists()
    plain = tmp_path / "labels.json"
    plain.write_text("{}")
    assert unpack_upload(plain, tmp_path) == plain  # not a zip: imported as it is


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_members_outside_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInputError, match="points outside the archive"):
        extract_zip(_zip(tmp_path / "z.zip", {"ok.txt": b"1", name: b"2"}), tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*"))  # checked before writing


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.json": b"\0" * 20_000_000})  # ~20 KB packed
    monkeypatch.setattr(archives, "RATIO_CHECK_BYTES", 1_000_000)  # the 1 GB threshold, scaled down
    with pytest.raises(InvalidInputError) as caught:
        extract_zip(bomb, tmp_path / "out")
    assert "x its size, over the limit of 100x" in caught.value.message
    assert "LABELLOOP_MAX_ZIP_RATIO" in (caught.value.hint or "")
    assert not (tmp_path / "out").exists()


def test_total_size_and_member_count_limits_name_their_setting(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _zip(tmp_path / "z.zip", {f"f{i}.txt": b"0123456789" for i in range(5)})
    get_settings.cache_clear()
    try:
        monkeypatch.setenv("LABELLOOP_MAX_UNZIPPED_BYTES", "40")
        with pytest.raises(InvalidInputError, match="unpacks to 50 bytes, over the limit of 40") as caught:
            extract_zip(archive, tmp_path / "out")
        assert "LABELLOOP_MAX_UNZIPPED_BYTES" in (caught.value.hint or "")
        get_settings.cache_clear()
        monkeypatch.setenv("LABELLOOP_MAX_ZIP_MEMBERS", "4")
        with pytest.raises(InvalidInputError, match="holds 5 files, over the limit of 4"):
            extract_zip(archive, tmp_path / "out")
    finally:
        get_settings.cache_clear()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(InvalidInputError, match="not a readable zip"):
        extract_zip(broken, tmp_path / "out")


def test_uploads_stream_to_disk_within_their_limit(tmp_path: Path) -> None:
    assert save_stream(io.BytesIO(b"a" * 3_000_000), tmp_path / "ok", limit=3_000_000, what="x", hint="h") == 3_000_000
    with pytest.raises(InvalidInputError, match="big.jpg: over the limit of 1000 bytes"):
        save_stream(io.BytesIO(b"a" * 5000), tmp_path / "no", limit=1000, what="big.jpg", hint="h")


def test_export_zip_stores_images_and_deflates_the_rest(tmp_path: Path) -> None:
    (tmp_path / "ds" / "images").mkdir(parents=True)
    (tmp_path / "ds" / "images" / "a.jpg").write_bytes(b"\xff\xd8" + b"1" * 1000)
    (tmp_path / "ds" / "annotations.json").write_text("{" + " " * 1000 + "}")
    with zipfile.ZipFile(zip_folder(tmp_path / "ds", tmp_path / "out.zip")) as zf:
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert kinds == {"annotations.json": zipfile.ZIP_DEFLATED, "images/a.jpg": zipfile.ZIP_STORED}


def test_a_link_inside_a_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("ds/a.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link, as zip -y stores it
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InvalidInputError, match="points outside the archive"):
        extract_zip(archive, tmp_path / "out")
