"""Mask R-CNN and Keypoint R-CNN heads: the trace's masks and keypoints equal torchvision's
model(images), also after a retrace; their overlays draw where torchvision computes."""

from pathlib import Path

import numpy as np
import pytest
import torch

import core
from core.models.params import SETTERS, model_params
from core.overlays import all_layers, layers_for
from core.overlays.layers import Heatmap, Lines, Points, Raster
from core.overlays.render import render
from core.tracing import heads
from core.tracing.summary import trace_summary
from tests.core.same import assert_same

from .conftest import noise_image

TINY = Path(__file__).with_name("tiny_models.py")


def model_output(model, image, **params):
    """torchvision's own model(images), with the test-time thresholds set as its constructor would."""
    m = model.module
    saved = model_params(m)
    for k, v in params.items():
        SETTERS[k](m, v)
    try:
        with torch.inference_mode():
            return m([torch.from_numpy(image).permute(2, 0, 1).float().div(255)])[0]
    finally:
        for k, v in saved.items():
            SETTERS[k](m, v)


def load(fn: str, **kw):
    return core.load_model(f"{TINY}:{fn}", weights="random:3", **kw)


@pytest.fixture(scope="module")
def mask_model():
    return load("tiny_mask_rcnn")


@pytest.fixture(scope="module")
def kp_model():
    return load("tiny_keypoint_rcnn")


def test_mask_stages_equal_model(mask_model):
    image = noise_image(120, 160, seed=4)
    tr = core.trace(mask_model, image)
    out = model_output(mask_model, image)
    assert_same(tr, out)
    m = tr.masks
    k = len(tr.final())
    assert m.pooled.shape == (k, 32, 14, 14) and m.logits.shape == (k, 3, 28, 28) and m.output_size == (14, 14)
    np.testing.assert_array_equal(m.labels, [d["label"] for d in tr.final()])
    np.testing.assert_array_equal(m.probs, torch.sigmoid(torch.from_numpy(m.logits))[np.arange(k), m.labels].numpy())
    np.testing.assert_array_equal(m.rois_image, tr.detections.final_boxes_image)
    assert m.area.sum() > 0 and set(np.unique(m.roi_level)) <= {0, 1, 2}
    # cropped storage is lossless and small: each crop lies inside its expanded box
    assert m.pasted.size < k * image.shape[0] * image.shape[1]


def test_mask_retrace_equals_model_with_changed_thresholds(mask_model):
    image = noise_image(120, 160, seed=5)
    tr = core.trace(mask_model, image)
    calls = []
    hook = mask_model.module.roi_heads.mask_head.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        for changed in (dict(box_nms_thresh=0.2, box_detections_per_img=5), dict(box_score_thresh=0.3),
                        dict(rpn_post_nms_top_n_test=40)):
            assert_same(core.retrace(tr, **changed), model_output(mask_model, image, **changed))
        # as many final detections, other ones: the heads must rerun on them
        a = core.retrace(tr, box_nms_thresh=0.2, box_detections_per_img=5)
        b = core.retrace(a, box_nms_thresh=0.7, box_detections_per_img=5)
        assert len(a.final()) == len(b.final()) == 5
        assert a.detections.proposal[a.detections.keep].tolist() != b.detections.proposal[b.detections.keep].tolist()
        assert_same(b, model_output(mask_model, image, box_nms_thresh=0.7, box_detections_per_img=5))
        n = len(calls)
        again = core.retrace(tr, box_nms_thresh=0.2, box_detections_per_img=5)  # the same final set again
        assert len(calls) == n + 1  # a new final set since the last retrace: the mask head reran
        same = core.retrace(again, box_nms_thresh=0.21)
        np.testing.assert_array_equal(same.detections.keep, again.detections.keep)
        assert len(calls) == n + 1  # same final detections: reused, not rerun
        assert same.masks is again.masks
    finally:
        hook.remove()


