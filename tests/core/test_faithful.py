"""The staged trace equals torchvision's own model(images) for every preset."""

import numpy as np
import pytest
import torch

import core
from core.models.presets import PRESETS

from .conftest import noise_image

# keep the big torchvision presets small: the seams under test do not depend on the input size
SMALL = {
    "fasterrcnn_resnet50_fpn": dict(min_size=256, max_size=320),
    "fasterrcnn_resnet50_fpn_v2": dict(min_size=256, max_size=320),
    "fasterrcnn_mobilenet_v3_large_fpn": dict(min_size=256, max_size=320),
    # the mask/keypoint heads run per final detection: few detections keep them quick
    "maskrcnn_resnet50_fpn": dict(min_size=96, max_size=128, box_detections_per_img=4),
    "maskrcnn_resnet50_fpn_v2": dict(min_size=96, max_size=128, box_detections_per_img=4),
    "keypointrcnn_resnet50_fpn": dict(min_size=96, max_size=128, box_detections_per_img=4),
}
SIZES = {"seed-walkthrough": (800, 800)}


def reference(model, image):
    with torch.inference_mode():
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
        images, _ = model.module.transform([x])
        feats = model.module.backbone(images.tensors)
        if isinstance(feats, torch.Tensor):
            feats = {"0": feats}
        proposals, _ = model.module.rpn(images, feats)
        out = model.module([x])[0]
    return proposals[0], out


def assert_same(tr, proposals, out):
    p = tr.proposals
    np.testing.assert_array_equal(p.boxes[p.keep], proposals.numpy())
    fin = tr.final()
    assert len(fin) == len(out["boxes"])
    np.testing.assert_array_equal(np.array([d["box"] for d in fin], np.float32).reshape(-1, 4),
                                  out["boxes"].numpy())
    np.testing.assert_array_equal([d["label"] for d in fin], out["labels"].numpy())
    np.testing.assert_array_equal(np.array([d["score"] for d in fin], np.float32), out["scores"].numpy())
    assert (tr.masks is not None) == ("masks" in out) and (tr.keypoints is not None) == ("keypoints" in out)
    if "masks" in out:  # the pasted masks, equal pixel for pixel (core/tracing/heads.py, tests/core/test_heads.py)
        for j in range(len(fin)):
            np.testing.assert_array_equal(tr.masks.full(j), out["masks"][j, 0].numpy())
    if "keypoints" in out:
        np.testing.assert_array_equal(tr.keypoints.keypoints_image, out["keypoints"].numpy())
        np.testing.assert_array_equal(tr.keypoints.scores, out["keypoints_scores"].numpy())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_trace_equals_model(name):
    kw = SMALL.get(name, {})
    # a low score threshold so random weights still produce detections to compare
    model = core.load_model(name, weights="random:7", box_score_thresh=0.0, **kw)
    h, w = SIZES.get(name, (150, 210))
    image = noise_image(h, w, seed=3)
    tr = core.trace(model, image)
    proposals, out = reference(model, image)
    assert len(proposals) > 0 and len(out["boxes"]) > 0
    assert_same(tr, proposals, out)


@pytest.mark.parametrize("name", ["seed-alexnet", "fasterrcnn_mobilenet_v3_large_320_fpn", "demo"])
def test_changed_thresholds_equal_model_built_with_them(name):
    changed = dict(rpn_pre_nms_top_n_test=60, rpn_post_nms_top_n_test=25, rpn_nms_thresh=0.5,
                   box_score_thresh=0.0, box_nms_thresh=0.3, box_detections_per_img=7)
    image = noise_image(170, 130, seed=5)
    built = core.load_model(name, weights="random:2", **changed)
    proposals, out = reference(built, image)
    base = core.load_model(name, weights="random:2")
    tr = core.trace(base, image, **changed)
    assert_same(tr, proposals, out)
    assert 0 < len(tr.proposals.keep) <= 25 and 0 < len(tr.final()) <= 7


@pytest.mark.parametrize("name", ["seed-alexnet", "fasterrcnn_mobilenet_v3_large_320_fpn"])
def test_retrace_equals_model_built_with_changed_keywords(name):
    image = noise_image(160, 200, seed=9)
    base = core.load_model(name, weights="random:4", box_score_thresh=0.0)
    tr = core.trace(base, image)
    for changed in (dict(box_nms_thresh=0.2, box_detections_per_img=11),
                    dict(box_score_thresh=0.059),
                    dict(rpn_nms_thresh=0.4, rpn_post_nms_top_n_test=40),
                    dict(rpn_pre_nms_top_n_test=30, rpn_score_thresh=0.5)):
        built = core.load_model(name, weights="random:4", **{"box_score_thresh": 0.0, **changed})
        proposals, out = reference(built, image)
        assert_same(core.retrace(tr, **changed), proposals, out)


def test_retrace_never_reruns_the_backbone():
    model = core.load_model("demo", weights="random:1", box_score_thresh=0.0)
    calls = []
    # on every module of the backbone (the runner calls backbone.body and backbone.fpn, not the
    # backbone itself): any backbone work at all is seen
    for name, mod in model.module.backbone.named_modules():
        mod.register_forward_pre_hook(lambda *a, n=name: calls.append(f"backbone.{n}" if n else "backbone"))
    model.module.rpn.head.register_forward_pre_hook(lambda *a: calls.append("rpn_head"))
    model.module.roi_heads.box_head.register_forward_pre_hook(lambda *a: calls.append("box_head"))
    tr = core.trace(model, noise_image(200, 240))
    assert "backbone.body" in calls and "backbone.fpn" in calls  # the hooks do see the runner's calls
    assert calls[-2:] == ["rpn_head", "box_head"]
    calls.clear()
    tr2 = core.retrace(tr, box_nms_thresh=0.1, box_score_thresh=0.3)
    assert calls == []
    tr3 = core.retrace(tr2, rpn_nms_thresh=0.3)
    assert calls == ["box_head"]
    # an older trace still retraces from its own box-head outputs
    again = core.retrace(tr, box_nms_thresh=0.1, box_score_thresh=0.3)
    np.testing.assert_array_equal(again.detections.keep, tr2.detections.keep)
    assert tr3.params["rpn_nms_thresh"] == 0.3 and tr3.params["box_nms_thresh"] == 0.1


def test_bad_parameter_is_a_clear_error():
    model = core.load_model("seed-alexnet", weights="random")
    with pytest.raises(core.ModelError, match="box_nms_thresh: must be between 0 and 1"):
        core.trace(model, noise_image(64, 64), box_nms_thresh=1.5)
    with pytest.raises(core.ModelError, match="unknown parameter"):
        core.trace(model, noise_image(64, 64), nms=0.5)
