"""What a job asks of Ray: its own task waits (no CPU) when Ray Data actors, Ray Tune trials or Ray
Train workers do the work (a pre-annotation, a sweep, a training of several clones), and asks for the
CPUs or GPUs it uses itself otherwise (no Ray needed to compute it)."""

from __future__ import annotations

import pytest

from labelloop.errors import ConfigError
from labelloop.jobs.ray_executor import job_resources


@pytest.mark.parametrize(("kind", "params", "expected"), [
    ("train", {"args": "epochs=3"}, {"num_cpus": 1.0, "num_gpus": 0.0}),
    ("train", {"args": "epochs=3;device=cuda"}, {"num_cpus": 1.0, "num_gpus": 1.0}),
    # the ranks are Ray Train workers, each asking for its own CPU or GPU
    ("train", {"args": "num_clones=2"}, {"num_cpus": 0.0, "num_gpus": 0.0}),
    ("train", {"args": "num_clones=4;device=cuda"}, {"num_cpus": 0.0, "num_gpus": 0.0}),
    ("sweep", {"args": "num_clones=2"}, {"num_cpus": 0.0, "num_gpus": 0.0}),  # its trials ask, on Ray Tune
    ("preannotate", {}, {"num_cpus": 0.0, "num_gpus": 0.0}),
    ("suggest", {"num_cpus": 3}, {"num_cpus": 3.0, "num_gpus": 0.0}),
    ("train", {"args": "epochs=3", "device": "cuda"}, {"num_cpus": 1.0, "num_gpus": 1.0}),  # the job's device
    ("train", {"args": "device=cpu", "device": "cuda"}, {"num_cpus": 1.0, "num_gpus": 0.0}),  # its args win
])
def test_each_job_asks_for_what_its_own_task_uses(kind: str, params: dict, expected: dict) -> None:
    assert job_resources(kind, params) == expected


def test_custom_resources_pass_through_and_a_wrong_shape_is_refused() -> None:
    assert job_resources("qa", {"ray_resources": {"gpu_a100": 1}})["resources"] == {"gpu_a100": 1.0}
    with pytest.raises(ConfigError, match="ray_resources must map resource names to amounts"):
        job_resources("qa", {"ray_resources": ["gpu_a100"]})


def test_a_training_the_cluster_can_never_hold_is_refused_instead_of_waiting() -> None:
    from labelloop.errors import TrainingError
    from labelloop.training.ray_train import _check_room

    cluster = {"CPU": 1.0, "memory": 1e9}  # ray.cluster_resources(): a head without CPUs, one node of one CPU
    _check_room(cluster, 1, "CPU")
    with pytest.raises(TrainingError, match="num_clones=2 needs 2 CPUs on the Ray cluster, which has 1") as err:
        _check_room(cluster, 2, "CPU")
    assert "lower num_clones to 1" in err.value.hint
    with pytest.raises(TrainingError, match="needs 4 GPUs on the Ray cluster, which has 0"):
        _check_room(cluster, 4, "GPU")


def test_a_sweep_trial_reserves_its_clones() -> None:
    from labelloop.services.sweep_tune import _trial_resources

    assert _trial_resources("epochs=3") == {"CPU": 1.0}
    assert _trial_resources("num_clones=2") == {"CPU": 2.0}
    assert _trial_resources("num_clones=2;device=cuda") == {"CPU": 1.0, "GPU": 2.0}
    with pytest.raises(ConfigError, match="unknown training argument"):
        _trial_resources("clones=2")
