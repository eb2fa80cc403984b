"""Export a project in any format as a zip; import a zip or an annotation file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from labelloop.api import responses as rs
from labelloop.api.deps import CurrentUser, Project, ServerState, permission, state
from labelloop.errors import InvalidInputError
from labelloop.formats import list_formats
from labelloop.services.archives import hide_paths, save_stream, strip_paths, unpack_upload, zip_folder
from labelloop.services.exporting import export_project
from labelloop.services.importing import import_path
from labelloop.services.users import UserInfo

router = APIRouter(tags=["import and export"])
State = Annotated[ServerState, Depends(state)]
MAX_UPLOAD = 20 * 1024**3


@router.get("/api/formats", response_model=list[rs.FormatInfo],
            summary="Annotation formats: which can be imported and exported")
def formats(_: CurrentUser) -> list[dict[str, Any]]:
    return [{"name": f.name, "description": f.description, "can_write": f.can_write, "holds": sorted(f.holds)}
            for f in list_formats()]


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


@router.post("/api/projects/{slug}/import", response_model=rs.ImportReport,
             summary="Import a zip (annotations + images) or an annotation file")
def import_upload(ctx: Project, st: State, user: Annotated[UserInfo, Depends(permission("data.import"))],
                  file: Annotated[UploadFile, File(description="a .zip, or a .json/.xml/.txt annotation file")],
                  format: Annotated[str | None, Form()] = None,
                  skip_invalid: Annotated[bool, Form()] = False,
                  allow_missing_images: Annotated[bool, Form()] = False) -> dict[str, Any]:
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=st.registry.paths.tmp) as tmp:
        (Path(tmp) / "upload").mkdir()
        upload = Path(tmp) / "upload" / (Path(file.filename or "upload").name or "upload")
        save_stream(file.file, upload, limit=MAX_UPLOAD, what="the upload", hint="import from the CLI instead")
        with hide_paths(Path(tmp)):  # errors and the report name files inside the upload, not on the server
            source = unpack_upload(upload, Path(tmp))
            report = import_path(ctx, source, format=format or None, skip_invalid=skip_invalid,
                                 allow_missing_images=allow_missing_images, actor=user.username)
        return strip_paths(report.as_dict(), Path(tmp))
