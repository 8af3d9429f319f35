"""Weights: random seeds, checkpoints (weights_only), COCO through torchvision's cache path."""

import pickle

import pytest
import torch

import core
from core.errors import WeightsError
from core.models import presets
from core.models import weights as w


def _params(model):
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def test_random_seed_is_reproducible_and_distinct():
    a = _params(core.load_model("seed-alexnet", weights="random:3"))
    b = _params(core.load_model("seed-alexnet", weights="random:3"))
    c = _params(core.load_model("seed-alexnet", weights="random:4"))
    k = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(a[k], b[k]) and not torch.equal(a[k], c[k])
    with pytest.raises(WeightsError, match="random:SEED"):
        core.load_model("seed-alexnet", weights="random:x")


@pytest.mark.parametrize("wrap", [None, "model", "state_dict"])
def test_checkpoint_roundtrip_reads_classes(tmp_path, wrap):
    src = core.load_model("demo", weights="random:5")
    sd = src.module.state_dict()
    obj = sd if wrap is None else {wrap: sd, "note": "x"}
    path = tmp_path / "ck.pt"
    torch.save(obj, path)
    (tmp_path / "ck.classes.txt").write_text("__background__\nsun\nbox\nwedge\n")
    loaded = core.load_model("demo", weights=str(path))
    assert loaded.class_names == ["__background__", "sun", "box", "wedge"]
    for k, v in sd.items():
        assert torch.equal(loaded.module.state_dict()[k], v)


def test_number_of_classes_read_from_checkpoint(tmp_path):
    import torchvision

    m = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=6)
    path = tmp_path / "six.pth"
    torch.save({"state_dict": m.state_dict()}, path)
    loaded = core.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=str(path))
    assert loaded.module.roi_heads.box_predictor.cls_score.out_features == 6
    assert loaded.class_names == ["__background__"] + [f"class {i}" for i in range(1, 6)]


def test_mismatched_keys_are_counted_and_named(tmp_path):
    sd = core.load_model("demo", weights="random").module.state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith("rpn.head.conv")}
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(WeightsError) as err:
        core.load_model("demo", weights=str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: keys do not fit model demo")
    assert "missing (e.g. rpn.head.conv" in msg and "1 unexpected (e.g. extra.weight)" in msg


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"a": torch.zeros(1)}, "x": Evil()}, path)
    with pytest.raises(WeightsError, match="weights_only=True"):
        core.load_model("demo", weights=str(path))


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, pickle.dumps([1, 2, 3])])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as err:
        core.load_model("demo", weights=str(path))
    assert str(err.value).startswith(str(path) + ": ") and "\n" not in str(err.value)


def test_missing_checkpoint():
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        core.load_model("demo", weights="/nonexistent/w.pt")


def test_coco_uncached_names_file_and_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError) as err:
        core.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="coco")
    msg = str(err.value)
    assert "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and "not cached" in msg


def test_coco_from_cache_uses_torchvision_weights_api(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    preset = presets.get("fasterrcnn_mobilenet_v3_large_320_fpn")
    target = w.coco_file(preset)
    assert target.parent == tmp_path / "hub" / "checkpoints"
    target.parent.mkdir(parents=True)
    # a stand-in for the real file: torchvision's layout with FrozenBatchNorm (no num_batches_tracked)
    import torchvision
    from torchvision.ops.misc import FrozenBatchNorm2d

    m = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    sd = {k: v for k, v in m.state_dict().items()
          if not (k.startswith("backbone.body") and k.endswith("num_batches_tracked"))}
    torch.save(sd, target)
    loaded = core.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights="coco")
    assert loaded.class_names[1] == "person" and len(loaded.class_names) == 91
    assert any(isinstance(x, FrozenBatchNorm2d) for x in loaded.module.backbone.body.modules())
    k = "roi_heads.box_predictor.bbox_pred.weight"
    assert torch.equal(loaded.module.state_dict()[k], sd[k])


def test_unknown_preset_and_device():
    with pytest.raises(core.ModelError, match="unknown model preset"):
        core.load_model("yolo")
    with pytest.raises(core.ModelError, match="unknown device"):
        core.load_model("demo", weights="random", device="tpu")
