"""Checkpoint forms users have (issue 9's table), the safety that stays, and which preset fits.

Every form loads the same weights; the trace's detections equal torchvision's model(images) of
the model that saved them. The evil files run nothing (a __reduce__ that would create a marker
file) and fail in one line, with no torch warning text."""

import argparse
import pickle
import sys
import warnings

import numpy as np
import pytest
import torch

import core
from core.demo.model import build_shapes_model
from core.errors import LensError, WeightsError
from core.models import checkpoints, fit, presets

from .conftest import noise_image


class Evil:
    """Unpickling this creates the marker file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def randomize_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def src():
    """The model whose weights every file holds: the demo architecture, seeded random weights."""
    torch.manual_seed(11)
    m = build_shapes_model(box_score_thresh=0.0)
    randomize_bn(m)
    return m.eval()


@pytest.fixture(scope="module")
def image():
    return noise_image(160, 200, seed=8)


def assert_equal_to_source(loaded, src, image):
    tr = core.trace(loaded, image)
    with torch.inference_mode():
        out = src([torch.from_numpy(image).permute(2, 0, 1).float().div(255)])[0]
    fin = tr.final()
    assert len(fin) == len(out["boxes"]) > 0
    np.testing.assert_array_equal(np.array([d["box"] for d in fin], np.float32), out["boxes"].numpy())
    np.testing.assert_array_equal([d["label"] for d in fin], out["labels"].numpy())
    np.testing.assert_array_equal(np.array([d["score"] for d in fin], np.float32), out["scores"].numpy())


def _pre(sd, prefix):
    return {prefix + k: v for k, v in sd.items()}


FORMS = {
    # name: (file content from the state dict, words the summary must hold)
    "top level": (lambda sd: sd, ["state dict at the top level"]),
    "reference script": (lambda sd: {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.02}]},
                                     "lr_scheduler": {"milestones": [16, 22]}, "epoch": 25,
                                     "args": argparse.Namespace(model="demo", lr=0.02, epochs=26)},
                         ["under 'model'", "reference-script", "epoch 25"]),
    "lightning": (lambda sd: {"state_dict": {**_pre(sd, "model."), "val_map.total": torch.zeros(2)}, "epoch": 3,
                              "pytorch-lightning_version": "2.4.0", "optimizer_states": [],
                              "hyper_parameters": {"lr": 0.01}},
                  ["under 'state_dict'", "Lightning", "prefix 'model.' removed", "1 key outside it left out"]),
    "model_state_dict": (lambda sd: {"model_state_dict": sd, "optimizer_state_dict": {}, "epoch": 2},
                         ["under 'model_state_dict'"]),
    "ddp": (lambda sd: {"model": _pre(sd, "module.")}, ["prefix 'module.' removed"]),
    "nested twice": (lambda sd: {"state_dict": _pre(sd, "module.model.")}, ["prefix 'module.model.' removed"]),
    "net": (lambda sd: _pre(sd, "net."), ["prefix 'net.' removed"]),
    "torch.compile": (lambda sd: _pre(sd, "_orig_mod."), ["prefix '_orig_mod.' removed"]),
    "ema": (lambda sd: {"ema": {"n_averaged": torch.tensor(7), **_pre(sd, "module.")}}, ["under 'ema'"]),
    "model_ema": (lambda sd: {"model_ema": {"n_averaged": torch.tensor(7), **_pre(sd, "module.")}, "epoch": 9},
                  ["under 'model_ema'", "prefix 'module.' removed"]),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_checkpoint_forms_load_the_same_weights(form, src, image, tmp_path):
    make, words = FORMS[form]
    path = tmp_path / f"{form.replace(' ', '_')}.pth"
    torch.save(make(src.state_dict()), path)
    loaded = core.load_model("demo", weights=str(path), box_score_thresh=0.0)
    for w in words:
        assert w in loaded.summary, (w, loaded.summary)
    if "ema" in form:  # the EMA's own counter is not a key of the model, nor worth a mention
        assert "left out" not in loaded.summary
    assert_equal_to_source(loaded, src, image)


def test_safetensors_with_class_names(src, image, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous().clone() for k, v in src.state_dict().items()}, str(path),
              metadata={"classes": '["__background__", "sun", "box", "wedge"]'})
    loaded = core.load_model(None, weights=str(path), box_score_thresh=0.0)  # no model named: auto
    assert loaded.name == "demo" and loaded.class_names == ["__background__", "sun", "box", "wedge"]
    assert "a safetensors file" in loaded.summary and "auto: demo" in loaded.summary
    assert_equal_to_source(loaded, src, image)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(WeightsError) as err:
        core.load_model("demo", weights=str(bad))
    assert str(err.value).startswith(f"{bad}: not a safetensors file") and "\n" not in str(err.value)


def _quietly(fn):
    """Run fn, returning (the exception, warnings that escaped)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except LensError as err:
            return err, caught
    return None, caught


