"""Projects, classes, images and annotations through the HTTP API of a real server."""

from __future__ import annotations

import io
import zipfile
from contextlib import closing

import httpx
from live_server import LiveServer, png_bytes

from labelloop.services.annotations import AnnotationInput, create_annotation
from labelloop.services.projects import ProjectRegistry, server_database_url


def test_project_lifecycle_and_errors(admin: httpx.Client) -> None:
    r = admin.post("/api/projects", json={"name": "Road Signs", "labels": ["stop", "yield"]})
    assert r.status_code == 201 and r.json()["slug"] == "road-signs"
    assert admin.post("/api/projects", json={"name": "road signs"}).status_code == 409
    assert "road-signs" in [p["slug"] for p in admin.get("/api/projects").json()]
    assert [c["name"] for c in admin.get("/api/projects/road-signs/classes").json()] == ["stop", "yield"]
    admin.post("/api/projects/road-signs/classes", json={"names": ["speed", "limit"]})
    admin.post("/api/projects/road-signs/classes/rename", json={"old": "speed", "new": "speed-limit"})
    merged = admin.post("/api/projects/road-signs/classes/merge", json={"sources": ["limit"], "target": "speed-limit"})
    assert [c["name"] for c in merged.json()["classes"]] == ["stop", "yield", "speed-limit"]
    bad = admin.post("/api/projects", json={"name": "x", "task": "paint"})
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidInputError"
    missing = admin.get("/api/projects/nope/images")
    assert missing.status_code == 404 and missing.json()["message"] == "no project 'nope'"
    assert admin.delete("/api/projects/road-signs").status_code == 200
    assert admin.get("/api/projects/road-signs").status_code == 404


def test_upload_list_page_and_files(admin: httpx.Client, project: str) -> None:
    base = f"/api/projects/{project}/images"
    files = [("files", ("img0.png", png_bytes(seed=0), "image/png")),  # same pixels as the fixture's: duplicate
             ("files", ("new.png", png_bytes(seed=7), "image/png")),
             ("files", ("broken.png", b"not an image", "image/png"))]
    report = admin.post(base, files=files).json()
    assert [a["file_name"] for a in report["added"]] == ["new.png"]
    assert report["duplicates"] == ["img0.png"] and "broken.png" in report["errors"][0]
    page1 = admin.get(base, params={"limit": 3, "total": True}).json()
    assert page1["total"] == 4 and len(page1["items"]) == 3
    page2 = admin.get(base, params={"limit": 3, "after": page1["next_after"]}).json()
    assert [i["file_name"] for i in page2["items"]] == ["new.png"] and page2["next_after"] is None
    first = page1["items"][0]
    assert admin.get(base, params={"status": "new"}).json()["items"][0]["status"] == "new"
    assert admin.get(base, params={"q": "new"}).json()["items"][0]["file_name"] == "new.png"
    assert admin.get(base, params={"status": "weird"}).status_code == 422
    raw = admin.get(f"{base}/{first['id']}/file")
    assert raw.status_code == 200 and raw.content == png_bytes(seed=0)
    thumb = admin.get(f"{base}/{first['id']}/thumb", params={"size": 128})
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    detail = admin.get(f"{base}/{first['id']}").json()
    assert detail["neighbours"] == {"previous": None, "next": page1["items"][1]["id"]}
    assert admin.post(f"{base}/{first['id']}/inspect").status_code == 200


