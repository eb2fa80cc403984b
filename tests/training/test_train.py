"""Real (tiny) training runs: learning, artifacts, NaN, stop, resume after a kill, fine-tune, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from labelloop.core.samples import TrainingData
from labelloop.errors import ConfigError, TrainingError
from labelloop.models import BaseModelSpec, get_base_model, register_base_model
from labelloop.training import TrainConfig, render_flipbook, train_model, train_step
from labelloop.training import loop as training_loop
from labelloop.training.loop import _evaluate, _Job, amp_dtype
from training.synth import make_training_data

TESTS = Path(__file__).resolve().parents[1]
FAST = dict(image_size=96, batch_size=4, workers=0, device="cpu", augment="light")


def _untrained_map(data: TrainingData, tmp_path: Path) -> float:
    from labelloop.models.builders import set_input_size

    model = get_base_model("fcos-lite0").build(len(data.classes))
    set_input_size(model, 96)
    job = _Job(data, TrainConfig(**FAST), tmp_path, None, False, [])
    return _evaluate(model, job, torch.device("cpu"))[0]["map50"]


def test_tiny_training_learns_and_writes_artifacts(detect_data: TrainingData, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    out = tmp_path / "run"
    result = train_model(detect_data, TrainConfig(epochs=4, lr=2e-3, **FAST), out, progress=events.append)
    assert result.reason == "completed" and len(result.epochs) == 4
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 4
    assert events[0]["steps_per_epoch"] == 4 and kinds.count("step") == 16
    losses = [r["losses"]["loss"] for r in result.epochs]
    assert losses[-1] < losses[0]
    assert result.best_metrics["map50"] > _untrained_map(detect_data, tmp_path) + 0.1
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["rect", "ellipse"] and meta["best_epoch"] == result.best_epoch
    assert meta["input_size"] == 96 and meta["mean"] and meta["config"]["epochs"] == 4
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    for name in ("best.pt", "last.pt", "plots/loss.png", "plots/map.png", "plots/pr_rect.png",
                 "flipbook/epoch_004.json"):
        assert (out / name).is_file(), name
    frame = json.loads((out / "flipbook/epoch_001.json").read_text())
    assert len(frame["images"]) == 8 and {"boxes", "scores", "labels", "masks"} <= frame["images"][0].keys()
    samples = {s.image_id: s for s in detect_data.val}
    assert render_flipbook(out, samples, tmp_path / "f.gif").stat().st_size > 0
    assert "<input" in render_flipbook(out, samples, tmp_path / "f.html").read_text()


def test_evaluation_every_few_epochs_and_after_the_last(detect_data: TrainingData, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    out = tmp_path / "run"
    result = train_model(detect_data, TrainConfig(epochs=5, lr=2e-3, eval_every=2, **FAST), out,
                         progress=events.append)
    assert result.reason == "completed"
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [2, 4, 5]
    assert [r["epoch"] for r in result.epochs] == [2, 4, 5]
    assert sorted(p.name for p in (out / "flipbook").glob("epoch_*.json")) == [
        "epoch_002.json", "epoch_004.json", "epoch_005.json"]
    assert sum(e["type"] == "step" for e in events) == 5 * events[0]["steps_per_epoch"]  # every epoch trained


class _NanModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.input_size = 64

    def forward(self, images: list, targets: list | None = None) -> Any:
        return {"loss_nan": self.w * float("nan")}


def test_nan_loss_raises_training_error(detect_data: TrainingData, tmp_path: Path) -> None:
    model = _NanModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingError, match="not finite"):
        train_step(model, [torch.zeros(3, 8, 8, dtype=torch.uint8)], [{}], opt, torch.device("cpu"))
    register_base_model(BaseModelSpec(name="test-nan", task="detect", summary="s", guidance="g",
                                      builder=lambda spec, n, pretrained, weights: _NanModel()))
    with pytest.raises(TrainingError, match="lower lr"):
        train_model(detect_data, TrainConfig(base="test-nan", epochs=1, **FAST), tmp_path / "nan")


class _OverflowModel(torch.nn.Module):
    """A finite loss (0) whose gradient is infinite: sqrt at 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.input_size = 64

    def forward(self, images: list, targets: list | None = None) -> Any:
        return {"loss_steep": self.w.sqrt().sum()}


def test_a_step_whose_gradient_overflows_updates_nothing(caplog: pytest.LogCaptureFixture) -> None:
    model = _OverflowModel()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.05)
    before = model.w.detach().clone()
    losses = train_step(model, [torch.zeros(3, 8, 8)], [{}], opt, torch.device("cpu"))
    assert torch.isfinite(torch.tensor(losses["loss"]))
    assert torch.equal(model.w.detach(), before)  # neither the NaN-clipped gradient nor weight decay
    assert "skipped" in caplog.text