def test_keypoint_stages_equal_model(kp_model):
    image = noise_image(130, 110, seed=6)
    tr = core.trace(kp_model, image)
    assert_same(tr, model_output(kp_model, image))
    kp = tr.keypoints
    k = len(tr.final())
    assert kp.pooled.shape == (k, 32, 14, 14) and kp.heatmaps.shape == (k, 17, 56, 56)
    assert kp.names == tuple(f"keypoint {i}" for i in range(17)) and kp.skeleton == ()
    changed = dict(box_nms_thresh=0.3, box_detections_per_img=4)
    assert_same(core.retrace(tr, **changed), model_output(kp_model, image, **changed))


def test_json_carries_mask_area_and_keypoints(mask_model, kp_model):
    image = noise_image(100, 120, seed=7)
    j = trace_summary(core.trace(mask_model, image), "x.png")
    assert all(isinstance(d["mask_area"], int) for d in j["detections"])
    assert j["mask_head"] == {"pooled": [len(j["detections"]), 32, 14, 14], "logits": [len(j["detections"]), 3, 28, 28]}
    j = trace_summary(core.trace(kp_model, image), "x.png")
    assert all(len(d["keypoints"]) == 17 and len(d["keypoints"][0]) == 3 for d in j["detections"])
    assert "mask_area" not in j["detections"][0]


def test_masks_overlay_draws_torchvision_masks(mask_model):
    image = noise_image(120, 160, seed=4)
    tr = core.trace(mask_model, image)
    out = model_output(mask_model, image)
    st = layers_for(tr, "masks", {"opacity": 1.0, "probability": True, "detection": 1})
    raster = next(lay for lay in st.layers if isinstance(lay, Raster))
    canvas = render(np.zeros_like(image), [type(st)("masks", [raster])])
    drawn = canvas.any(2)
    np.testing.assert_array_equal(drawn, (out["masks"][:, 0] > 0.5).any(0).numpy())
    # detection 1's 28x28 probabilities cover its box, where paste_masks_in_image stretches them
    prob = next(lay for lay in st.layers if isinstance(lay, Heatmap))
    np.testing.assert_array_equal(prob.rect, out["boxes"][1].numpy())
    np.testing.assert_array_equal(prob.data, tr.masks.probs[1])
    # the extra stages come with all_layers only for models that have them
    assert [s.stage for s in all_layers(tr)][-1] == "masks"  # with the seven, for models that have masks
    plain = core.trace(core.load_model("demo", weights="random:1"), image)
    assert "masks" not in [s.stage for s in all_layers(plain)]
    assert layers_for(plain, "masks").layers == []


def test_keypoints_overlay_draws_torchvision_keypoints(kp_model):
    image = noise_image(130, 110, seed=6)
    kp_model.keypoint_names = list(heads.COCO_KEYPOINTS)  # as the preset's COCO weights name them
    try:
        tr = core.trace(kp_model, image)
    finally:
        kp_model.keypoint_names = None
    out = model_output(kp_model, image)
    assert tr.keypoints.skeleton == heads.COCO_SKELETON
    st = layers_for(tr, "keypoints", {"heatmap": 0, "detection": 0})
    pts = next(lay for lay in st.layers if isinstance(lay, Points))
    np.testing.assert_array_equal(pts.xy, out["keypoints"][0, :, :2].numpy())
    seg = next(lay for lay in st.layers if isinstance(lay, Lines))
    a, b = heads.COCO_SKELETON[0]
    np.testing.assert_array_equal(seg.segments[0], out["keypoints"][0, [a, b], :2].numpy().ravel())
    hm = next(lay for lay in st.layers if isinstance(lay, Heatmap))
    np.testing.assert_array_equal(hm.rect, out["boxes"][0].numpy())
    all_pts = next(lay for lay in layers_for(tr, "keypoints").layers if isinstance(lay, Points))
    assert len(all_pts.xy) == out["keypoints"].shape[0] * 17


