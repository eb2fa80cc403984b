"""Layers through the HTTP API of a real server: add one, work on it with ``?layer=``, count per region."""

from __future__ import annotations

import httpx


def test_a_layer_is_worked_on_with_the_layer_parameter(admin: httpx.Client, project: str) -> None:
    base = f"/api/projects/{project}"
    added = admin.post(f"{base}/layers", json={"name": "spots", "kind": "detect", "parent": "objects",
                                               "labels": ["spot"]})
    assert added.status_code == 201, added.text
    assert [(r["name"], r["parent"], r["current"]) for r in added.json()] == [("objects", None, True),
                                                                             ("spots", "objects", False)]
    cells = {"layer": "spots"}
    assert [c["name"] for c in admin.get(f"{base}/classes", params=cells).json()] == ["spot"]
    assert [c["name"] for c in admin.get(f"{base}/classes").json()] == ["cat", "dog"]  # default: the first layer
    parent_images = admin.get(f"{base}/images").json()["items"]
    child_images = admin.get(f"{base}/images", params=cells).json()["items"]
    assert [i["file_name"] for i in child_images] == [i["file_name"] for i in parent_images]
    image = parent_images[0]["id"]
    child = child_images[0]["id"]
    # an image id belongs to one layer: the parent's image is not the child's
    wrong = admin.post(f"{base}/images/{image}/annotations", params=cells, json={"label": "spot", "bbox": [1, 1, 5, 5]})
    assert wrong.status_code == 404
    region = admin.post(f"{base}/images/{image}/annotations", json={"label": "cat", "bbox": [0, 0, 20, 20]})
    assert region.status_code == 201
    for box in ([2, 2, 8, 8], [10, 10, 16, 16], [40, 40, 46, 46]):
        r = admin.post(f"{base}/images/{child}/annotations", params=cells, json={"label": "spot", "bbox": box})
        assert r.status_code == 201, r.text
    assert admin.get(f"{base}/stats", params=cells).json()["annotations"]["total"] == 3
    assert admin.get(f"{base}/stats").json()["annotations"]["total"] == 1
    counts = admin.get(f"{base}/region-counts", params=cells).json()
    assert [(c["region_class"], c["counts"]) for c in counts] == [("cat", {"spot": 2})]
    unknown = admin.get(f"{base}/classes", params={"layer": "nope"})
    assert unknown.status_code == 404 and "objects, spots" in unknown.json()["hint"]
    assert admin.post(f"{base}/layers", json={"name": "spots", "kind": "detect"}).status_code == 409
    assert admin.post(f"{base}/layers", json={"name": "x", "kind": "paint"}).status_code == 422
    no_parent = admin.get(f"{base}/region-counts")
    assert no_parent.status_code == 422 and "parent" in no_parent.json()["message"]


def test_a_layer_is_renamed_and_deleted_through_the_api(admin: httpx.Client, project: str) -> None:
    base = f"/api/projects/{project}"
    admin.post(f"{base}/layers", json={"name": "spots", "kind": "detect", "labels": ["spot"]})
    child = admin.get(f"{base}/images", params={"layer": "spots"}).json()["items"][0]["id"]
    assert admin.post(f"{base}/images/{child}/annotations", params={"layer": "spots"},
                      json={"label": "spot", "bbox": [2, 2, 8, 8]}).status_code == 201
    renamed = admin.patch(f"{base}/layers/spots", json={"name": "dots"})
    assert renamed.status_code == 200, renamed.text
    assert [r["name"] for r in renamed.json()] == ["objects", "dots"]
    assert admin.get(f"{base}/stats", params={"layer": "dots"}).json()["annotations"]["total"] == 1  # kept
    assert admin.get(f"{base}/stats", params={"layer": "spots"}).status_code == 404
    assert admin.patch(f"{base}/layers/dots", json={"name": "objects"}).status_code == 409
    assert admin.patch(f"{base}/layers/nope", json={"name": "x"}).status_code == 404
    first = admin.delete(f"{base}/layers/objects")
    assert first.status_code == 422 and "first layer" in first.json()["message"]
    gone = admin.delete(f"{base}/layers/dots")
    assert gone.status_code == 200 and gone.json() == {"layer": "dots", "annotations": 1, "models": 0}
    assert [r["name"] for r in admin.get(f"{base}/layers").json()] == ["objects"]
    assert admin.get(f"{base}/stats").json()["images"]["total"] > 0  # the images stay