def test_fcos_losses_and_gradients_stay_float32_and_finite_under_bfloat16(detect_data: TrainingData) -> None:
    """The losses are float32 (bfloat16 GIoU of tiny boxes overflowed), and so are the P6/P7 maps
    (oneDNN's bfloat16 weight gradient on their 1x1 maps came out NaN for 2 of these 10 seeds)."""
    from labelloop.models.builders import set_input_size

    targets = [{"boxes": torch.tensor([[10.0, 10.0, 14.0, 13.0], [30.0, 20.0, 60.0, 50.0]]),
                "labels": torch.tensor([1, 2])}] * 2
    for seed in range(10):
        torch.manual_seed(seed)
        model = get_base_model("fcos-lite0").build(len(detect_data.classes))
        set_input_size(model, 64)
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = model([torch.rand(3, 64, 64) for _ in targets], targets)
        assert {v.dtype for v in losses.values()} == {torch.float32}
        sum(losses.values()).backward()
        bad = [k for k, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        assert not bad, (seed, bad)


def test_object_balance_weights_small_objects_up_and_zero_is_torchvisions_loss(detect_data: TrainingData) -> None:
    from labelloop.models.builders import FloatLossFCOSHead, set_input_size

    model = get_base_model("fcos-lite0").build(len(detect_data.classes))
    set_input_size(model, 128)
    model.train()
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 22.0, 21.0], [30.0, 20.0, 110.0, 100.0]]),
                "labels": torch.tensor([1, 2])},
               {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}]  # an empty image too
    plain = model(images, targets)
    model.head.object_balance = 1e-9  # the balanced path with every weight 1
    same = model(images, targets)
    assert all(torch.allclose(plain[k], same[k], rtol=1e-5) for k in plain)
    head = FloatLossFCOSHead(32, 1, 3, num_convs=1)
    head.object_balance = 1.0
    weights = head._weights(torch.tensor([[0, 0, 0, 0, 1, -1]]))  # a 4-location object, a 1-location one
    assert torch.allclose(weights, torch.tensor([[0.625, 0.625, 0.625, 0.625, 2.5, 0.0]]))  # equal shares of 5


def test_precision_auto_follows_the_device_and_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(training_loop, "native_bf16_cpu", lambda: True)
    assert amp_dtype(TrainConfig(), cpu) == torch.bfloat16 and amp_dtype(TrainConfig(), cuda) == torch.float16
    monkeypatch.setattr(training_loop, "native_bf16_cpu", lambda: False)  # emulated bfloat16 is slower
    assert amp_dtype(TrainConfig(), cpu) is None
    assert amp_dtype(TrainConfig(precision="bf16"), cpu) == torch.bfloat16
    assert amp_dtype(TrainConfig(precision="fp32"), cuda) is None
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        amp_dtype(TrainConfig(precision="fp16"), cpu)