def test_annotate_and_stale_version_is_refused(admin: httpx.Client, project: str) -> None:
    image_id = admin.get(f"/api/projects/{project}/images").json()["items"][0]["id"]
    created = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                         json={"label": "cat", "bbox": [2, 3, 30, 40]}).json()
    assert created["version"] == 1 and created["author"] == "admin"
    url = f"/api/projects/{project}/annotations/{created['id']}"
    moved = admin.patch(url, json={"label": "dog", "bbox": [5, 5, 30, 40], "version": 1})
    assert moved.status_code == 200 and moved.json()["version"] == 2
    stale = admin.patch(url, json={"label": "cat", "bbox": [0, 0, 10, 10], "version": 1})
    assert stale.status_code == 409 and stale.json()["error"] == "ConflictError" and stale.json()["hint"]
    now = admin.get(f"/api/projects/{project}/images/{image_id}/annotations").json()
    assert [(a["label"], a["bbox"], a["version"]) for a in now] == [("dog", [5.0, 5.0, 30.0, 40.0], 2)]
    outside = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                         json={"label": "cat", "bbox": [0, 0, 500, 500]})
    assert outside.status_code == 422 and "outside" in outside.json()["message"]
    unknown = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                         json={"label": "horse", "bbox": [0, 0, 5, 5]})
    assert unknown.status_code == 422 and "cat" in unknown.json()["hint"]
    poly = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                      json={"label": "cat", "polygons": [[1, 1, 20, 1, 20, 20]]}).json()
    assert poly["bbox"] == [1.0, 1.0, 20.0, 20.0]
    assert admin.delete(url, params={"version": 1}).status_code == 409
    assert admin.delete(url, params={"version": 2}).status_code == 200
    regions = admin.put(f"/api/projects/{project}/images/{image_id}/regions",
                        json={"polygons": [[0, 0, 40, 0, 40, 40, 0, 40]]}).json()
    assert regions["regions"] == [[0, 0, 40, 0, 40, 40, 0, 40]]
    stats = admin.get(f"/api/projects/{project}/overview").json()
    assert stats["stats"]["annotations"]["total"] == 1
    assert stats["next"][0]["action"] == "annotate"


def test_edits_keep_every_ring_and_the_mask(admin: httpx.Client, project: str) -> None:
    import numpy as np

    from labelloop.core.geometry import mask_to_rle, rle_to_mask

    image_id = admin.get(f"/api/projects/{project}/images").json()["items"][0]["id"]  # 96 x 64
    mask = np.zeros((64, 96), np.uint8)
    mask[10:20, 10:20] = mask[30:40, 50:60] = 1  # two parts
    rings = [[10, 10, 20, 10, 20, 20, 10, 20], [50, 30, 60, 30, 60, 40, 50, 40]]
    made = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                      json={"label": "cat", "bbox": [10, 10, 60, 40], "polygons": rings, "rle": mask_to_rle(mask)})
    assert made.status_code == 201, made.text
    a = made.json()
    url = f"/api/projects/{project}/annotations/{a['id']}"
    # a relabel (the label alone, or the label with the shape the viewer shows: ring 0) keeps everything
    ring0_box = [10, 10, 20, 20]  # what a viewer showing ring 0 alone takes for the box
    for body in ({"label": "dog"}, {"label": "cat", "bbox": ring0_box, "polygons": [rings[0]]}):
        r = admin.patch(url, json={**body, "version": a["version"]})
        assert r.status_code == 200, r.text
        a = r.json()
        assert a["polygons"] == rings and a["rle"] == made.json()["rle"] and a["bbox"] == [10, 10, 60, 40]
    # a moved box moves every ring and the mask with it
    r = admin.patch(url, json={"label": "cat", "bbox": [15, 12, 65, 42], "version": a["version"]})
    a = r.json()
    assert a["polygons"] == [[15, 12, 25, 12, 25, 22, 15, 22], [55, 32, 65, 32, 65, 42, 55, 42]]
    moved = rle_to_mask(a["rle"])
    assert moved.sum() == mask.sum() and moved[12:22, 15:25].all() and moved[32:42, 55:65].all()
    # a reshaped ring replaces the shape (the mask then comes from the rings)
    r = admin.patch(url, json={"label": "cat", "polygons": [[15, 12, 30, 12, 30, 30]], "version": a["version"]})
    a = r.json()
    assert a["polygons"] == [[15, 12, 30, 12, 30, 30]] and a["rle"] is None and a["bbox"] == [15, 12, 30, 30]
    bad = admin.post(f"/api/projects/{project}/images/{image_id}/annotations",
                     json={"label": "cat", "rle": {"size": [10, 10], "counts": "PP"}})
    assert bad.status_code == 422 and "size" in bad.json()["message"] and bad.json()["hint"]


def _propose(server: LiveServer, project: str, image_id: int, scores: list[float]) -> None:
    """Model proposals as the pre-annotation service writes them (straight into the server's store)."""
    registry = ProjectRegistry(server.home, server_database_url(server.home))
    try:
        ctx = registry.open(project)
        for i, score in enumerate(scores):
            create_annotation(ctx, image_id, AnnotationInput(label="cat", bbox=(i, i, i + 10, i + 10), score=score),
                              actor="model:1", source="model:1", model_id=1)
    finally:
        registry.close()


