import pytest
from sqlalchemy import select

from factories import make_dataset
from labelloop.errors import ConflictError, NotFoundError
from labelloop.services.importing import import_dataset
from labelloop.services.labels import add_labels, list_labels, merge_labels, rename_label
from labelloop.services.stats import project_stats
from labelloop.store.tables import AnnotationEvent, ClassEvent


def test_add_rename_merge_keep_history(tmp_path, project, database):
    ds = make_dataset(tmp_path / "a", n_images=10, labels=("cat", "dog", "bird"))
    import_dataset(project, ds)
    counts = {r["name"]: r["annotations"] for r in list_labels(project)}
    add_labels(project, ["fox"])
    with pytest.raises(ConflictError):
        add_labels(project, ["fox"])
    rename_label(project, "bird", "sparrow")
    with pytest.raises(ConflictError, match="merge"):
        rename_label(project, "cat", "dog")
    moved = merge_labels(project, ["cat"], "dog")
    assert moved == counts["cat"]
    after = {r["name"]: r["annotations"] for r in list_labels(project)}
    assert after == {"dog": counts["cat"] + counts["dog"], "sparrow": counts["bird"], "fox": 0}
    with project.store.session() as s:
        actions = [e.action for e in s.scalars(select(ClassEvent).order_by(ClassEvent.id))]
        changed = s.scalars(select(AnnotationEvent).where(AnnotationEvent.action == "class_change")).all()
    assert actions == ["create", "rename", "merge"]
    assert len(changed) == moved
    with pytest.raises(NotFoundError, match="classes: dog"):
        rename_label(project, "cat", "x")


def test_label_commands_that_would_do_nothing_say_why(tmp_path, project):
    from labelloop.errors import InvalidInputError
    from labelloop.store.project import find_project_root

    add_labels(project, ["kestrel", "heron"])
    before = [r["name"] for r in list_labels(project)]
    with pytest.raises(InvalidInputError, match="'owl' is given twice"):
        add_labels(project, ["owl", "owl"])
    with pytest.raises(InvalidInputError, match="'kestrel' is already called 'kestrel'"):
        rename_label(project, "kestrel", " kestrel ")
    with pytest.raises(InvalidInputError, match="no class to merge was given"):
        merge_labels(project, ["", " "], "heron")
    assert [r["name"] for r in list_labels(project)] == before  # nothing added, renamed or merged
    with pytest.raises(NotFoundError, match="does not exist") as err:
        find_project_root(tmp_path / "nowhere")
    assert "labelloop init" in (err.value.hint or "")


def test_stats_count_against_target(tmp_path, project):
    ds = make_dataset(tmp_path / "a", n_images=8, labels=("cat", "dog", "bird"), with_proposals=True)
    import_dataset(project, ds)
    stats = project_stats(project, target_per_class=2)
    human = sum(1 for i in ds.images for a in i.annotations if a.review_state is None)
    assert stats["annotations"]["total"] == human
    assert stats["annotations"]["proposals"] == sum(len(i.annotations) for i in ds.images) - human
    assert stats["images"]["total"] == 8
    assert {c["name"] for c in stats["classes"]} == {"cat", "dog", "bird"}
    assert all(c["missing"] == max(0, 2 - c["annotations"]) for c in stats["classes"])
