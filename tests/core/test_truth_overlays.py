"""Overlays of the truth and training stages: drawn where torchvision computes (its anchor
generator, box_iou and Matcher), captions with the model's own numbers, and the export draws them."""

import numpy as np
import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

import core
from core.colormaps import CLASS_COLOURS
from core.errors import LensError
from core.overlays import ALL_STAGES, all_layers, layers_for, merged
from core.overlays._truth_common import TRUTH_COLOUR
from core.overlays.layers import Boxes, Heatmap, Lines
from core.paths import DEMO_IMAGES
from core.tracing.types import EXTRA_STAGES, STAGES, TRAINING_STAGES
from core.training.targets import attach
from core.truth.beside import find_for_image


@pytest.fixture(scope="module")
def scene():
    """The shipped demo detector on demo scene 1 with its shipped truth, and torchvision's own
    anchors and GT boxes (model frame) for that image."""
    model = core.load_model("demo")
    path = DEMO_IMAGES / "scene_1.png"
    tr = core.trace(model, str(path))
    truth = find_for_image(path, tr.meta.original_size, model.class_names)
    tr = attach(tr, truth, seed=0)
    m = model.module
    with torch.no_grad():
        x = torch.from_numpy(tr.image).permute(2, 0, 1).float().div(255)
        images, targets = m.transform([x], [{"boxes": torch.from_numpy(truth.boxes),
                                             "labels": torch.from_numpy(truth.labels)}])
        feats = list(m.backbone(images.tensors).values())
        anchors = m.rpn.anchor_generator(images, feats)[0]
    return tr, anchors, targets[0]["boxes"], m


def layer(st, name):
    found = [lay for lay in st.layers if lay.name == name]
    assert len(found) == 1, [lay.name for lay in st.layers]
    return found[0]


def test_training_stages_are_registered_apart_from_the_seven():
    assert STAGES == ("input", "features", "anchors", "objectness", "proposals", "rois", "detections")
    assert TRAINING_STAGES == ("truth", "anchor_targets", "roi_targets", "loss")
    assert ALL_STAGES == STAGES + EXTRA_STAGES + TRAINING_STAGES  # masks, keypoints: models with those heads
    assert set(TRAINING_STAGES) <= set(merged(None))
    with pytest.raises(LensError, match="anchor_targets.show: use one of sampled, positive, all"):
        merged({"anchor_targets": {"show": "every"}})
    with pytest.raises(LensError, match="loss.mode"):
        merged({"loss": {"mode": "x"}})


def test_truth_stage_draws_the_annotated_boxes(scene):
    tr = scene[0]
    st = layers_for(tr, "truth")
    b = layer(st, "truth.boxes")
    np.testing.assert_array_equal(b.xyxy, tr.truth.boxes)
    np.testing.assert_array_equal(b.ids, np.arange(len(tr.truth)))
    assert b.labels == list(tr.truth.names) and not b.dashed.any()
    assert st.caption == "truth: 6 annotated objects from annotations.json (COCO), in original pixels"


def test_stages_without_truth_are_empty_with_a_caption(scene):
    tr = attach(scene[0], None)
    for stage in TRAINING_STAGES:
        st = layers_for(tr, stage)
        assert st.layers == [] and "no ground truth for this image" in st.caption


