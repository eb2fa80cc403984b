"""Images: upload, list (filters, keyset paging), one image with its annotations, file, thumbnail, DZI tiles."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import FileResponse, Response

from labelloop.api import responses as rs
from labelloop.api.deps import MAX_ID, Id, Project, ServerState, permission, state
from labelloop.api.schemas import RegionsIn
from labelloop.errors import InvalidInputError
from labelloop.services import annotations as ann_service
from labelloop.services import images as image_service
from labelloop.services import tiles as tile_service
from labelloop.services.archives import hide_paths, save_stream, strip_paths
from labelloop.services.images import ImageFilter
from labelloop.services.layers import parent_regions_view
from labelloop.services.users import UserInfo
from labelloop.settings import get_settings

router = APIRouter(prefix="/api/projects/{slug}/images", tags=["images"])
State = Annotated[ServerState, Depends(state)]
Annotator = Annotated[UserInfo, Depends(permission("annotate"))]
MAX_FILES = 1000
CACHE_A_DAY = {"Cache-Control": "private, max-age=86400"}


def _filter(status: str | None, split: str | None, label: str | None, min_score: float | None,
            max_score: float | None, q: str | None, damaged: bool | None = None) -> ImageFilter:
    return ImageFilter(status=status or None, split=split or None, label=label or None, min_score=min_score,
                       max_score=max_score, search=q or None, damaged=damaged)


@router.post("", response_model=rs.UploadReport, response_model_exclude_unset=True, status_code=201,
             summary="Upload image files (multipart field 'files')",
             responses={207: {"description": "some files were added, the others refused (see errors)"},
                        422: {"description": "no file was added (see errors)"}})
def upload(ctx: Project, st: State, user: Annotated[UserInfo, Depends(permission("images.upload"))],
           files: Annotated[list[UploadFile], File(description="image files")], response: Response) -> dict[str, Any]:
    if len(files) > MAX_FILES:
        raise InvalidInputError(f"{len(files)} files in one upload, the limit is {MAX_FILES}",
                                "upload in batches, or import a zip")
    limit = get_settings().max_image_bytes
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=st.registry.paths.tmp) as tmp:
        saved: list[tuple[str, Path]] = []
        for i, upload in enumerate(files):
            path = Path(tmp) / f"upload-{i}"
            save_stream(upload.file, path, limit=limit, what=str(upload.filename),
                        hint="raise LABELLOOP_MAX_IMAGE_BYTES if this is intended")
            saved.append((upload.filename or f"image-{i}", path))
        with hide_paths(Path(tmp)):
            report = strip_paths(image_service.add_image_files(ctx, saved, actor=user.username).as_dict(), Path(tmp))
    if report["errors"]:  # all refused: 422; some: 207 (Multi-Status); the body lists each
        response.status_code = 207 if report["added"] or report["duplicates"] else 422
        if response.status_code == 422:
            report.update(error="InvalidInputError", message=f"no image was added: {'; '.join(report['errors'][:3])}",
                          hint="upload JPEG, PNG, TIFF, BMP or WebP files")
    return report


@router.get("", response_model=rs.ImagePage,
            summary="Images with filters, paged by id (pass the previous page's next_after as after)")
def list_images(ctx: Project,
                status: Annotated[str | None, Query(description="new | pre-annotated | annotated | reviewed")] = None,
                split: Annotated[str | None, Query(description="train | val | test | none")] = None,
                label: Annotated[str | None, Query(description="has an annotation of this class")] = None,
                min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
                max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
                q: Annotated[str | None, Query(description="file name contains")] = None,
                damaged: Annotated[bool | None, Query(description="true: only damaged images (truncated, "
                                                      "missing or changed files); false: only whole ones")] = None,
                after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="the previous page's last id")] = None,
                before: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100,
                total: bool = False) -> dict[str, Any]:
    flt = _filter(status, split, label, min_score, max_score, q, damaged)
    return image_service.list_images(ctx, flt, after=after, before=before, limit=limit, with_total=total)


@router.get("/{image_id}", response_model=rs.ImageDetail,
            summary="One image with its annotations, training regions and neighbours")
def get_image(image_id: Id, ctx: Project, status: str | None = None, split: str | None = None,
              label: str | None = None, min_score: float | None = None, max_score: float | None = None,
              q: str | None = None, damaged: bool | None = None, include_rejected: bool = False) -> dict[str, Any]:
    image = image_service.get_image(ctx, image_id)
    image["annotations"] = ann_service.image_annotations(ctx, image_id, include_rejected=include_rejected)
    image["neighbours"] = image_service.image_neighbours(
        ctx, image_id, _filter(status, split, label, min_score, max_score, q, damaged))
    return image


@router.post("/{image_id}/inspect", response_model=rs.Ok,
             summary="Record that a person opened this image (effort accounting)")
def inspect(image_id: Id, ctx: Project, user: Annotator) -> dict[str, Any]:
    ann_service.record_image_event(ctx, image_id, "inspect", actor=user.username)
    return {"ok": True}


@router.get("/{image_id}/parent-regions", response_model=rs.ParentRegion,
            summary="The parent layer's regions on this image (a child layer draws them under its own shapes)")
def parent_regions(image_id: Id, ctx: Project) -> dict[str, Any]:
    return parent_regions_view(ctx, image_id)


@router.get("/{image_id}/file", summary="The image file", response_class=FileResponse)
def image_file(image_id: Id, ctx: Project) -> FileResponse:
    path, name = image_service.image_file(ctx, image_id)
    return FileResponse(path, filename=name, content_disposition_type="inline", headers=CACHE_A_DAY)


@router.get("/{image_id}/thumb", summary="A downscaled JPEG (128, 256 or 512 px)", response_class=FileResponse)
def image_thumb(image_id: Id, ctx: Project, size: int = 256) -> FileResponse:
    path = image_service.thumbnail(ctx, image_id, size)
    return FileResponse(path, media_type="image/jpeg", headers=CACHE_A_DAY)


@router.get("/{image_id}/tiles.dzi", summary="Deep Zoom descriptor of the image's tile pyramid (for OpenSeadragon)",
            response_class=Response, responses={200: {"content": {"application/xml": {}}}})
def image_dzi(image_id: Id, ctx: Project) -> Response:
    return Response(tile_service.dzi_descriptor(ctx, image_id), media_type="application/xml", headers=CACHE_A_DAY)


@router.get("/{image_id}/tiles_files/{level}/{tile}", response_class=FileResponse,
            summary="One Deep Zoom tile, COL_ROW.jpg (level 0 is 1x1 px; made on first request, then cached)")
def image_tile(image_id: Id, level: str, tile: str, ctx: Project) -> FileResponse:
    path = tile_service.tile_file(ctx, image_id, level, tile)
    return FileResponse(path, media_type="image/jpeg", headers=CACHE_A_DAY)


@router.put("/{image_id}/regions", response_model=rs.ImageWithRegions,
            summary="Replace the training regions (empty = the whole image is annotated)")
def set_regions(image_id: Id, body: RegionsIn, ctx: Project, user: Annotator) -> dict[str, Any]:
    ann_service.set_training_regions(ctx, image_id, body.polygons, actor=user.username)
    return image_service.get_image(ctx, image_id)


