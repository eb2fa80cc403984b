"""Argument strings and data-driven defaults."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from labelloop.core.samples import Sample, TrainingData
from labelloop.errors import ConfigError
from labelloop.training.config import CPU_MAX_UPSCALE, TrainConfig, derive_defaults, parse_args_string


def test_parse_types_and_separators() -> None:
    args = parse_args_string(" epochs = 100 ;batch_size=24;\n lr=0.004; num_clones=2\naugment=false;base=fcos-lite0")
    assert args == {"epochs": 100, "batch_size": 24, "lr": 0.004, "num_clones": 2, "augment": "none",
                    "base": "fcos-lite0"}
    assert isinstance(args["epochs"], int) and isinstance(args["lr"], float)
    assert parse_args_string("") == {}
    assert parse_args_string("augment=strong;pretrained=no;weights=none") == {
        "augment": "strong", "pretrained": False, "weights": None}
    assert parse_args_string("copy_paste=0.5;balanced=yes;tta=on") == {"copy_paste": 0.5, "balanced": True, "tta": True}


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown training argument 'epoch'.*epochs"):
        parse_args_string("epoch=3")


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("epochs=ten", "epochs", "integer"), ("epochs=2.5", "epochs", "integer"), ("lr=fast", "lr", "number"),
    ("pretrained=maybe", "pretrained", "true/false"), ("augment=extreme", "augment", "augment"),
    ("batch_size=0", "batch_size", "positive"), ("lr=-1", "lr", "positive"), ("device=tpu", "device", "cuda"),
    ("copy_paste=1.5", "copy_paste", "probability"), ("mosaic=2", "mosaic", "probability"),
    ("tta=sometimes", "tta", "true/false"),
    ("balanced=2", "balanced", "true/false"), ("eval_every=x", "eval_every", "integer"),
    ("precision=half", "precision", "bf16"),
])
def test_bad_values_name_key_and_type(text: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_args_string(text)
    assert key in str(err.value) and expected in str(err.value)


def test_missing_equals_sign() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_args_string("epochs 3")


def test_from_args_string_overrides_a_config() -> None:
    cfg = TrainConfig.from_args_string("epochs=7", TrainConfig(batch_size=2))
    assert (cfg.epochs, cfg.batch_size) == (7, 2)


def _data(n: int, size: tuple[int, int], obj: float, task: str = "detect") -> TrainingData:
    w, h = size
    samples = [Sample(i, Path(f"/x/{i}.png"), w, h, np.array([[10, 10, 10 + obj, 10 + obj]] * 3, np.float32),
                      np.array([0, 1, 1])) for i in range(n)]
    return TrainingData(["a", "b"], task, samples, samples[:2])


def test_defaults_scale_with_data() -> None:
    big_objects = derive_defaults(_data(200, (640, 480), 200), overrides={"device": "cpu"})
    assert big_objects.base == "fcos-lite0" and big_objects.tile_size == 0
    assert 320 <= big_objects.image_size <= 640
    assert 4 <= big_objects.epochs <= 12
    few = derive_defaults(_data(20, (640, 480), 200), overrides={"device": "cpu"})
    assert few.epochs > big_objects.epochs
    for size, obj in [((800, 600), 10), ((1000, 800), 10), ((6000, 4000), 12), ((640, 480), 30)]:
        cfg = derive_defaults(_data(50, size, obj), overrides={"device": "cpu"})
        assert cfg.image_size <= 1024
        scale = cfg.image_size / (cfg.tile_size or max(size))
        # objects >= ~12 px, unless that would upsample the images much: on the CPU at most 1.2x their size
        assert scale * obj >= min(11.5, obj * min(CPU_MAX_UPSCALE, 1024 / max(size))) - 0.01, (size, cfg)
        assert scale <= CPU_MAX_UPSCALE + 32 / max(size), (size, cfg)
    # objects that are big enough at the images' own size are never upsampled
    assert derive_defaults(_data(50, (640, 480), 30), overrides={"device": "cpu"}).image_size <= 640
    assert derive_defaults(_data(50, (6000, 4000), 12), overrides={"device": "cpu"}).tile_size > 0


def test_training_length_is_a_pixel_budget_and_evaluation_stays_a_small_share() -> None:
    small = derive_defaults(_data(50, (384, 384), 100), overrides={"device": "cpu"}, fine_tune=True)
    large = derive_defaults(_data(50, (768, 768), 12), overrides={"device": "cpu"}, fine_tune=True)
    assert large.image_size == 768 and small.image_size == 384
    assert large.epochs == pytest.approx(small.epochs / 4, abs=1)  # 4x the pixels per image
    # 2 validation images for 50 training ones: every epoch; few training images and many
    # validation ones: every few epochs
    assert small.eval_every == 1
    w, h = 640, 480
    few = [Sample(i, Path(f"/x/{i}.png"), w, h, np.array([[10, 10, 50, 50]], np.float32), np.array([0]))
           for i in range(42)]
    lopsided = derive_defaults(TrainingData(["a"], "detect", few[:9], few[9:]), overrides={"device": "cpu"})
    assert lopsided.eval_every > 1
    assert derive_defaults(TrainingData(["a"], "detect", few[:9], few[9:]),
                           overrides="eval_every=1;device=cpu").eval_every == 1


def test_a_first_model_from_few_images_takes_enough_optimiser_steps() -> None:
    from labelloop.training.config import MAX_DEFAULT_EPOCHS, MIN_FRESH_STEPS

    few = _data(12, (640, 480), 10)  # 640 px inputs (small objects), 3 steps an epoch of 4 images
    first, again = (derive_defaults(few, overrides={"device": "cpu"}, fine_tune=f) for f in (False, True))
    first_steps = first.epochs * math.ceil(len(few.train) / first.batch_size)
    assert first_steps >= MIN_FRESH_STEPS > again.epochs * 3  # a fine-tuning keeps the pixel budget
    assert derive_defaults(_data(2, (640, 480), 30), overrides={"device": "cpu"}).epochs == MAX_DEFAULT_EPOCHS
    many = _data(400, (640, 480), 30)  # already far more steps than the floor: unchanged
    assert derive_defaults(many, overrides={"device": "cpu"}).epochs == \
        derive_defaults(many, overrides={"device": "cpu"}, fine_tune=True).epochs
    assert derive_defaults(few, overrides="epochs=5;device=cpu").epochs == 5  # given lengths win


def test_a_first_model_from_few_images_takes_small_batches_on_the_cpu() -> None:
    """Where the step floor lengthens a first model, the CPU takes its steps 2 images at a time
    (MIN_FRESH_STEPS_SMALL_BATCH of them, lr scaled down with the batch); a given batch, a
    fine-tuning, a set whose pixel budget already has the steps, or a given step count keep
    batches of 4."""
    from labelloop.training.config import FRESH_BATCH, MIN_FRESH_STEPS_SMALL_BATCH

    few = _data(12, (640, 480), 10)  # 12 training images of 640 px: 3 steps of 4 an epoch
    first = derive_defaults(few, overrides={"device": "cpu"})
    n_train = len(few.train)
    steps = math.ceil(n_train / FRESH_BATCH)
    assert first.batch_size == FRESH_BATCH and first.epochs == math.ceil(MIN_FRESH_STEPS_SMALL_BATCH / steps)
    assert first.lr == pytest.approx(4e-4 * math.sqrt(FRESH_BATCH / 4))
    again = derive_defaults(few, overrides={"device": "cpu"}, fine_tune=True)
    given = derive_defaults(few, overrides="device=cpu;batch_size=4")
    assert again.batch_size == given.batch_size == 4
    assert given.epochs * math.ceil(n_train / 4) >= 270 > again.epochs * math.ceil(n_train / 4)
    many = derive_defaults(_data(400, (640, 480), 30), overrides={"device": "cpu"})
    assert many.batch_size == 4
    stepped = derive_defaults(few, overrides="device=cpu;num_steps=30")  # a step count keeps its batch
    assert stepped.batch_size == 4 and stepped.epochs == math.ceil(30 / math.ceil(n_train / 4))


def test_user_args_override_defaults_and_task_is_checked() -> None:
    cfg = derive_defaults(_data(50, (640, 480), 100), overrides="epochs=3;image_size=256;device=cpu")
    assert (cfg.epochs, cfg.image_size) == (3, 256)
    with pytest.raises(ConfigError, match="task"):
        derive_defaults(_data(5, (64, 64), 10), base="semseg-lite0")
    seg = derive_defaults(_data(5, (64, 64), 10, task="segment"))
    assert seg.base == "maskrcnn-lite0"


def test_other_tools_argument_names() -> None:
    """The seeds' strings: TF/Onepanel names, Matterport's leading dashes, Onepanel step counts."""
    assert parse_args_string("initial_learning_rate=0.0003;num_clones=4") == {"lr": 0.0003, "num_clones": 4}
    assert parse_args_string("--stage1_epochs=4;--stage2_epochs=2;--stage3_epochs=2") == {
        "stage1_epochs": 4, "stage2_epochs": 2, "stage3_epochs": 2, "epochs": 8}
    assert parse_args_string("iterations=15000") == {"num_steps": 15000}
    with pytest.raises(ConfigError, match="'lr' is given twice \\(as 'initial_learning_rate'\\)"):
        parse_args_string("lr=0.01;initial_learning_rate=0.001")
    with pytest.raises(ConfigError, match="epochs=5 but the stages add up to 6"):
        parse_args_string("epochs=5;stage1_epochs=4;stage3_epochs=2")
    with pytest.raises(ConfigError, match="stage2_epochs: expected an integer >= 0"):
        parse_args_string("stage1_epochs=3;stage2_epochs=-1")


def test_staged_epochs_map_to_stages() -> None:
    cfg = TrainConfig(**parse_args_string("stage1_epochs=2;stage2_epochs=1;stage3_epochs=2"))
    assert cfg.staged and cfg.epochs == 5
    assert [cfg.stage_of(e) for e in range(1, 6)] == [1, 1, 2, 3, 3]
    assert not TrainConfig(epochs=3).staged and TrainConfig(epochs=3).stage_of(1) == 3


def test_steps_become_epochs_and_a_step_count_as_epochs_is_refused() -> None:
    data = _data(40, (800, 600), 40)  # 32 train images, batch 4 on a CPU: 8 steps per epoch
    steps_per_epoch = -(-len(data.train) // 4)
    cfg = derive_defaults(data, overrides="num_steps=400;device=cpu;batch_size=4")
    assert cfg.epochs == -(-400 // steps_per_epoch) and cfg.num_steps == 400
    with pytest.raises(ConfigError) as caught:
        derive_defaults(data, overrides="epochs=15000;device=cpu;batch_size=4")
    assert "looks like a step count" in caught.value.message
    assert f"num_steps=15000 (= {-(-15000 // steps_per_epoch)} epochs" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="epochs or num_steps, not both"):
        derive_defaults(data, overrides="epochs=10;num_steps=100")
    assert derive_defaults(data, overrides="epochs=1000").epochs == 1000  # long, but an epoch count
