from collections import Counter

import pytest
from sqlalchemy import select

from factories import make_dataset
from labelloop.errors import InvalidInputError
from labelloop.services.importing import import_dataset
from labelloop.services.splitting import assign_splits
from labelloop.store.tables import Image


def _splits(ctx):
    with ctx.store.session() as s:
        return dict(s.execute(select(Image.file_name, Image.split)).all())


def test_split_is_80_20_stratified_and_stable(tmp_path, project, database):
    ds = make_dataset(tmp_path / "a", n_images=40, labels=("cat", "dog", "bird"), seed=1)
    import_dataset(project, ds)
    first = assign_splits(project, seed=3)
    assert first["totals"]["val"] == pytest.approx(8, abs=2)
    before = _splits(project)
    classes_in_val = Counter(a.label for i in ds.images if before[i.file_name] == "val" for a in i.annotations)
    assert set(classes_in_val) == {"cat", "dog", "bird"}  # every class is validated
    more = make_dataset(tmp_path / "b", n_images=10, seed=2)
    for img in more.images:
        img.file_name = "more_" + img.file_name
    import_dataset(project, more)
    second = assign_splits(project, seed=3)
    after = _splits(project)
    assert all(after[k] == v for k, v in before.items())  # nothing already placed moved
    assert sum(second["assigned"].values()) == 10


def test_split_does_not_depend_on_import_order(tmp_path):
    from labelloop.services.projects import new_project

    results = []
    for order in (1, -1):
        ds = make_dataset(tmp_path / f"d{order}", n_images=20, seed=5)
        ds.images = ds.images[::order]
        ctx = new_project(tmp_path / f"p{order}", labels=["cat", "dog", "bird"])
        import_dataset(ctx, ds)
        assign_splits(ctx, seed=0)
        results.append(_splits(ctx))
        ctx.close()
    assert results[0] == results[1]


def test_unlabelled_images_get_no_split(tmp_path, project):
    ds = make_dataset(tmp_path / "a", n_images=6)
    for img in ds.images[3:]:
        img.annotations = []
    import_dataset(project, ds)
    assign_splits(project)
    splits = _splits(project)
    assert sum(v is None for v in splits.values()) == 3


def test_bad_fractions(project):
    with pytest.raises(InvalidInputError, match="val"):
        assign_splits(project, val=1.2)