def test_anchor_targets_drawn_on_torchvisions_anchors_with_lines_to_the_matched_object(scene):
    tr, anchors, gt, m = scene
    iou = box_iou(gt, anchors)
    rpn = m.rpn.proposal_matcher
    matches = det_utils.Matcher(rpn.high_threshold, rpn.low_threshold, allow_low_quality_matches=True)(iou)
    positive = torch.where(matches >= 0)[0].numpy()
    st = layers_for(tr, "anchor_targets", {"show": "positive"})
    pos = layer(st, "anchor_targets.positive")
    np.testing.assert_array_equal(pos.ids, positive)
    np.testing.assert_allclose(pos.xyxy, tr.meta.to_image(anchors[positive].numpy()), rtol=1e-6, atol=1e-4)
    labels = [f"IoU {v:.2f}" for v in iou.max(0).values[positive].tolist()]  # says what the number is
    assert [" ".join(lab.split()[:2]) for lab in pos.labels] == labels
    lines = layer(st, "anchor_targets.matched")
    assert isinstance(lines, Lines)
    gt_image = tr.truth.boxes[matches[positive].numpy()]
    np.testing.assert_allclose(lines.segments[:, 2:], (gt_image[:, :2] + gt_image[:, 2:]) / 2, atol=1e-3)
    np.testing.assert_allclose(lines.segments[:, :2], (pos.xyxy[:, :2] + pos.xyxy[:, 2:]) / 2, atol=1e-4)
    sampled = tr.training.rpn.sampled
    np.testing.assert_array_equal(pos.dashed, ~sampled[positive])
    cap = st.caption
    assert cap.startswith("anchor targets: IoU >= 0.7 positive, < 0.3 negative, 256 sampled, 50% positive: ")
    # the minibatch: sampled positives and negatives only
    st = layers_for(tr, "anchor_targets")
    neg = layer(st, "anchor_targets.negative")
    assert sampled[neg.ids].all() and (matches[neg.ids] == -1).all()
    assert len(neg.ids) + len(layer(st, "anchor_targets.positive").ids) == sampled.sum() == 256


def test_anchor_targets_filters_by_level_and_object(scene):
    tr, anchors, gt, _ = scene
    lvl = tr.anchors[1]
    st = layers_for(tr, "anchor_targets", {"level": lvl.name, "show": "all"})
    ids = np.concatenate([lay.ids for lay in st.layers if isinstance(lay, Boxes) and lay.ids is not None])
    assert len(ids) and ((ids >= lvl.offset) & (ids < lvl.offset + lvl.count)).all()
    assert "showing level 1" in st.caption
    best = box_iou(gt, anchors).max(0).indices.numpy()
    for g in range(len(tr.truth)):
        st = layers_for(tr, "anchor_targets", {"gt": g, "show": "all"})
        ids = np.concatenate([lay.ids for lay in st.layers if isinstance(lay, Boxes)] or [np.zeros(0, int)])
        assert (best[ids] == g).all()
    with pytest.raises(LensError, match="gt 9: no such object; this image has 6"):
        layers_for(tr, "anchor_targets", {"gt": 9})


def test_roi_targets_sampled_rois_labelled_by_torchvisions_matcher(scene):
    tr, _, gt, m = scene
    r = tr.training.roi
    rh = m.roi_heads.proposal_matcher
    iou = box_iou(gt, torch.from_numpy(r.boxes))
    idx = det_utils.Matcher(rh.high_threshold, rh.low_threshold, allow_low_quality_matches=False)(iou)
    st = layers_for(tr, "roi_targets")
    pos = layer(st, "roi_targets.positive")
    gts = layer(st, "roi_targets.gt")
    bg = layer(st, "roi_targets.background")
    drawn = np.concatenate([pos.ids, gts.ids, bg.ids])
    np.testing.assert_array_equal(np.sort(drawn), r.sampled)
    assert (idx[pos.ids] >= 0).all() and (idx[bg.ids] == -1).all()
    assert gts.ids.min() >= r.num_proposals and all(lab.startswith("GT ") for lab in gts.labels)
    st = layers_for(tr, "roi_targets", {"show": "positive"})  # every positive, sampled (solid) or not (dashed)
    gts = layer(st, "roi_targets.gt")
    np.testing.assert_array_equal(gts.ids, np.arange(r.num_proposals, len(r.boxes)))
    np.testing.assert_allclose(gts.xyxy, tr.truth.boxes, atol=1e-3)  # the appended GT, drawn where the truth is
    np.testing.assert_array_equal(gts.dashed, ~np.isin(gts.ids, r.sampled))
    pos = layer(st, "roi_targets.positive")
    np.testing.assert_array_equal(pos.ids, np.nonzero((idx[:r.num_proposals] >= 0).numpy())[0])
    assert "IoU >= 0.5 positive, < 0.5 background, 128 sampled, 25% positive" in st.caption