def test_object_hidden_in_args_is_refused_and_runs_nothing(src, tmp_path, capfd):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil_args.pth"
    torch.save({"model": src.state_dict(), "args": argparse.Namespace(model="demo", evil=Evil(marker))}, path)
    for trust_model in ("demo", None):
        err, caught = _quietly(lambda: core.load_model(trust_model, weights=str(path)))
        assert isinstance(err, WeightsError) and not marker.exists() and caught == []
        msg = str(err)
        assert msg.startswith(f"{path}: refused: holds Python objects (") and "open" in msg and "\n" not in msg
    assert capfd.readouterr() == ("", "")
    # the legacy (non-zip) format, whose globals torch cannot list before unpickling
    legacy = tmp_path / "legacy.pth"
    torch.save({"model": {"a": torch.zeros(1)}, "x": Evil(marker)}, legacy, _use_new_zipfile_serialization=False)
    err, caught = _quietly(lambda: core.load_model("demo", weights=str(legacy)))
    assert str(err).startswith(f"{legacy}: refused: holds Python objects") and not marker.exists() and caught == []
    assert capfd.readouterr() == ("", "")


def test_whole_pickled_model_needs_trust(src, image, tmp_path, capfd):
    marker = tmp_path / "PWNED"
    evil_model = build_shapes_model()
    evil_model.payload = Evil(marker)  # a whole pickle runs whatever it holds
    evil = tmp_path / "whole_evil.pth"
    torch.save(evil_model, evil)
    err, caught = _quietly(lambda: core.load_model(None, weights=str(evil)))
    assert str(err) == (f"{evil}: refused: a whole pickled model (torch.save(model)), and unpickling it runs code from "
                        "the file; convert it where it was made with torch.save(model.state_dict(), 'weights.pt'), "
                        "or pass --trust if you made this file")
    assert not marker.exists() and caught == [] and capfd.readouterr() == ("", "")
    assert checkpoints.needs_trust(evil)
    whole = tmp_path / "whole.pth"
    torch.save(src, whole)
    loaded = core.load_model(None, weights=str(whole), trust=True)
    assert loaded.trusted and loaded.name == "auto" and "a whole pickled FasterRCNN" in loaded.summary
    assert_equal_to_source(loaded, src, image)
    # a named preset takes the pickled model's state dict
    named = core.load_model("demo", weights=str(whole), trust=True, box_score_thresh=0.0)
    assert "the state dict of a whole pickled FasterRCNN" in named.summary
    assert_equal_to_source(named, src, image)


def test_trusted_pickle_that_is_not_a_detector(tmp_path):
    path = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(2, 3), path)
    with pytest.raises(WeightsError) as err:
        core.load_model(None, weights=str(path), trust=True)
    assert str(err.value) == (f"{path}: holds a pickled torch.nn.modules.linear.Linear, not a torchvision "
                              "GeneralizedRCNN detector (FasterRCNN, MaskRCNN, KeypointRCNN)")


def test_trusted_pickle_of_a_class_not_importable_here(tmp_path, monkeypatch):
    mod = tmp_path / "gone_models.py"
    mod.write_text("from torchvision.models.detection import FasterRCNN\n\nclass MyRCNN(FasterRCNN):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gone_models

    from core.demo.model import build_shapes_model as b

    m = b()
    m.__class__ = gone_models.MyRCNN
    path = tmp_path / "mine.pth"
    torch.save(m, path)
    mod.unlink()
    del sys.modules["gone_models"]
    with pytest.raises(WeightsError) as err:
        core.load_model(None, weights=str(path), trust=True)
    assert "needs code that is not importable here (No module named 'gone_models')" in str(err.value)
    assert "--model file.py:function" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, pickle.dumps([1, 2, 3])])
