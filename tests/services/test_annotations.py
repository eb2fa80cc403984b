import pytest
from sqlalchemy import select

from factories import make_dataset
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.services.annotations import (
    AnnotationInput,
    accept_all,
    create_annotation,
    delete_annotation,
    image_annotations,
    review_annotation,
    set_training_regions,
    update_annotation,
)
from labelloop.services.importing import import_dataset
from labelloop.store.tables import AnnotationEvent, Image, TrainingRegion


@pytest.fixture
def image_id(tmp_path, project):
    ds = make_dataset(tmp_path / "a", n_images=2)
    for img in ds.images:
        img.annotations = []
    import_dataset(project, ds)
    with project.store.session() as s:
        return s.scalars(select(Image.id).order_by(Image.id)).first()


def _events(project):
    with project.store.session() as s:
        return [(e.action, e.actor, e.actor_kind) for e in s.scalars(
            select(AnnotationEvent).where(AnnotationEvent.action != "import").order_by(AnnotationEvent.id))]


def test_draw_edit_delete_with_history_and_versions(project, image_id, database):
    a = create_annotation(project, image_id, AnnotationInput("cat", (10, 10, 40, 30)), actor="ann")
    assert a["version"] == 1 and a["source"] == "human" and a["review_state"] is None
    b = update_annotation(project, a["id"], AnnotationInput("dog", (12, 10, 40, 30)), actor="ann",
                          expected_version=1)
    assert b["version"] == 2 and b["label"] == "dog"
    with pytest.raises(ConflictError, match="changed since"):
        update_annotation(project, a["id"], AnnotationInput("cat", (1, 1, 5, 5)), actor="other", expected_version=1)
    assert image_annotations(project, image_id)[0]["label"] == "dog"  # the stale write changed nothing
    delete_annotation(project, a["id"], actor="ann")
    assert image_annotations(project, image_id) == []
    assert _events(project) == [("create", "ann", "human"), ("update", "ann", "human"), ("delete", "ann", "human")]


def test_review_proposals(project, image_id):
    p1 = create_annotation(project, image_id, AnnotationInput("cat", (1, 1, 20, 20), score=0.9), actor="model:1",
                           source="model:1", model_id=1)
    p2 = create_annotation(project, image_id, AnnotationInput("dog", (30, 30, 50, 50), score=0.4),
                           actor="model:1", source="model:1", model_id=1)
    p3 = create_annotation(project, image_id, AnnotationInput("dog", (60, 30, 70, 50), score=0.95),
                           actor="model:1", source="model:1", model_id=1)
    assert p1["review_state"] == "proposed"
    review_annotation(project, p2["id"], "reject", actor="rev")
    edited = update_annotation(project, p3["id"], AnnotationInput("cat", (60, 30, 71, 50)), actor="rev",
                               expected_version=p3["version"])
    assert edited["review_state"] == "edited" and edited["source"] == "model:1"
    assert accept_all(project, image_id, actor="rev") == 1
    states = {a["id"]: a["review_state"] for a in image_annotations(project, image_id, include_rejected=True)}
    assert states == {p1["id"]: "accepted", p2["id"]: "rejected", p3["id"]: "edited"}
    with project.store.session() as s:
        assert s.get(Image, image_id).status == "reviewed"
    assert ("reject", "rev", "human") in _events(project)
    with pytest.raises(InvalidInputError, match="accept or reject"):
        review_annotation(project, p1["id"], "approve", actor="rev")


def test_bad_input(project, image_id):
    with pytest.raises(InvalidInputError, match="unknown class 'fox'"):
        create_annotation(project, image_id, AnnotationInput("fox", (1, 1, 5, 5)), actor="a")
    with pytest.raises(InvalidInputError, match="outside"):
        create_annotation(project, image_id, AnnotationInput("cat", (1, 1, 5000, 5)), actor="a")
    with pytest.raises(NotFoundError):
        create_annotation(project, 99999, AnnotationInput("cat", (1, 1, 5, 5)), actor="a")


def test_training_regions(project, image_id):
    set_training_regions(project, image_id, [[0, 0, 50, 0, 50, 40, 0, 40]], actor="a")
    set_training_regions(project, image_id, [[0, 0, 30, 0, 30, 30]], actor="a")
    with project.store.session() as s:
        regions = s.scalars(select(TrainingRegion.polygon)).all()
    assert regions == [[0.0, 0.0, 30.0, 0.0, 30.0, 30.0]]