def test_loss_heatmap_holds_each_sampled_anchors_share_in_its_cell(scene):
    tr, anchors, _, _ = scene
    a = tr.training.rpn
    total = 0.0
    for lvl in tr.anchors:
        st = layers_for(tr, "loss", {"level": lvl.name})
        hm = layer(st, f"loss.objectness.{lvl.name}")
        assert isinstance(hm, Heatmap)
        x0, y0, x1, y1 = hm.rect
        h, w = hm.data.shape
        ids = np.nonzero(a.sampled & (a.loss_objectness > 0))[0]
        ids = ids[(ids >= lvl.offset) & (ids < lvl.offset + lvl.count)]
        centre = tr.meta.to_image(anchors[ids].numpy())  # torchvision's anchors, original pixels
        cx, cy = (centre[:, 0] + centre[:, 2]) / 2, (centre[:, 1] + centre[:, 3]) / 2
        col = np.floor((cx - x0) / (x1 - x0) * w).astype(int)
        row = np.floor((cy - y0) / (y1 - y0) * h).astype(int)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        expected = np.zeros((h, w))
        np.add.at(expected, (row[inside], col[inside]), a.loss_objectness[ids[inside]])
        np.testing.assert_allclose(hm.data, expected, rtol=1e-5, atol=1e-12)
        total += float(a.loss_objectness[ids].sum())
    assert total == pytest.approx(tr.training.losses["loss_objectness"], rel=1e-5)
    st = layers_for(tr, "loss")
    rois = layer(st, "loss.rois")
    r = tr.training.roi
    cost = r.loss_classifier + r.loss_box_reg
    rows = np.searchsorted(r.sampled, rois.ids)
    assert (np.diff(cost[rows]) <= 0).all() and cost[rows[0]] == cost.max()
    assert st.caption.startswith(f"loss {sum(tr.training.losses.values()):.4g} = objectness")


def test_export_draws_the_new_stages(scene, tmp_path):
    from core.overlays.export import parse_overlays, render_trace

    tr = scene[0]
    assert parse_overlays("training") == list(TRAINING_STAGES)
    assert parse_overlays("detections,truth") == ["detections", "truth"]
    assert parse_overlays("all,loss") == [*STAGES, *EXTRA_STAGES, "loss"]  # masks, keypoints: drawn where they exist
    with pytest.raises(LensError, match="unknown overlay"):
        parse_overlays("targets")
    black = type(tr)(**{**tr.__dict__, "image": np.zeros_like(tr.image)})
    rgb, drawn, _ = render_trace(black, ["truth"], legend=False)
    x1, y1, x2, y2 = tr.truth.boxes[0].astype(int)
    edge = rgb[(y1 + y2) // 2, x1 - 1:x1 + 2]
    assert (edge == TRUTH_COLOUR).all(1).any()  # the truth's own colour on its left edge
    white = type(tr)(**{**tr.__dict__, "image": np.full_like(tr.image, 255)})
    on_white, _, _ = render_trace(white, ["truth"], legend=False)  # a white box stays visible on white
    row = on_white[(y1 + y2) // 2, x1 - 4:x1 + 5].astype(int)
    assert (row.max(1) < 120).any() and (row == TRUTH_COLOUR).all(1).any()  # the dark halo beside the white line
    assert TRUTH_COLOUR not in CLASS_COLOURS
    rgb, drawn, _ = render_trace(black, ["anchor_targets"], {"anchor_targets": {"show": "positive"}}, legend=False)
    lines = layer(drawn[0], "anchor_targets.matched")
    from core.overlays.layers import StageLayers
    from core.overlays.render import render

    only = render(black.image, [StageLayers("x", [lines])])  # the lines alone, on black
    k = int(np.argmax(np.hypot(*(lines.segments[:, 2:] - lines.segments[:, :2]).T)))  # the longest line
    mid = ((lines.segments[k, :2] + lines.segments[k, 2:]) / 2).round().astype(int)
    assert only[mid[1] - 1:mid[1] + 2, mid[0] - 1:mid[0] + 2].max() > 100  # the line passes there
    assert len(all_layers(tr, list(ALL_STAGES))) == len(ALL_STAGES) - len(EXTRA_STAGES)  # no mask/keypoint heads
