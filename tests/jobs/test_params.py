"""Job parameters are checked at submission, each refusal naming the parameter and what was expected."""

from __future__ import annotations

import pytest

from labelloop.errors import InvalidInputError
from labelloop.jobs.params import check_job_params


@pytest.mark.parametrize(("kind", "params", "says"), [
    ("train", {"args": ["epochs=3"]}, "args must be a string"),
    ("train", {"blob": "x" * 30_000}, "too large"),
    ("sweep", {"grid": 3}, "grid must be a string"),
    ("sweep", {"variants": "lr=0.1"}, "variants must be a list"),
    ("preannotate", {"engine": "spark"}, "engine must be auto, local or ray"),
    ("suggest", {"n": 0}, "n must be a whole number"),
    ("suggest", {"strategy": "psychic"}, "unknown selection strategy"),
])
def test_a_bad_parameter_is_refused_with_what_was_expected(kind: str, params: dict, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        check_job_params(kind, params)


def test_good_parameters_pass_unchanged() -> None:
    for kind, params in (("train", {"args": "epochs=3"}), ("preannotate", {"engine": "ray"}),
                         ("suggest", {"n": 10, "strategy": "random"}), ("qa", {})):
        assert check_job_params(kind, params) == params
