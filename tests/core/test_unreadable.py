"""The skipped-images record every job shares: a few bad files are listed, too many fail with the list."""

from __future__ import annotations

import pytest

from labelloop.core.unreadable import LISTED, Unreadable
from labelloop.errors import ConfigError, InvalidInputError
from labelloop.settings import get_settings


def _with(n: int) -> Unreadable:
    u = Unreadable("pre-annotation")
    for i in range(n):
        u.add(i + 1, f"img_{i}.jpg", "cannot be read: image file is truncated")
    return u


def test_a_few_unreadable_images_are_listed_not_a_failure() -> None:
    u = _with(2)
    u.check(10, max_share=0.2)  # 2 of 10 is not more than 20 %
    _with(1).check(1, max_share=0.2)  # one bad image never fails a job, even a job of one image
    with pytest.raises(InvalidInputError, match="2 of 2 images"):
        _with(2).check(2, max_share=0.2)
    assert len(u) == 2 and u.items[1] == {"image_id": 2, "file_name": "img_1.jpg",
                                           "reason": "cannot be read: image file is truncated"}


def test_too_many_fail_naming_them_and_the_setting() -> None:
    u = _with(LISTED + 3)
    with pytest.raises(InvalidInputError) as caught:
        u.check(20, max_share=0.2)
    msg = caught.value.message
    assert msg.startswith(f"pre-annotation: {LISTED + 3} of 20 images cannot be read: image 1 img_0.jpg")
    assert msg.endswith("; and 3 more") and f"image {LISTED + 1} " not in msg
    assert "labelloop doctor" in (caught.value.hint or "") and "LABELLOOP_MAX_UNREADABLE_SHARE" in caught.value.hint


def test_the_share_comes_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("LABELLOOP_MAX_UNREADABLE_SHARE", "0.5")
    try:
        _with(5).check(10)  # half may fail now
        with pytest.raises(InvalidInputError, match="6 of 10"):
            _with(6).check(10)
        monkeypatch.setenv("LABELLOOP_MAX_UNREADABLE_SHARE", "1.5")
        get_settings.cache_clear()
        with pytest.raises(ConfigError, match="LABELLOOP_MAX_UNREADABLE_SHARE='1.5': Input should be less than"):
            get_settings()
    finally:
        get_settings.cache_clear()