def test_bfloat16_training_computes_in_bfloat16_and_learns(detect_data: TrainingData, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[torch.dtype] = set()
    forward = torch.nn.Conv2d.forward

    def spy(self: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        out = forward(self, x)
        seen.add(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    out = tmp_path / "run"
    result = train_model(detect_data, TrainConfig(epochs=4, lr=2e-3, precision="bf16", **FAST), out)
    assert torch.bfloat16 in seen  # the training steps' convolutions
    weights = torch.load(out / "best.pt", weights_only=False)["model"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    assert result.epochs[-1]["losses"]["loss"] < result.epochs[0]["losses"]["loss"]
    assert result.best_metrics["map50"] > _untrained_map(detect_data, tmp_path) + 0.1


def test_stop_event_saves_checkpoint_and_returns_interrupted(detect_data: TrainingData, tmp_path: Path) -> None:
    stop = threading.Event()

    events: list[dict[str, Any]] = []

    def progress(event: dict[str, Any]) -> None:
        events.append(event)
        if event["type"] == "step" and event["epoch"] == 2 and event["step"] == 2:
            stop.set()

    result = train_model(detect_data, TrainConfig(epochs=3, **FAST), tmp_path / "run", progress=progress,
                         stop_event=stop)
    assert result.reason == "interrupted" and len(result.epochs) == 1
    ckpt = torch.load(tmp_path / "run/last.pt", weights_only=False)
    assert ckpt["state"]["epoch"] == 1
    # a stopped run compares no prediction sizes: it predicts at its training size until resumed
    assert "predict_size" not in json.loads((tmp_path / "run/model.json").read_text())
    assert not [e for e in events if e["type"] == "predict_size"] and "predict_size" not in events[-1]


_KILLED_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from training.synth import make_training_data
from labelloop.training import TrainConfig, train_model
data = make_training_data(Path({data!r}), n_train=16, n_val=8)
def progress(event):
    if event["type"] == "epoch":
        print("EPOCH", event["epoch"], flush=True)
        time.sleep(120)  # the test kills us here
train_model(data, TrainConfig(epochs=3, **{fast!r}), {out!r}, progress=progress)
"""


@pytest.mark.slow
def test_resume_after_kill_continues_epoch_counter(tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = _KILLED_RUN.format(tests=str(TESTS), data=str(tmp_path / "data"), fast=FAST, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "EPOCH 1", line
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert (out / "last.pt").is_file()
    data = make_training_data(tmp_path / "data", n_train=16, n_val=8)
    events: list[dict[str, Any]] = []
    result = train_model(data, TrainConfig(epochs=3, **FAST), out, resume=True, progress=events.append)
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [2, 3]
    assert [r["epoch"] for r in result.epochs] == [1, 2, 3]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3


def test_fine_tune_adds_a_class_matched_by_name(tmp_path: Path) -> None:
    first = make_training_data(tmp_path / "a", n_train=8, n_val=4, classes=("rect", "ellipse"))
    train_model(first, TrainConfig(epochs=1, **FAST), tmp_path / "m1")
    second = make_training_data(tmp_path / "b", n_train=8, n_val=4, classes=("ellipse", "rect", "box3"))
    old = torch.load(tmp_path / "m1/best.pt", weights_only=False)["model"]
    result = train_model(second, TrainConfig(epochs=1, lr=1e-9, **FAST), tmp_path / "m2",
                         init_from=tmp_path / "m1")
    assert result.reason == "completed"
    new = torch.load(tmp_path / "m2/best.pt", weights_only=False)["model"]
    key = "head.classification_head.cls_logits.weight"
    assert new[key].shape[0] == 4
    # rows: 0 background, then classes; ellipse old row 2 -> new row 1, rect old 1 -> new 2 (lr ~ 0)
    assert torch.allclose(new[key][1], old[key][2], atol=1e-5)
    assert torch.allclose(new[key][2], old[key][1], atol=1e-5)
    meta = json.loads((tmp_path / "m2/model.json").read_text())
    assert meta["classes"] == ["ellipse", "rect", "box3"]


@pytest.mark.parametrize("task", ["segment", "regions"])
def test_segment_and_regions_train_one_epoch(task: str, tmp_path: Path) -> None:
    data = make_training_data(tmp_path / "d", n_train=8, n_val=4, task=task)
    # copy-paste, mosaic and repeat-factor sampling on (copy-paste and mosaic are skipped for semantic regions)
    result = train_model(data, TrainConfig(epochs=1, copy_paste=1.0, mosaic=0.5, balanced=True, **FAST),
                         tmp_path / "run")
    key = "mask_map50" if task == "segment" else "miou"
    assert result.reason == "completed" and key in result.best_metrics
    frame = json.loads((tmp_path / "run/flipbook/epoch_001.json").read_text())
    assert frame["images"][0]["masks"] is not None


@pytest.mark.slow
def test_ddp_two_cpu_processes(detect_data: TrainingData, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    t0 = time.time()
    result = train_model(detect_data, TrainConfig(epochs=2, num_clones=2, **FAST), tmp_path / "ddp",
                         progress=events.append)
    assert result.reason == "completed" and [r["epoch"] for r in result.epochs] == [1, 2]
    start = next(e for e in events if e["type"] == "start")
    assert start["steps_per_epoch"] == 2  # 16 images / (2 clones x batch 4)
    assert start["engine"] == "2 processes on this machine (gloo)"
    assert (tmp_path / "ddp/best.pt").is_file() and time.time() - t0 < 300


def test_unreadable_images_are_left_out_and_reported(tmp_path: Path) -> None:
    data = make_training_data(tmp_path / "d", n_train=8, n_val=4)
    broken_train, broken_val, cut = data.train[2], data.val[1], data.train[3]
    broken_train.path.write_bytes(b"not an image at all" * 20)  # garbage
    broken_val.path.write_bytes(b"")  # zero bytes
    raw = cut.path.read_bytes()
    cut.path.write_bytes(raw[: len(raw) * 2 // 3])  # truncated: decodes partly (grey), so it is kept
    events: list[dict] = []
    result = train_model(data, TrainConfig(epochs=1, **FAST), tmp_path / "run", progress=events.append)
    assert result.reason == "completed" and result.best_epoch == 1
    assert sorted(s["image_id"] for s in result.skipped) == sorted([broken_train.image_id, broken_val.image_id])
    assert all(s["reason"] and s["file"] for s in result.skipped)
    assert next(e for e in events if e["type"] == "skipped")["images"] == result.skipped
    frame = json.loads((tmp_path / "run/flipbook/epoch_001.json").read_text())
    assert broken_val.image_id not in [im["image_id"] for im in frame["images"]]  # the flipbook picks others
    for sample in data.train[:6]:  # too many broken: the run fails up front, naming them
        sample.path.write_bytes(b"not an image")
    with pytest.raises(TrainingError, match="cannot be read"):
        train_model(data, TrainConfig(epochs=1, **FAST), tmp_path / "run2")


def test_staged_fine_tuning_trains_the_heads_first(detect_data: TrainingData, tmp_path: Path) -> None:
    """stage 1: the backbone's body is frozen (requires_grad off, weights unchanged); stage 2: its top
    half trains too; stage 3: everything that trains by default."""
    from labelloop.training.loop import set_stage

    spec = get_base_model("fcos-lite0")
    model = spec.build(len(detect_data.classes), pretrained=True)
    body = model.backbone.body
    default = {n for n, p in body.named_parameters() if p.requires_grad}
    blocks = list(body.blocks)
    top = {f"blocks.{i}.{n}" for i in range(len(blocks) // 2, len(blocks)) for n, _ in blocks[i].named_parameters()}
    for stage, expected in ((1, set()), (2, default & top), (3, default)):
        set_stage(model, stage)
        assert {n for n, p in body.named_parameters() if p.requires_grad} == expected, stage
        assert all(p.requires_grad for p in model.head.parameters())  # the heads always train
    assert default & top and default - top  # stage 2 is neither stage 1 nor stage 3

    before = {n: p.detach().clone() for n, p in body.named_parameters()}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch(event: dict[str, Any]) -> None:  # last.pt is written before the epoch is reported
        if event["type"] == "start":
            assert event["length_note"].startswith("stages 1+1+1 epochs: heads only")
        if event["type"] == "epoch":
            state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)["model"]
            snapshots[event["epoch"]] = {n: state[f"backbone.body.{n}"] for n in before}

    cfg = TrainConfig(epochs=3, stage1_epochs=1, stage2_epochs=1, stage3_epochs=1, patience=0, ema=False, **FAST)
    train_model(detect_data, cfg, tmp_path / "run", progress=on_epoch)
    changed = {e: {n for n in before if not torch.equal(before[n], snap[n])} for e, snap in snapshots.items()}
    assert changed[1] == set()  # heads only
    assert changed[2] and changed[2] <= top  # the top of the backbone joins
    assert changed[3] - top  # then the rest that trains


def test_freeze_at_keeps_the_first_stages_as_pretrained(detect_data: TrainingData, tmp_path: Path) -> None:
    """``freeze_at=3``: after a real epoch the stem and stages 0-2 hold their ImageNet weights and
    stage 3 has learnt; a depth the backbone does not have is refused before training."""
    cfg = TrainConfig(epochs=1, patience=0, ema=False, freeze_at=3, **FAST)
    train_model(detect_data, cfg, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=False)["model"]
    pretrained = get_base_model("fcos-lite0").build(len(detect_data.classes), pretrained=True).backbone.body
    changed = {n.split(".")[1] if n.startswith("blocks.") else n.split(".")[0]
               for n, p in pretrained.named_parameters() if not torch.equal(p, state[f"backbone.body.{n}"])}
    assert changed and not changed & {"conv_stem", "bn1", "0", "1", "2"}
    assert "3" in changed
    with pytest.raises(ConfigError, match="freeze_at=8: the backbone has only 7 stages"):
        train_model(detect_data, TrainConfig(epochs=1, freeze_at=8, **FAST), tmp_path / "run2")
    with pytest.raises(ConfigError, match="freeze_at: expected an integer >= 0"):
        TrainConfig(freeze_at=-1)


def test_backbone_lr_sets_the_pretrained_body_apart(detect_data: TrainingData) -> None:
    """``backbone_lr`` scales the body's rate only; the FPN and heads (from random) keep ``lr``; the
    frozen stem is in no group."""
    from labelloop.training.loop import _param_groups

    model = get_base_model("fcos-lite0").build(len(detect_data.classes), pretrained=True)
    groups = _param_groups(model, TrainConfig(lr=0.002, backbone_lr=0.1))
    body = {id(p) for p in model.backbone.body.parameters() if p.requires_grad}
    assert [g["lr"] for g in groups] == [0.002, pytest.approx(0.0002)]
    assert {id(p) for p in groups[1]["params"]} == body
    assert all(id(p) not in body for p in groups[0]["params"])
    assert {id(p) for p in model.head.parameters()} <= {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)
    one = _param_groups(model, TrainConfig(lr=0.002))  # one rate: one group, as before backbone_lr
    assert len(one) == 1 and one[0]["lr"] == 0.002 and len(one[0]["params"]) == sum(len(g["params"]) for g in groups)
    with pytest.raises(ConfigError, match="backbone_lr"):
        TrainConfig(backbone_lr=0)
