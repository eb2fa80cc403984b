"""Export a project in any format as a zip; import a zip or an annotation file."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from labelloop.api.deps import CurrentUser, Project, ServerState, permission, state
from labelloop.errors import InvalidInputError
from labelloop.formats import list_formats
from labelloop.services.exporting import export_project
from labelloop.services.importing import import_path
from labelloop.services.users import UserInfo

router = APIRouter(tags=["import and export"])
State = Annotated[ServerState, Depends(state)]
MAX_UPLOAD = 20 * 1024**3
MAX_MEMBERS = 2_000_000
_STORED = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip", ".gz"}


@router.get("/api/formats", summary="Annotation formats: which can be imported and exported")
def formats(_: CurrentUser) -> list[dict[str, Any]]:
    return [{"name": f.name, "description": f.description, "can_write": f.can_write, "holds": sorted(f.holds)}
            for f in list_formats()]


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip ``folder``'s content; images are stored (they do not compress), the rest deflated."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                method = zipfile.ZIP_STORED if path.suffix.lower() in _STORED else zipfile.ZIP_DEFLATED
                zf.write(path, path.relative_to(folder).as_posix(), compress_type=method)
    return target


@router.get("/api/projects/{slug}/export", response_class=FileResponse, summary="Download the project as a zip")
def export(ctx: Project, st: State, _: Annotated[UserInfo, Depends(permission("data.export"))],
           format: str = "coco", split: str | None = None, include_proposals: bool = False,
           images: str = "copy") -> FileResponse:
    if images not in ("copy", "none"):
        raise InvalidInputError(f"images={images!r}", "expected copy (images in the zip) or none")
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="export-", dir=st.registry.paths.tmp))
    try:
        report = export_project(ctx, work / "dataset", format=format, split=split or None,
                                include_proposals=include_proposals, images=images)
        archive = zip_folder(work / "dataset", work / "export.zip")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    name = f"{ctx.root.name}-{format}{'-' + split if split else ''}.zip"
    # images whose file is gone are left out of the zip (their annotations are in it): say how many
    return FileResponse(archive, filename=name, media_type="application/zip",
                        headers={"X-Labelloop-Missing-Images": str(len(report.missing_images))},
                        background=BackgroundTask(shutil.rmtree, work, True))


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract refusing absolute paths, ``..`` and links (zip slip), and absurd member counts."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise InvalidInputError(f"the zip holds {len(members)} files, over the limit of {MAX_MEMBERS}")
            for m in members:
                name = PurePosixPath(m.filename.replace("\\", "/"))
                if name.is_absolute() or ".." in name.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InvalidInputError(f"the zip member {m.filename!r} points outside the archive",
                                            "re-create the zip with relative paths")
                if name.parts and name.parts[0] == "__MACOSX":
                    continue
                zf.extract(m, target)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"the upload is not a readable zip ({exc})", "upload a .zip or an annotation file") \
            from exc


def _dataset_root(folder: Path) -> Path:
    """The extracted folder, or its one sub-folder when the zip wraps everything in one."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


@router.post("/api/projects/{slug}/import", summary="Import a zip (annotations + images) or an annotation file")
def import_upload(ctx: Project, st: State, user: Annotated[UserInfo, Depends(permission("data.import"))],
                  file: Annotated[UploadFile, File(description="a .zip, or a .json/.xml/.txt annotation file")],
                  format: Annotated[str | None, Form()] = None,
                  skip_invalid: Annotated[bool, Form()] = False,
                  allow_missing_images: Annotated[bool, Form()] = False) -> dict[str, Any]:
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=st.registry.paths.tmp) as tmp:
        name = Path(file.filename or "upload").name or "upload"
        upload = Path(tmp) / name
        with open(upload, "wb") as out:
            written = 0
            while chunk := file.file.read(1 << 20):
                written += len(chunk)
                if written > MAX_UPLOAD:
                    raise InvalidInputError(f"the upload is over {MAX_UPLOAD} bytes", "import from the CLI instead")
                out.write(chunk)
        if zipfile.is_zipfile(upload):
            folder = Path(tmp) / "extracted"
            folder.mkdir()
            _safe_extract(upload, folder)
            upload.unlink()
            source = _dataset_root(folder)
        else:
            source = upload
        report = import_path(ctx, source, format=format or None, skip_invalid=skip_invalid,
                             allow_missing_images=allow_missing_images, actor=user.username)
        return report.as_dict()
