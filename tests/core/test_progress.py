"""The progress protocol's adapter from training events to stage progress."""

from __future__ import annotations

from labelloop.core.progress import EpochEvent, EpochStages, StartEvent, StepEvent


def _epoch(n: int) -> EpochEvent:
    return EpochEvent(type="epoch", epoch=n, losses={"loss": 1.0}, metrics={}, seconds=1.0, lr=0.01)


def test_epoch_stages_reports_evaluated_epochs_out_of_the_started_total() -> None:
    seen: list[tuple[str, int, int]] = []
    adapter = EpochStages(lambda *a: seen.append(a), "round 1 train")
    adapter(StartEvent(type="start", epochs=6, steps_per_epoch=3, start_epoch=1))
    adapter(StepEvent(type="step", epoch=1, step=1, steps=3, loss=1.0, lr=0.01))  # steps are not stages
    adapter(_epoch(3))
    adapter(_epoch(6))
    assert seen == [("round 1 train", 3, 6), ("round 1 train", 6, 6)]


def test_epoch_stages_with_a_known_total_and_without_a_listener() -> None:
    seen: list[tuple[str, int, int]] = []
    EpochStages(lambda *a: seen.append(a), "fold 2", epochs=4)(_epoch(1))
    assert seen == [("fold 2", 1, 4)]
    EpochStages(None, "quiet")(_epoch(1))  # no listener: nothing to call, no error
