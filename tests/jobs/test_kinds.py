"""The built-in job kinds' contract with a server that lacks the [train] extra."""

from __future__ import annotations

import pytest

from labelloop.errors import JobError
from labelloop.jobs.kinds import _needs_train_extra


@pytest.mark.parametrize("missing", ["torch", "torchvision.ops", "onnxruntime"])
def test_a_missing_train_extra_is_one_error_with_the_fix(missing: str) -> None:
    with pytest.raises(JobError) as caught, _needs_train_extra():
        raise ModuleNotFoundError(f"No module named {missing!r}", name=missing)
    assert missing in caught.value.message and "labelloop[train]" in (caught.value.hint or "")


def test_other_missing_modules_are_not_disguised_as_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError), _needs_train_extra():
        raise ModuleNotFoundError("No module named 'labelloop.nope'", name="labelloop.nope")
