"""Uploads and zips for the web import and export: one streaming writer with a byte limit, one zip
writer, and one zip reader that refuses what would escape the target folder or exhaust the disk.

Limits (settings, ``LABELLOOP_*``): ``max_zip_members`` files, ``max_unzipped_bytes`` in all, and
``max_zip_ratio`` (unpacked / packed) for archives that unpack to more than
:data:`RATIO_CHECK_BYTES` -- images do not compress and annotation files compress 10-20x, so a
zip that unpacks 1000x its size is a bomb, not a dataset.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.settings import get_settings

__all__ = ["RATIO_CHECK_BYTES", "dataset_root", "extract_zip", "hide_paths", "save_stream", "strip_paths",
           "unpack_upload", "zip_folder"]

#: below this many unpacked bytes the ratio is not checked (small text zips compress well)
RATIO_CHECK_BYTES = 1_000_000_000
#: suffixes stored as they are in a zip (they do not compress)
_STORED = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip", ".gz"}
_CHUNK = 1 << 20


def save_stream(source: BinaryIO, target: Path, *, limit: int, what: str, hint: str) -> int:
    """Copy ``source`` to ``target`` in chunks, refusing more than ``limit`` bytes; returns the size."""
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise InvalidInputError(f"{what}: over the limit of {limit} bytes", hint)
            out.write(chunk)
    return written


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip ``folder``'s content; images are stored (they do not compress), the rest deflated."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                method = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(folder).as_posix(), compress_type=method)
    return target


def _check_members(members: list[zipfile.ZipInfo], packed: int) -> None:
    s = get_settings()
    if len(members) > s.max_zip_members:
        raise InvalidInputError(f"the zip holds {len(members)} files, over the limit of {s.max_zip_members}",
                                "split the dataset, or raise LABELLOOP_MAX_ZIP_MEMBERS")
    unpacked = sum(m.file_size for m in members)
    if unpacked > s.max_unzipped_bytes:
        raise InvalidInputError(f"the zip unpacks to {unpacked} bytes, over the limit of {s.max_unzipped_bytes}",
                                "import from the CLI, or raise LABELLOOP_MAX_UNZIPPED_BYTES")
    if unpacked > RATIO_CHECK_BYTES and unpacked > s.max_zip_ratio * max(1, packed):
        raise InvalidInputError(f"the zip unpacks to {unpacked // max(1, packed)}x its size, over the limit of "
                                f"{s.max_zip_ratio:g}x: a dataset does not compress that well",
                                "re-create the zip from the dataset's files, or raise LABELLOOP_MAX_ZIP_RATIO")
    for m in members:
        name = PurePosixPath(m.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
            raise InvalidInputError(f"the zip member {m.filename!r} points outside the archive",
                                    "re-create the zip with relative paths")


def extract_zip(archive: Path, target: Path) -> None:
    """Extract ``archive`` into ``target`` within the limits, refusing absolute paths, ``..`` and links
    (zip slip); ``__MACOSX`` folders are left out."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            _check_members(members, archive.stat().st_size)
            for m in members:
                parts = PurePosixPath(m.filename.replace("\\", "/")).parts
                if parts and parts[0] == "__MACOSX":
                    continue
                zf.extract(m, target)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"the upload is not a readable zip ({exc})", "upload a .zip or an annotation file") \
            from exc


def dataset_root(folder: Path) -> Path:
    """The extracted folder, or its one sub-folder when the zip wraps everything in one."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def unpack_upload(upload: Path, work: Path) -> Path:
    """What to import from an uploaded file: a zip is extracted into ``work/extracted`` (and removed),
    its dataset root returned; any other file is returned as it is."""
    if not zipfile.is_zipfile(upload):
        return upload
    folder = work / "extracted"
    folder.mkdir()
    extract_zip(upload, folder)
    upload.unlink()
    return dataset_root(folder)


def strip_paths(value: Any, folder: Path) -> Any:
    """``value`` (a report: strings, lists, dicts) with the server's working ``folder`` cut from every
    path in it, so a user sees ``images/a.jpg``, not where the server keeps its temporary files."""
    prefixes = {str(folder) + os.sep, str(folder.resolve()) + os.sep}
    if isinstance(value, str):
        for prefix in prefixes:
            value = value.replace(prefix, "")
        return value
    if isinstance(value, list):
        return [strip_paths(v, folder) for v in value]
    if isinstance(value, dict):
        return {k: strip_paths(v, folder) for k, v in value.items()}
    return value


@contextmanager
def hide_paths(folder: Path) -> Iterator[None]:
    """Errors raised inside name files relative to ``folder`` (see :func:`strip_paths`)."""
    try:
        yield
    except LabelloopError as err:
        err.message = strip_paths(err.message, folder)
        err.hint = strip_paths(err.hint, folder)
        err.args = (err.message,)
        raise