def test_raster_renders_where_it_says():
    from core.overlays.layers import StageLayers

    canvas = np.zeros((40, 50, 3), np.uint8)
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[2:5, 3:9] = (200, 10, 10, 255)
    out = render(canvas, [StageLayers("x", [Raster("r", rgba, (5.0, 7.0, 25.0, 17.0), 1.0)])])
    np.testing.assert_array_equal(np.argwhere(out.any(2)).min(0), [7 + 2, 5 + 3])
    np.testing.assert_array_equal(np.argwhere(out.any(2)).max(0), [7 + 4, 5 + 8])
    assert tuple(out[10, 10]) == (200, 10, 10)
    half = render(canvas, [StageLayers("x", [Raster("r", rgba, (5.0, 7.0, 25.0, 17.0), 0.5)])])
    assert tuple(half[10, 10]) == (100, 5, 5)


def _points_average_to_roi_align(tr, head, pool, i, pts, bins):
    """The drawn sampling points of head row ``i``, bin by bin, average to what torchvision's roi_align
    reads from a feature map whose channels are its own x and y (bilinear of a linear field is exact),
    at the pool's own scale. False for a border box (roi_align clamps there)."""
    from torchvision.ops import roi_align

    lvl = int(head.roi_level[i])
    _, fh, fw = tr.features[head.pooled_levels[lvl]].data.shape
    scale = float(pool.scales[lvl])  # torchvision's, not the trace's
    x1, y1, x2, y2 = (head.rois[i] * scale).tolist()
    if not (0 <= x1 and 0 <= y1 and max(x2, x1 + 1) < fw - 1 and max(y2, y1 + 1) < fh - 1):
        return False
    f = np.zeros((1, 2, fh, fw), np.float32)
    f[0, 0], f[0, 1] = np.arange(fw)[None, :], np.arange(fh)[:, None]
    out = roi_align(torch.from_numpy(f), torch.tensor([[0, *head.rois[i].tolist()]], dtype=torch.float32),
                    output_size=head.output_size, spatial_scale=scale, sampling_ratio=pool.sampling_ratio,
                    aligned=False)[0].numpy()
    sy, sx = tr.meta.scale
    feat = pts * np.array([sx, sy], np.float32) * scale
    ph, pw = head.output_size
    assert len(bins) == ph * pw and len(pts) == ph * pw * pool.sampling_ratio ** 2
    for r in range(ph):
        for c in range(pw):
            b = bins[r * pw + c] * np.array([sx, sy, sx, sy], np.float32) * scale
            inside = (feat[:, 0] > b[0]) & (feat[:, 0] < b[2]) & (feat[:, 1] > b[1]) & (feat[:, 1] < b[3])
            assert inside.sum() == pool.sampling_ratio ** 2
            np.testing.assert_allclose(feat[inside].mean(0), out[:, r, c], atol=2e-3)
    return True


@pytest.mark.parametrize("stage", ["masks", "keypoints"])
def test_head_roialign_samples_are_drawn_where_torchvision_samples(mask_model, kp_model, stage):
    model = mask_model if stage == "masks" else kp_model
    tr = core.trace(model, noise_image(240, 300, seed=5))
    head = tr.masks if stage == "masks" else tr.keypoints
    pool = model.module.roi_heads.mask_roi_pool if stage == "masks" else model.module.roi_heads.keypoint_roi_pool
    assert len(head) > 0
    checked = 0
    for j in range(len(head)):
        st = layers_for(tr, stage, {"detection": j, "roialign": True})
        pts = next(lay for lay in st.layers if lay.name == f"{stage}.roialign.samples").xy
        bins = next(lay for lay in st.layers if lay.name == f"{stage}.roialign.bins").xyxy
        checked += _points_average_to_roi_align(tr, head, pool, j, pts, bins)
        assert f"detection {j}'s RoIAlign: {head.output_size[1]}x{head.output_size[0]} bins" in st.caption
    assert checked >= 1
    assert not any(".roialign." in lay.name for lay in layers_for(tr, stage).layers)  # off by default