def test_not_a_checkpoint_is_one_line(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    err, caught = _quietly(lambda: core.load_model("demo", weights=str(path)))
    assert str(err).startswith(f"{path}: ") and "\n" not in str(err) and caught == []


def test_every_preset_fits_itself_and_no_other_family():
    """All presets, checked on the meta device (no memory, no init)."""
    for name, preset in presets.PRESETS.items():
        kw = fit.build_keywords(preset, {})
        with torch.device("meta"):
            sd = preset.build(**kw).state_dict()
        fits = fit.fitting_presets(sd)
        assert name in fits, name
        mobilenets = {"fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn"}
        # the two MobileNet presets differ only in their transform and RPN top-n: the same keys
        assert set(fits) == ({name} | mobilenets if name in mobilenets else {name}), (name, fits)


def test_auto_prefers_the_checkpoints_own_args_model(tmp_path):
    from core.models.checkpoints import Checkpoint
    from core.models.load import _auto
    from core.models.weights import Resolved

    with torch.device("meta"):
        sd = presets.get("fasterrcnn_mobilenet_v3_large_320_fpn").build(num_classes=5).state_dict()
    for arch, chosen in ((None, "fasterrcnn_mobilenet_v3_large_fpn"),
                         ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn")):
        ck = Checkpoint(tmp_path / "x.pth", sd, arch=arch)
        preset, note = _auto(Resolved("x", sd, None, None, 5, checkpoint=ck), "x")
        assert preset.name == chosen
        assert ("named by the checkpoint's args.model" in note) == (arch is not None) and "also fits" in note


def test_keys_that_fit_another_preset_name_it_and_auto_picks_it(tmp_path, image):
    src = presets.get("seed-alexnet").build(num_classes=17, box_score_thresh=0.0).eval()
    path = tmp_path / "alex.pth"
    torch.save({"model": _pre(src.state_dict(), "module.")}, path)
    with pytest.raises(WeightsError) as err:
        core.load_model("demo", weights=str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: keys do not fit model demo: ") and "\n" not in msg
    assert msg.endswith("; they fit seed-alexnet (--model seed-alexnet, or --model auto)")
    assert fit.suggest(path) == ["seed-alexnet"]  # what the app's model chooser offers
    loaded = core.load_model("auto", weights=str(path), box_score_thresh=0.0)
    assert loaded.name == "seed-alexnet" and "prefix 'module.' removed" in loaded.summary
    assert_equal_to_source(loaded, src, image)


def test_keys_that_fit_nothing_say_so(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"backbone.weird.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(WeightsError) as err:
        core.load_model("auto", weights=str(path))
    assert str(err.value).startswith(f"{path}: fits no preset; for a model of your own use --model path/to/file.py:"
                                     "function (closest: ")
    with pytest.raises(WeightsError, match="no preset fits them"):
        core.load_model("demo", weights=str(path))
    with pytest.raises(core.ModelError, match="needs a checkpoint file"):
        core.load_model("auto", weights="random")


def frozen(module):
    """BatchNorm2d -> FrozenBatchNorm2d with torchvision's default eps, as its builders make a
    pretrained backbone (norm_layer=FrozenBatchNorm2d); statistics kept."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for n, child in list(module.named_children()):
        if isinstance(child, torch.nn.BatchNorm2d):
            f = FrozenBatchNorm2d(child.num_features)
            for k in ("weight", "bias", "running_mean", "running_var"):
                getattr(f, k).copy_(getattr(child, k).detach())
            setattr(module, n, f)
        else:
            frozen(child)
    return module


def test_frozen_backbone_gets_torchvisions_eps(tmp_path, image):
    """A MobileNetV3 detector fine-tuned from torchvision's weights (frozen BatchNorm, no counters)."""
    import torchvision

    src = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                                              num_classes=3, box_score_thresh=0.0)
    randomize_bn(src)
    frozen(src.backbone.body).eval()
    path = tmp_path / "mob.pth"
    torch.save(src.state_dict(), path)
    loaded = core.load_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=str(path), box_score_thresh=0.0)
    assert_equal_to_source(loaded, src.eval(), image)


def test_mask_rcnn_fine_tuned_as_in_the_tutorial(tmp_path, image):
    """torchvision's fine-tuning tutorial: maskrcnn_resnet50_fpn(weights="DEFAULT") (frozen BatchNorm,
    eps 0.0 by torchvision's overwrite_eps), new box and mask predictors for 2 classes."""
    import torchvision
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    small = dict(min_size=96, max_size=128, box_detections_per_img=4, box_score_thresh=0.0)
    src = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, **small)
    randomize_bn(src)
    frozen(src.backbone.body)
    overwrite_eps(src, 0.0)  # what the builder does for MaskRCNN_ResNet50_FPN_Weights.COCO_V1
    src.roi_heads.box_predictor = FastRCNNPredictor(1024, 2)
    src.roi_heads.mask_predictor = MaskRCNNPredictor(256, 256, 2)
    path = tmp_path / "pennfudan.pth"
    torch.save(src.state_dict(), path)
    loaded = core.load_model(None, weights=str(path), **small)  # auto
    assert loaded.name == "maskrcnn_resnet50_fpn" and len(loaded.class_names) == 2
    assert "frozen BatchNorm eps 0, as torchvision builds it with its COCO weights" in loaded.summary
    src.eval()
    tr = core.trace(loaded, image)
    with torch.inference_mode():
        out = src([torch.from_numpy(image).permute(2, 0, 1).float().div(255)])[0]
    assert_equal_to_source(loaded, src, image)
    for j in range(len(out["boxes"])):
        np.testing.assert_array_equal(tr.masks.full(j), out["masks"][j, 0].numpy())
    # a reference-script checkpoint trained from an ImageNet backbone only (args.weights None): eps stays 1e-5
    torch.save({"model": src.state_dict(), "args": argparse.Namespace(model="maskrcnn_resnet50_fpn", weights=None)}, path)
    from torchvision.ops.misc import FrozenBatchNorm2d

    scratch = core.load_model(None, weights=str(path), **small)
    assert {m.eps for m in scratch.module.modules() if isinstance(m, FrozenBatchNorm2d)} == {1e-5}


def test_hint_names_the_checkpoints_own_model_first(tmp_path):
    import torchvision

    m = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                                            num_classes=3)
    path = tmp_path / "ref.pth"
    torch.save({"model": m.state_dict(), "args": argparse.Namespace(model="fasterrcnn_mobilenet_v3_large_320_fpn")},
               path)
    with pytest.raises(WeightsError) as err:
        core.load_model("demo", weights=str(path))
    assert str(err.value).endswith("; they fit fasterrcnn_mobilenet_v3_large_320_fpn, fasterrcnn_mobilenet_v3_large_fpn "
                                   "(--model fasterrcnn_mobilenet_v3_large_320_fpn, or --model auto)")


@pytest.mark.parametrize("data, reason", [
    (b".", "neither torch's zip format nor its legacy pickle format"),  # pickle said "pop from empty list"
    (b"\x80\x02}q\x00.", "neither torch's zip format nor its legacy pickle format"),  # "Invalid magic number"
    (b"PK\x03\x04junk", "neither torch's zip format nor its legacy pickle format"),  # miniz's internal error
    (b"", "the file is empty"),  # "EOFError"
    (b"garbage", "neither torch's zip format nor its legacy pickle format"),  # "Unsupported operand 103"
])
def test_a_file_that_is_no_checkpoint_says_why_in_plain_words(tmp_path, data, reason):
    from core.models import checkpoints

    f = tmp_path / "bad.pt"
    f.write_bytes(data)
    with pytest.raises(WeightsError) as err:
        checkpoints.read(f)
    assert str(err.value) == f"{f}: not a PyTorch checkpoint ({reason})"


def test_a_zip_that_torch_did_not_write_is_named_a_zip(tmp_path):
    import zipfile

    from core.models import checkpoints

    f = tmp_path / "notes.pt"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(WeightsError, match=r"not a PyTorch checkpoint \(a zip archive, but not one torch.save wrote"):
        checkpoints.read(f)