def test_review_proposals(admin: httpx.Client, server: LiveServer, project: str, monkeypatch) -> None:
    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    images = [i["id"] for i in admin.get(f"/api/projects/{project}/images").json()["items"]]
    _propose(server, project, images[0], [0.9, 0.4])
    _propose(server, project, images[1], [0.8, 0.7, 0.95])
    queue = admin.get(f"/api/projects/{project}/review-queue").json()
    assert queue["proposals"] == 5 and [i["image_id"] for i in queue["items"]] == [images[0], images[1]]
    assert admin.get(f"/api/projects/{project}/images", params={"min_score": 0.92}).json()["items"][0]["id"] \
        == images[1]
    first = admin.get(f"/api/projects/{project}/images/{images[0]}").json()
    assert first["status"] == "pre-annotated"
    a, b = first["annotations"]
    r = admin.post(f"/api/projects/{project}/annotations/{a['id']}/review", json={"action": "accept",
                                                                                  "version": a["version"]})
    assert r.json()["review_state"] == "accepted"
    admin.post(f"/api/projects/{project}/annotations/{b['id']}/review", json={"action": "reject"})
    assert admin.get(f"/api/projects/{project}/images/{images[0]}").json()["status"] == "reviewed"
    assert len(admin.get(f"/api/projects/{project}/images/{images[0]}/annotations").json()) == 1
    assert admin.post(f"/api/projects/{project}/images/{images[1]}/accept-all",
                      json={"min_score": 0.75}).json() == {"accepted": 2}
    assert admin.get(f"/api/projects/{project}/review-queue").json()["proposals"] == 1


def test_export_coco_and_import_it_again(admin: httpx.Client, project: str) -> None:
    images = admin.get(f"/api/projects/{project}/images").json()["items"]
    for i, img in enumerate(images):
        for j in range(i + 1):
            admin.post(f"/api/projects/{project}/images/{img['id']}/annotations",
                       json={"label": ["cat", "dog"][j % 2], "bbox": [j, j, j + 12.5, j + 20]})
    r = admin.get(f"/api/projects/{project}/export", params={"format": "coco"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert any(n.endswith(".json") for n in names) and sum(n.endswith(".png") for n in names) == 3
    copy = admin.post("/api/projects", json={"name": project + "-copy"}).json()["slug"]
    report = admin.post(f"/api/projects/{copy}/import", files={"file": ("export.zip", r.content, "application/zip")})
    assert report.status_code == 200, report.text
    assert report.json()["images_added"] == 3 and report.json()["annotations_added"] == 6
    assert admin.get(f"/api/projects/{copy}/stats").json()["annotations"]["total"] == 6
    assert [c["name"] for c in admin.get(f"/api/projects/{copy}/classes").json()] == ["cat", "dog"]
    bad = admin.post(f"/api/projects/{copy}/import", files={"file": ("x.json", b"{}", "application/json")})
    assert bad.status_code == 422 and "Traceback" not in bad.text
    assert len(admin.get("/api/formats").json()) >= 5


def test_click_to_box_route(admin: httpx.Client, server: LiveServer, project: str, monkeypatch) -> None:
    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    image = admin.get(f"/api/projects/{project}/images").json()["items"][0]["id"]
    url = f"/api/projects/{project}/images/{image}/click"
    # no model yet: a clear 404 that says what to do, nothing stored
    r = admin.post(url, json={"x": 5, "y": 5})
    assert r.status_code == 404 and "train" in r.json()["hint"]
    assert admin.post(url, json={"x": "left", "y": 5}).status_code == 422
    assert admin.post(f"/api/projects/{project}/images/999999/click", json={"x": 1, "y": 1}).status_code == 404
    # a ready model whose candidates on this image are cached (as the service writes them)
    import json

    from labelloop.services.projects import ProjectRegistry, server_database_url
    from labelloop.store.tables import TrainedModel

    registry = ProjectRegistry(server.home, server_database_url(server.home))
    try:
        ctx = registry.open(project)
        with ctx.store.session() as s:
            m = TrainedModel(project_id=ctx.id, name="m", base="fcos-lite0", task="detect", round=1, status="ready",
                             classes=["cat", "dog"], metrics={}, directory="models/x")
            s.add(m)
            s.flush()
            model_id = m.id
        cache = ctx.root / "cache" / "candidates" / f"m{model_id}" / f"{image}.json"
        cache.parent.mkdir(parents=True)
        cache.write_text(json.dumps({"boxes": [[2, 2, 12, 14]], "scores": [0.12], "labels": [1], "masks": None}))
    finally:
        registry.close()
    assert admin.post(f"/api/projects/{project}/images/{image}/candidates").json() == {"model_id": model_id,
                                                                                     "candidates": 1}
    a = admin.post(url, json={"x": 7, "y": 8})
    assert a.status_code == 201, a.text
    body = a.json()
    assert body["label"] == "dog" and body["bbox"] == [2, 2, 12, 14] and body["source"] == "human"
    assert body["attributes"]["assisted_by"] == f"model:{model_id}"
    again = admin.post(url, json={"x": 7, "y": 8, "label": "cat"})  # that candidate is taken now
    assert again.status_code == 404 and "draw" in again.json()["hint"]
    assert admin.post(url, json={"x": 7, "y": 8, "label": "cow"}).status_code in (404, 422)
    effort = admin.get(f"/api/projects/{project}/effort").json()
    assert sum(r["actions"]["click"] for r in effort["rounds"]) == 1


def test_an_annotator_cannot_skip_review_by_editing(admin: httpx.Client, server: LiveServer, project: str,
                                                    monkeypatch) -> None:
    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    r = admin.post("/api/users", json={"username": "edit-ann", "password": "password-1", "role": "annotator"})
    assert r.status_code in (201, 409), r.text
    image_id = admin.get(f"/api/projects/{project}/images").json()["items"][0]["id"]
    _propose(server, project, image_id, [0.9, 0.8])
    a, b = admin.get(f"/api/projects/{project}/images/{image_id}").json()["annotations"]
    with closing(server.client("edit-ann", "password-1")) as ann:
        # the proposal sent back unchanged: nothing happens (not an edit, no new version)
        same = ann.patch(f"/api/projects/{project}/annotations/{a['id']}",
                         json={"label": a["label"], "bbox": a["bbox"], "version": a["version"]}).json()
        assert same["review_state"] == "proposed" and same["version"] == a["version"]
        # a real fix by someone who may not review: fixed, but still a proposal to accept
        moved = ann.patch(f"/api/projects/{project}/annotations/{a['id']}",
                          json={"label": "dog", "bbox": [2, 2, 14, 14], "version": a["version"]}).json()
        assert moved["review_state"] == "proposed" and moved["label"] == "dog" and moved["bbox"] == [2, 2, 14, 14]
    queue = admin.get(f"/api/projects/{project}/review-queue").json()
    assert queue["proposals"] == 2  # both still wait for a reviewer
    fixed = admin.patch(f"/api/projects/{project}/annotations/{b['id']}",
                        json={"label": "dog", "bbox": b["bbox"], "version": b["version"]}).json()
    assert fixed["review_state"] == "edited"  # a reviewer's fix is a review


def test_the_epochs_of_a_model_that_does_not_exist_are_a_404(admin: httpx.Client, project: str) -> None:
    r = admin.get(f"/api/projects/{project}/models/999/epochs")
    assert r.status_code == 404 and "model 999" in r.json()["message"]


def test_hostile_requests_get_4xx_not_500(server: LiveServer, admin: httpx.Client, project: str) -> None:
    """Each case once broke the server (500); now each is a 4xx JSON error and nothing is stored."""
    base = f"/api/projects/{project}"
    image_id = admin.get(f"{base}/images").json()["items"][0]["id"]
    before = len(admin.get(f"{base}/images/{image_id}/annotations").json())
    bad_annotations = [
        {"label": "cat", "bbox": [5, 5, 5, 9]},  # zero area
        {"label": "cat", "polygons": [[1, 1, 9, 1, 9]]},  # odd number of coordinates
        {"label": "cat", "polygons": [[1, 1, 3, 3, 5, 5]]},  # no area
        {"label": "cat", "polygons": [[-5000, -5000, 9000, -5000, 9000, 9000]], "bbox": [1, 1, 5, 5]},
        {"label": "cat", "rle": {"size": [64, 96], "counts": "garbage!!"}, "bbox": [1, 1, 5, 5]},
    ]
    for body in bad_annotations:
        r = admin.post(f"{base}/images/{image_id}/annotations", json=body)
        assert r.status_code in (400, 422) and r.json()["error"] == "InvalidInputError", (body, r.text)
    assert len(admin.get(f"{base}/images/{image_id}/annotations").json()) == before
    for url in (f"{base}/images/{2**63}", f"{base}/images/99999999999999999999",
                f"{base}/annotations/{2**63}", f"{base}/models/{2**64}"):
        r = admin.get(url) if "annotations" not in url else admin.delete(url)
        assert r.status_code == 422 and r.json()["error"] == "InvalidInputError", (url, r.text)
    tile = admin.get(f"{base}/images/{image_id}/tiles_files/\u00b2/0_0.jpg")
    assert tile.status_code == 404 and "whole numbers" in tile.json()["hint"]
    for name in ("ca\nt", "\x1b[31mred", "tac\u202egnp", "x" * 1000):
        r = admin.post(f"{base}/classes", json={"names": [name]})
        assert r.status_code == 422 and r.json()["error"] == "InvalidInputError", r.text
    assert [c["name"] for c in admin.get(f"{base}/classes").json()] == ["cat", "dog"]
    # an upload that adds nothing is a 422 that says why; one that adds some is a 207 with the refusals
    broken = [("files", ("broken.png", b"not an image", "image/png"))]
    refused = admin.post(f"{base}/images", files=broken)
    assert refused.status_code == 422 and refused.json()["error"] == "InvalidInputError"
    assert "no image was added: broken.png" in refused.json()["message"]
    assert str(server.home) not in refused.text and "/tmp" not in refused.text  # no server paths in messages
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ds/annotations.json", '{"images": [], "categories": [{"id": [1], "name": "cat"}], '
                                           '"annotations": []}')
    bad_zip = admin.post(f"{base}/import", files={"file": ("ds.zip", buf.getvalue(), "application/zip")})
    assert bad_zip.status_code == 422 and "ds/annotations.json" in bad_zip.json()["message"], bad_zip.text
    assert "/tmp" not in bad_zip.text and str(server.home) not in bad_zip.text
    mixed = admin.post(f"{base}/images", files=[*broken, ("files", ("fresh.png", png_bytes(seed=42), "image/png"))])
    assert mixed.status_code == 207 and [a["file_name"] for a in mixed.json()["added"]] == ["fresh.png"]
    # where a project lives on the server is for admins
    admin.post("/api/users", json={"username": "annie", "password": "password-1", "role": "annotator"})
    with closing(server.client("annie", "password-1")) as annie:
        assert all("root" not in p for p in annie.get("/api/projects").json())
        assert "root" not in annie.get(f"{base}").json()
    assert all("root" in p for p in admin.get("/api/projects").json())


def test_what_next_leaves_out_images_labelled_since_the_suggest_job(admin: httpx.Client, server: LiveServer,
                                                                     project: str, monkeypatch) -> None:
    from labelloop.jobs.records import create_job
    from labelloop.store.tables import Job

    monkeypatch.delenv("LABELLOOP_DATABASE_URL", raising=False)
    images = [i["id"] for i in admin.get(f"/api/projects/{project}/images").json()["items"]]
    picks = [{"image_id": i, "file_name": f"img{k}.png", "reasons": ["random pick"], "rank": k + 1}
             for k, i in enumerate(images)]
    registry = ProjectRegistry(server.home, server_database_url(server.home))
    try:  # a suggest job that finished before anything was labelled, as the worker stores it
        ctx = registry.open(project)
        job_id = create_job(registry.store(), "suggest", {"project": project, "n": 3}, project_id=ctx.id, actor="admin")
        with registry.store().session() as s:
            job = s.get(Job, job_id)
            job.status, job.result = "succeeded", {"output": {"suggestions": picks, "note": "a random sample"}}
    finally:
        registry.close()
    url = f"/api/projects/{project}/suggestions"
    assert [p["image_id"] for p in admin.get(url).json()["suggestions"]] == images
    admin.post(f"/api/projects/{project}/images/{images[1]}/annotations", json={"label": "cat", "bbox": [2, 3, 30, 40]})
    latest = admin.get(url).json()
    assert [p["image_id"] for p in latest["suggestions"]] == [images[0], images[2]]
    assert latest["job"]["id"] == job_id and latest["note"] == "a random sample"
