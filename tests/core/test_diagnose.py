"""Why was it missed: per-object verdicts and per-detection TIDE types, checked against torchvision's
own modules and pycocotools' matching, on the demo detector and generated scenes with known truth."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou, clip_boxes_to_image

import core
from core.analysis.diagnose import anchor_evidence, diagnose, match, tide_errors
from core.analysis.verdicts import ERRORS, VERDICTS
from core.demo.shapes import CLASSES, make_scene, scene_rng
from core.paths import DEMO_IMAGES
from core.tracing.types import KEPT, OVER_TOP_N, SUPPRESSED
from core.truth.types import Truth


@pytest.fixture(scope="module")
def demo():
    return core.load_model("demo")


def scene_truth(s) -> Truth:
    return Truth(s.boxes, [CLASSES[int(k) - 1] for k in s.labels], s.labels)


def shipped():
    """The shipped demo scenes with their truth."""
    out = []
    for sc in json.loads((DEMO_IMAGES / "scenes.json").read_text()):
        names = [o["class"] for o in sc["objects"]]
        out.append((DEMO_IMAGES / sc["file"], Truth(np.array([o["box"] for o in sc["objects"]], np.float32), names,
                                                     [CLASSES.index(n) + 1 for n in names])))
    return out


def covering_rois(tr, truth) -> np.ndarray:
    """[N] bool, computed here without core.analysis.diagnose: a proposal after NMS (what the box head sees)
    has IoU >= 0.5 with the object, truth resized as torchvision's transform resizes targets."""
    gt = resize_boxes(torch.from_numpy(truth.boxes), tr.meta.original_size, tr.meta.resized_size)
    rois = torch.from_numpy(tr.box_head.rois)
    if rois.shape[0] == 0 or gt.shape[0] == 0:
        return np.zeros(len(truth), bool)
    return (box_iou(gt, rois) >= 0.5).any(1).numpy()


def perturbed(tr, s, rng) -> Truth:
    """The scene's objects plus objects made to be lost somewhere: duplicates (taken), relabelled
    ones (misclassified), tiny ones (missed), and boxes of the trace's own candidates, RoIs and
    detections, jittered, with random or winning labels."""
    boxes = [b for b in s.boxes]
    labels = [int(k) for k in s.labels]
    h, w = tr.meta.original_size
    if len(boxes):
        k = int(rng.integers(len(boxes)))
        boxes.append(boxes[k] + rng.normal(0, 1.5, 4).astype(np.float32))
        labels.append(labels[k])
        k = int(rng.integers(len(boxes)))
        boxes.append(boxes[k].copy())
        labels.append(labels[k] % 3 + 1)
    x, y = rng.uniform(0, w - 6), rng.uniform(0, h - 6)
    boxes.append(np.array([x, y, x + 4, y + 4], np.float32))
    labels.append(int(rng.integers(1, 4)))
    sources = [tr.proposals.boxes_image, tr.box_head.rois_image, tr.detections.boxes_image]
    for src in sources:
        if len(src):
            for k in rng.choice(len(src), size=min(3, len(src)), replace=False):
                b = src[int(k)] + rng.normal(0, 2.0, 4).astype(np.float32)
                if b[2] - b[0] > 2 and b[3] - b[1] > 2:
                    boxes.append(b)
                    labels.append(int(rng.integers(1, 4)))
    for r in rng.choice(len(tr.box_head.rois), size=min(3, len(tr.box_head.rois)), replace=False):
        boxes.append(tr.box_head.rois_image[int(r)].copy())
        labels.append(int(np.argmax(tr.box_head.probs[int(r), 1:])) + 1)
    b = np.array(boxes, np.float32).reshape(-1, 4)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    keep = (b[:, 2] - b[:, 0] > 1) & (b[:, 3] - b[:, 1] > 1)
    lab = np.array(labels)[keep]
    return Truth(b[keep], [CLASSES[k - 1] for k in lab], lab)


def random_params(rng) -> dict:
    return dict(rpn_pre_nms_top_n_test=int(rng.choice([1, 3, 20, 100, 500])),
                rpn_post_nms_top_n_test=int(rng.choice([0, 1, 5, 40, 300])),
                rpn_nms_thresh=float(rng.choice([0.0, 0.1, 0.3, 0.7, 1.0])),
                rpn_score_thresh=float(rng.choice([0.0, 0.0, 0.5, 0.99, 1.0])),
                box_score_thresh=float(rng.choice([0.0, 0.05, 0.5, 0.9, 1.0])),
                box_nms_thresh=float(rng.choice([0.0, 0.01, 0.2, 0.5, 1.0])),
                box_detections_per_img=int(rng.choice([1, 2, 5, 50])))


def test_rpn_prefix_exactly_when_no_proposal_covers(demo):
    """The invariant, as a property over generated scenes x thresholds x truth made to be lost at
    every stage; each rule's premise is checked on the way, and every verdict must turn up."""
    rng = np.random.default_rng(11)
    seen = {v: 0 for v in VERDICTS}
    for i in range(8):
        s = make_scene(scene_rng(31, i))
        base = core.trace(demo, s.image)
        truth = perturbed(base, s, rng)
        ev = anchor_evidence(base, truth)
        for _ in range(7):
            p = random_params(rng)
            tr = core.retrace(base, **p)
            dg = diagnose(tr, truth, ev)
            covered = covering_rois(tr, truth)
            assert len(dg.objects) == len(truth)
            for o in dg.objects:
                assert o.verdict in VERDICTS
                seen[o.verdict] += 1
                if o.verdict != "detected":
                    assert o.verdict.startswith("rpn_") == (not covered[o.index]), (o, p)
                    assert o.verdict.startswith("box_") == bool(covered[o.index])
                    assert o.detection is None
                else:
                    d = tr.final()[o.detection]
                    assert d["label"] == o.label and o.detection_iou >= 0.5
                if o.verdict == "rpn_suppressed":
                    assert o.candidate_status == "suppressed" and o.suppressor >= 0
                    assert o.suppress_iou > p["rpn_nms_thresh"] and o.suppressor_object_iou < 0.5
                    assert tr.proposals.status[o.suppressor] in (KEPT, OVER_TOP_N)
                if o.verdict == "box_suppressed":
                    assert o.det_suppress_iou > p["box_nms_thresh"] and o.det_suppressor_object_iou < 0.5
                if o.verdict == "box_taken":
                    assert o.taken_by is not None and o.taken_by != o.index
                    assert dg.objects[o.taken_by].detection == o.taken_detection
                if o.verdict == "box_cut" and o.cut == "detections_per_img":
                    assert o.det_candidate_rank > p["box_detections_per_img"]
                if o.verdict == "rpn_cut" and o.cut == "post_nms_top_n":
                    assert o.candidate_nms_rank > p["rpn_post_nms_top_n_test"]
                assert isinstance(dg.explain(o.index), str)
    missing = [v for v, n in seen.items() if n == 0]
    assert not missing, seen


def test_live_retrace_gives_the_verdicts_of_a_fresh_trace(demo):
    path, truth = shipped()[0]
    base = core.trace(demo, str(path))
    ev = anchor_evidence(base, truth)
    for p in (dict(box_detections_per_img=1), dict(rpn_post_nms_top_n_test=2, box_nms_thresh=0.0),
              dict(rpn_pre_nms_top_n_test=1)):
        live = diagnose(core.retrace(base, **p), truth, ev)
        fresh_tr = core.trace(demo, str(path), **p)
        fresh = diagnose(fresh_tr, truth, anchor_evidence(fresh_tr, truth))
        assert [o.to_json() for o in live.objects] == [o.to_json() for o in fresh.objects]
        assert [d.to_json() for d in live.detections] == [d.to_json() for d in fresh.detections]
        assert live.counts()["detected"] < len(truth)


def test_anchor_evidence_equals_torchvisions_anchor_targets(demo):
    """Positive anchors per object = what rpn.assign_targets_to_anchors labels positive for it,
    with the targets resized by the model's own transform; the best anchor IoU is recomputed from
    the trace's numpy anchors."""
    m = demo.module
    for i in range(3):
        s = make_scene(scene_rng(5, i))
        truth = scene_truth(s)
        tr = core.trace(demo, s.image)
        ev = anchor_evidence(tr, truth)
        with torch.inference_mode():
            x = torch.from_numpy(s.image).permute(2, 0, 1).float().div(255)
            images, targets = m.transform([x], [{"boxes": torch.from_numpy(s.boxes).clone(),
                                                 "labels": torch.from_numpy(s.labels)}])
            feats = list(m.backbone(images.tensors).values())
            anchors = m.rpn.anchor_generator(images, feats)
            labels, matched = m.rpn.assign_targets_to_anchors(anchors, targets)
        pos = labels[0] == 1
        expected = [int((pos & (matched[0] == targets[0]["boxes"][k]).all(1)).sum()) for k in range(len(truth))]
        assert ev.positives.tolist() == expected
        assert sum(expected) == int(pos.sum()) > 0
        np_anchors = np.concatenate([a.anchors() for a in tr.anchors])
        np.testing.assert_allclose(np_anchors, anchors[0].numpy(), atol=1e-3)
        gt = targets[0]["boxes"].numpy()
        ix = np.clip(np.minimum(gt[:, None, 2], np_anchors[None, :, 2]) - np.maximum(gt[:, None, 0], np_anchors[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(gt[:, None, 3], np_anchors[None, :, 3]) - np.maximum(gt[:, None, 1], np_anchors[None, :, 1]), 0, None)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        inter = ix * iy
        iou = inter / (area(gt)[:, None] + area(np_anchors)[None, :] - inter)
        np.testing.assert_allclose(ev.best_anchor_iou, iou.max(1), atol=1e-5)
        for k, lst in enumerate(ev.positive_anchors):
            assert len(lst) == min(expected[k], 64) and bool(pos[torch.from_numpy(lst)].all())


def test_anchor_evidence_equals_the_full_iou_matrices(demo):
    """anchor_evidence evaluates box_iou and the RPN Matcher only where boxes overlap an object;
    everything it reports equals what the full [objects, anchors] and [objects, decoded boxes]
    matrices give: best IoU and its index (the first box when none overlaps), the Matcher's positives
    in IoU order, the covering decoded boxes. With objects in the corners and, in a second truth, a
    degenerate one that overlaps nothing (IoU 0 with all: the full-matrix path)."""
    m = demo.module

    def full(tr, boxes):
        state = tr._state[0]
        gt = resize_boxes(torch.from_numpy(boxes), tr.meta.original_size, tr.meta.resized_size)
        with torch.inference_mode():
            images = ImageList(torch.zeros(1, 3, *tr.meta.batch_size), list(state.image_sizes))
            anchors = m.rpn.anchor_generator(images, list(state.features.values()))[0]
            q = box_iou(gt, anchors).nan_to_num_(0.0)
            matched = m.rpn.proposal_matcher(q.clone())
            dec = box_iou(gt, clip_boxes_to_image(state.proposals, state.image_sizes[0])).nan_to_num_(0.0)
        return q, matched, dec

    paths = 0
    for i in range(3):
        s = make_scene(scene_rng(11, i))
        tr = core.trace(demo, s.image)
        h, w = tr.meta.original_size
        corners = np.array([[0, 0, 1, 1], [w - 2, h - 2, w - 1, h - 1], [0, 5, 3, 30], [10, 10, 60, 40]], np.float32)
        nothing = np.array([[w // 2, h // 2, w // 2, h // 2 + 30]], np.float32)  # zero width: IoU 0 with all
        for boxes in (np.concatenate([s.boxes.reshape(-1, 4), corners]),
                      np.concatenate([s.boxes.reshape(-1, 4), corners, nothing])):
            ev = anchor_evidence(tr, Truth(boxes, ["circle"] * len(boxes), [1] * len(boxes)))
            q, matched, dec = full(tr, boxes)
            v, k = q.max(1)
            np.testing.assert_array_equal(ev.best_anchor_iou, v.numpy())
            np.testing.assert_array_equal(ev.best_anchor, k.numpy())
            paths += bool((v == 0).any())
            v, k = dec.max(1)
            np.testing.assert_array_equal(ev.decoded_best_iou, v.numpy())
            np.testing.assert_array_equal(ev.decoded_best, k.numpy())
            for o in range(len(boxes)):
                np.testing.assert_array_equal(ev.covering[o], torch.nonzero(dec[o] >= 0.5).flatten().numpy())
                idx = torch.nonzero(matched == o).flatten()
                ref = idx[torch.argsort(q[o, idx], descending=True, stable=True)][:64]
                np.testing.assert_array_equal(ev.positive_anchors[o], ref.numpy())
                assert ev.positives[o] == len(idx)
        alone = anchor_evidence(tr, Truth(nothing, ["circle"], [1]))  # overlapping nothing, and alone
        assert (alone.decoded_best[0], alone.best_anchor[0], alone.positives[0]) == (0, 0, int((full(tr, nothing)[1] == 0).sum()))
    assert paths == 3  # the full-matrix path ran once per scene, the overlap path once


def test_matching_equals_pycocotools(demo):
    """Each object's detection = the one COCOeval's evaluateImg matches at IoU 0.5 (its own greedy
    matching, per category, by descending score), also where two truth boxes are exactly the same
    (pycocotools gives the detection to the later one) and where an object is a crowd region (it
    takes no detection from an object and gets no verdict)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    checked = duplicates = crowds = 0
    for i in range(6):
        s = make_scene(scene_rng(77, i))
        truth = perturbed(core.trace(demo, s.image), s, np.random.default_rng(i))
        n = len(truth)
        crowd = np.zeros(n + 1, bool)
        if i % 2 == 1 and n > 2:
            crowd[1] = True  # a crowd region where an object was
        # the first object twice, exactly: the same box and class
        truth = Truth(np.concatenate([truth.boxes, truth.boxes[:1]]), (*truth.names, truth.names[0]),
                      np.concatenate([truth.labels, truth.labels[:1]]), crowd=crowd)
        tr = core.trace(demo, s.image, box_score_thresh=0.05)
        dg = diagnose(tr, truth)
        fin = tr.final()
        gt = COCO()
        gt.dataset = {"images": [{"id": 1, "height": s.image.shape[0], "width": s.image.shape[1]}],
                      "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)],
                      "annotations": [{"id": k + 1, "image_id": 1, "category_id": int(truth.labels[k]),
                                       "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                       "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": int(crowd[k])}
                                      for k, b in enumerate(truth.boxes)]}
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt = gt.loadRes([{"image_id": 1, "category_id": d["label"], "score": d["score"],
                              "bbox": [d["box"][0], d["box"][1], d["box"][2] - d["box"][0], d["box"][3] - d["box"][1]]}
                             for d in fin])
            ev = COCOeval(gt, dt, "bbox")
            ev.params.iouThrs = np.array([0.5])
            ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [100]
            ev.evaluate()
        expected = {}
        for e in ev.evalImgs:
            if e is None:
                continue
            for dt_id, gt_id in zip(e["dtIds"], e["dtMatches"][0]):
                if gt_id > 0 and not crowd[int(gt_id) - 1]:  # a match to a crowd region is COCO's "ignore"
                    expected[int(gt_id) - 1] = int(dt_id) - 1  # loadRes numbers detections from 1 in order
        got = {o.index: o.detection for o in dg.objects if o.detection is not None}
        assert got == expected
        for d in dg.detections:
            assert (d.error == "tp") == (d.index in expected.values())
        assert all(dg.objects[k].verdict is None for k in np.nonzero(crowd)[0])
        checked += len(expected)
        duplicates += n in expected  # the later of the two identical boxes took the detection
        assert 0 not in expected or n not in expected
        crowds += int(crowd.any())
    assert checked > 20 and duplicates >= 4 and crowds >= 2


def test_tide_types_follow_tides_rules_and_order():
    # objects: 0 class 1, 1 class 2, 2 class 1
    gt_labels = np.array([1, 2, 1])
    rows = {  # detection: (label, iou with objects 0, 1, 2), expected type, object
        "tp": (1, [0.9, 0.0, 0.0], 0),
        "dupe": (1, [0.8, 0.0, 0.0], 0),
        "loc": (1, [0.3, 0.0, 0.0], 0),
        "loc before cls": (1, [0.0, 0.9, 0.2], 2),
        "cls": (1, [0.0, 0.7, 0.05], 1),
        "bkg": (1, [0.05, 0.1, 0.0], None),
        "both": (1, [0.05, 0.3, 0.0], 1),
    }
    keys = list(rows)
    iou = np.array([rows[k][1] for k in keys], np.float32).T
    det_labels = np.array([rows[k][0] for k in keys])
    scores = np.linspace(1.0, 0.5, len(keys))
    gt_det, det_gt = match(iou, gt_labels, det_labels, scores)
    assert gt_det.tolist() == [0, -1, -1] and det_gt.tolist() == [0, -1, -1, -1, -1, -1, -1]
    got = tide_errors(iou, gt_labels, det_labels, det_gt)
    want = [("tp", 0), ("dupe", 0), ("loc", 0), ("loc", 2), ("cls", 1), ("bkg", None), ("both", 1)]
    assert got == want
    assert {t for t, _ in got} == set(ERRORS)
    # no objects at all: every detection is background
    assert tide_errors(np.zeros((0, 2)), np.zeros(0, int), np.array([1, 2]), np.full(2, -1)) == [("bkg", None)] * 2
    # a lower-scoring detection with a higher IoU does not steal the match (greedy by score)
    gt_det, det_gt = match(np.array([[0.6, 0.95]]), np.array([1]), np.array([1, 1]), np.array([0.9, 0.8]))
    assert det_gt.tolist() == [0, -1]


def test_shipped_demo_scenes_get_verdicts_with_evidence(demo):
    counts = {v: 0 for v in VERDICTS}
    for path, truth in shipped():
        tr = core.trace(demo, str(path))
        dg = diagnose(tr, truth, anchor_evidence(tr, truth))
        for o in dg.objects:
            counts[o.verdict] += 1
            assert o.best_anchor_iou > 0.3 and o.anchor_positives >= 1
            if o.verdict == "detected":
                assert dg.detections[o.detection].error == "tp" and dg.detections[o.detection].truth == o.index
    assert counts["detected"] >= 20 and sum(counts.values()) == 24, counts


def _by(dg, verdict):
    return [o for o in dg.objects if o.verdict == verdict]


def test_forced_rpn_verdicts(demo):
    path, truth = shipped()[0]
    tr = core.trace(demo, str(path))
    ev = anchor_evidence(tr, truth)
    # every object's covering RPN boxes fall to a threshold: the filter is named
    dg = diagnose(core.retrace(tr, rpn_score_thresh=1.0), truth, ev)
    assert {(o.verdict, o.cut) for o in dg.objects} == {("rpn_cut", "score")}
    assert "under the RPN score threshold 1.0" in dg.explain(0)
    dg = diagnose(core.retrace(tr, rpn_post_nms_top_n_test=1), truth, ev)
    cut = _by(dg, "rpn_cut")
    assert len(cut) >= len(truth) - 1 and all(o.cut == "post_nms_top_n" and o.candidate_nms_rank > 1 for o in cut)
    dg = diagnose(core.retrace(tr, rpn_pre_nms_top_n_test=1), truth, ev)
    pre = [o for o in _by(dg, "rpn_cut") if o.cut == "pre_nms_top_n"]
    assert pre and all(o.decoded_rank > 1 and o.decoded_iou >= 0.5 for o in pre)
    assert "past the pre-NMS top 1" in dg.explain(pre[0].index)
    # a 4-pixel object: no decoded RPN box of any anchor covers it (checked with the model's own decode)
    tiny = Truth(np.array([[5, 5, 9, 9]], np.float32), ["circle"], [1])
    dg = diagnose(tr, tiny, anchor_evidence(tr, tiny))
    assert dg.objects[0].verdict == "rpn_missed"
    state = tr._state[0]
    boxes = clip_boxes_to_image(state.proposals, state.image_sizes[0])
    gt = resize_boxes(torch.from_numpy(tiny.boxes), tr.meta.original_size, tr.meta.resized_size)
    assert float(box_iou(gt, boxes).max()) < 0.5
    assert dg.objects[0].best_decoded_iou == pytest.approx(float(box_iou(gt, boxes).max()), abs=1e-6)


def test_forced_rpn_suppressed_names_its_suppressor(demo):
    """A truth box made from a candidate that RPN NMS removed, where nothing kept covers it."""
    s = make_scene(scene_rng(31, 1))
    tr = core.trace(demo, s.image, rpn_nms_thresh=0.3)
    P = tr.proposals
    rois = torch.from_numpy(tr.box_head.rois)
    found = 0
    for k in np.nonzero(P.status == SUPPRESSED)[0][:300]:
        gt_model = torch.from_numpy(P.boxes[k:k + 1])
        iou = box_iou(gt_model, torch.from_numpy(P.boxes))[0].numpy()
        cov = iou >= 0.5
        if (box_iou(gt_model, rois) >= 0.5).any() or np.isin(P.status[cov], [KEPT, OVER_TOP_N]).any():
            continue
        truth = Truth(tr.meta.to_image(P.boxes[k:k + 1]), ["circle"], [1])
        dg = diagnose(tr, truth, anchor_evidence(tr, truth))
        o = dg.objects[0]
        assert o.verdict == "rpn_suppressed", dg.explain(0)
        assert P.status[o.candidate] == SUPPRESSED and o.suppressor == P.suppressed_by[o.candidate]
        assert o.suppress_iou > 0.3 and o.suppressor_object_iou < 0.5
        text = dg.explain(0)
        assert text.startswith(f"suppressed at RPN NMS by proposal {o.suppressor}, IoU {o.suppress_iou:.2f}, "
                               f"objectness {P.scores[o.suppressor]:.2f} vs {P.scores[o.candidate]:.2f}")
        found += 1
        if found == 3:
            break
    assert found == 3


def test_forced_box_verdicts(demo):
    scenes = shipped()
    path, truth = scenes[0]
    tr = core.trace(demo, str(path))
    ev = anchor_evidence(tr, truth)
    dg = diagnose(core.retrace(tr, box_detections_per_img=1), truth, ev)
    assert len(_by(dg, "detected")) == 1 and len(_by(dg, "box_cut")) == len(truth) - 1
    assert "past the 1 detections per image" in dg.explain(_by(dg, "box_cut")[0].index)
    dg = diagnose(core.retrace(tr, box_score_thresh=1.0), truth, ev)
    assert {o.verdict for o in dg.objects} <= {"box_low_score", "box_misclassified"} and _by(dg, "box_low_score")
    # a duplicate annotation: one copy is detected, the other finds its detection taken
    dup = Truth(np.concatenate([truth.boxes, truth.boxes[:1] + 0.5]), [*truth.names, truth.names[0]],
                np.concatenate([truth.labels, truth.labels[:1]]))
    dg = diagnose(tr, dup, anchor_evidence(tr, dup))
    taken = _by(dg, "box_taken")
    assert len(taken) == 1 and taken[0].taken_by in (0, len(truth)) and taken[0].index in (0, len(truth))
    # a wrong label: the covering RoIs call it what it is
    wrong = Truth(truth.boxes[:1], ["x"], [truth.labels[0] % 3 + 1])
    dg = diagnose(tr, wrong, anchor_evidence(tr, wrong))
    o = dg.objects[0]
    assert o.verdict == "box_misclassified" and o.winner == truth.labels[0]
    assert f"calls it {CLASSES[truth.labels[0] - 1]}" in dg.explain(0)
    # scene 3 holds two circles close together: box NMS at IoU 0 removes one with the other
    path, truth = scenes[2]
    tr = core.trace(demo, str(path), box_nms_thresh=0.0)
    dg = diagnose(tr, truth, anchor_evidence(tr, truth))
    sup = _by(dg, "box_suppressed")
    assert len(sup) == 1
    o = sup[0]
    other = dg.objects[dg.detections[o.det_suppressor_final].truth]
    assert other.verdict == "detected" and other.detection == o.det_suppressor_final
    assert f"suppressed at box NMS by detection {o.det_suppressor_final}" in dg.explain(o.index)


def test_forced_box_mislocalized(demo):
    """A loose RoI as the truth: its class scores on it, but the regression pulls every box of that
    class away from it (checked on the trace's own refined boxes)."""
    found = 0
    for i in range(6):
        s = make_scene(scene_rng(31, i))
        tr = core.trace(demo, s.image, box_score_thresh=0.05)
        H, D = tr.box_head, tr.detections
        for r in range(len(H.rois)):
            c = int(np.argmax(H.probs[r, 1:])) + 1
            if H.probs[r, c] <= tr.params["box_score_thresh"]:
                continue
            t = torch.from_numpy(H.rois_image[r:r + 1])
            if (box_iou(t, torch.from_numpy(D.boxes_image[D.label == c])) >= 0.5).any():
                continue
            truth = Truth(H.rois_image[r:r + 1], [CLASSES[c - 1]], [c])
            dg = diagnose(tr, truth)
            o = dg.objects[0]
            assert o.verdict == "box_mislocalized", dg.explain(0)
            assert o.best_refined_iou < 0.5 and r in o.rois
            found += 1
            break
    assert found >= 2


def test_edge_cases(demo):
    s = make_scene(scene_rng(31, 2))
    tr = core.trace(demo, s.image)
    # no objects; an object of a class the model lacks; no proposals at all
    dg = diagnose(tr, Truth(np.zeros((0, 4)), [], []))
    assert dg.objects == () and {d.error for d in dg.detections} == {"bkg"}
    t = Truth(np.array([[10, 10, 60, 60]], np.float32), ["person"], [-1])
    dg = diagnose(tr, t, anchor_evidence(tr, t))
    assert dg.objects[0].verdict is None and "not a class of this model" in dg.explain(0)
    truth = scene_truth(s)
    crowd = Truth(truth.boxes, truth.names, truth.labels, crowd=np.arange(len(truth)) == 0)
    dg = diagnose(tr, crowd)
    assert dg.objects[0].verdict is None and "crowd region" in dg.explain(0)
    assert all(d.truth != 0 for d in dg.detections) and dg.objects[1].verdict == "detected"
    truth = scene_truth(s)
    dg = diagnose(core.retrace(tr, rpn_post_nms_top_n_test=0), truth, anchor_evidence(tr, truth))
    assert {(o.verdict, o.cut) for o in dg.objects} == {("rpn_cut", "post_nms_top_n")} and dg.detections == ()
    # a trace without its tensors (as the GUI holds it): no anchor evidence, verdicts still given
    from core.engine.server import portable

    dg = diagnose(portable(tr), truth)
    assert all(o.verdict in VERDICTS for o in dg.objects) and not dg.anchors_known


def test_random_weights_model_small_image():
    model = core.load_model("seed-alexnet", weights="random:3", box_score_thresh=0.0)
    img = np.random.default_rng(0).integers(0, 255, (120, 150, 3), dtype=np.uint8)
    tr = core.trace(model, img)
    truth = Truth(np.array([[10, 10, 80, 70], [60, 20, 140, 110]], np.float32), ["a", "b"], [1, 2])
    ev = anchor_evidence(tr, truth)
    dg = diagnose(tr, truth, ev)
    covered = covering_rois(tr, truth)
    for o in dg.objects:
        assert o.verdict in VERDICTS
        if o.verdict != "detected":
            assert o.verdict.startswith("rpn_") == (not covered[o.index])
    assert len(dg.detections) == len(tr.final())


def torchvision_roi_probs(model, img: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """(proposals [K, 4], probs [K, classes], resized size, original size) from torchvision's own
    modules, without core: the model's transform, backbone and RPN (eval), then
    roi_heads.box_roi_pool -> box_head -> box_predictor and softmax over the class logits, as
    RoIHeads.postprocess_detections scores them."""
    m = model.module
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)
    with torch.inference_mode():
        images, _ = m.transform([x])
        feats = m.backbone(images.tensors)
        proposals, _ = m.rpn(images, feats)
        pooled = m.roi_heads.box_roi_pool(feats, proposals, images.image_sizes)
        class_logits, _ = m.roi_heads.box_predictor(m.roi_heads.box_head(pooled))
        probs = torch.softmax(class_logits, -1)
    return proposals[0], probs, tuple(images.image_sizes[0]), tuple(x.shape[-2:])


def test_covering_rois_carry_torchvisions_class_probabilities(demo):
    """Every covering RoI's IoU, class probability and winner equal torchvision's own box predictor
    on its own proposals (computed here, not through core); the single-RoI fields are the best of
    that list by each verdict's rule; analysis.jsonl's compact form matches."""
    rng = np.random.default_rng(5)
    seen = set()
    for i in range(4):
        s = make_scene(scene_rng(31, i))
        proposals, probs, resized, original = torchvision_roi_probs(demo, s.image)
        base = core.trace(demo, s.image)
        truth = perturbed(base, s, rng)
        truth = Truth(np.concatenate([truth.boxes, truth.boxes[:1]]), [*truth.names, "person"],
                      np.concatenate([truth.labels, [-1]]))  # a class the model lacks
        gt = resize_boxes(torch.from_numpy(truth.boxes), original, resized)
        iou = box_iou(gt, proposals).numpy()
        probs = probs.numpy()
        ev = anchor_evidence(base, truth)
        for tr in (base, core.retrace(base, box_score_thresh=0.9, box_nms_thresh=0.2, box_detections_per_img=3)):
            dg = diagnose(tr, truth, ev)
            for o in dg.objects:
                seen.add(o.verdict)
                want = np.nonzero(iou[o.index] >= 0.5)[0]
                want = want[np.argsort(-iou[o.index, want], kind="stable")]
                assert list(o.rois) == want.tolist()
                n = len(want)
                assert len(o.roi_ious) == len(o.roi_winners) == len(o.roi_winner_probs) == n
                np.testing.assert_allclose(o.roi_ious, iou[o.index, want], rtol=0, atol=1e-6)
                np.testing.assert_allclose(o.roi_winner_probs, probs[want].max(1) if n else [], rtol=0, atol=1e-6)
                p_win = probs[want, list(o.roi_winners)] if n else np.zeros(0)
                np.testing.assert_allclose(p_win, probs[want].max(1) if n else [], rtol=0, atol=1e-6)
                if o.label < 0:
                    assert o.roi_class_probs is None
                    continue
                np.testing.assert_allclose(o.roi_class_probs, probs[want, o.label], rtol=0, atol=1e-6)
                # the single-RoI fields, from the list by the verdict's rule
                cp, win = np.array(o.roi_class_probs), np.array(o.roi_winners)
                at = {r: k for k, r in enumerate(o.rois)}
                if not n:
                    assert o.verdict == "detected" or o.verdict.startswith("rpn_")
                if o.roi in at:
                    k = at[o.roi]
                    assert (o.roi_iou, o.class_prob, o.winner, o.winner_prob) == \
                        (o.roi_ious[k], o.roi_class_probs[k], o.roi_winners[k], o.roi_winner_probs[k])
                if o.verdict in ("box_low_score", "box_suppressed", "box_cut", "box_taken"):
                    assert o.roi == o.rois[int(np.argmax(cp))] and o.class_prob == cp.max()
                elif o.verdict == "box_misclassified":
                    wrong = (win != o.label) & (win != 0)
                    assert wrong[at[o.roi]] and o.roi_iou == max(np.array(o.roi_ious)[wrong])
                    assert o.winner == win[at[o.roi]] and not (win == o.label).any()
                elif o.verdict in ("detected", "box_mislocalized") and o.roi in at:
                    assert o.class_prob <= cp.max()
                cov = o.to_json()["covering_rois"]
                assert cov["roi"] == list(o.rois) and cov["winner"] == list(o.roi_winners)
                for key, full in (("iou", o.roi_ious), ("class_prob", o.roi_class_probs),
                                  ("winner_prob", o.roi_winner_probs)):
                    np.testing.assert_allclose(cov[key], full, rtol=0, atol=5e-5)
    assert {None, "detected", "box_low_score", "box_misclassified", "box_mislocalized", "box_suppressed",
            "box_cut", "box_taken", "rpn_missed"} <= seen, seen


def test_voc_difficult_follows_cocos_crowd_rule_in_verdicts_tide_and_map(demo):
    """One rule everywhere: a VOC 'difficult' object is ignored as COCO ignores a crowd region: no
    verdict (never missed), it takes no detection from an object, it is not an object to TIDE, and
    summary's mAP counts it as iscrowd."""
    from core.analysis.summary import coco_map, summarize

    s = make_scene(scene_rng(31, 2))
    tr = core.trace(demo, s.image)
    truth = scene_truth(s)
    flag = np.arange(len(truth)) == 0
    difficult = Truth(truth.boxes, truth.names, truth.labels, difficult=flag)
    crowd = Truth(truth.boxes, truth.names, truth.labels, crowd=flag)
    a, b = diagnose(tr, difficult), diagnose(tr, crowd)
    assert a.objects[0].verdict is None and "marked difficult (VOC)" in a.explain(0)
    assert [o.verdict for o in a.objects] == [o.verdict for o in b.objects]
    assert [(d.error, d.truth) for d in a.detections] == [(d.error, d.truth) for d in b.detections]
    assert all(d.truth != 0 for d in a.detections)
    rec = {"image": "a.png", "size": list(s.image.shape[:2]), "truth": [o.to_json() for o in a.objects],
           "detections": [d.to_json() for d in a.detections]}
    rec_crowd = {**rec, "truth": [o.to_json() for o in b.objects]}
    assert coco_map([rec], tr.class_names) == coco_map([rec_crowd], tr.class_names)
    summary = summarize([rec], {"class_names": list(tr.class_names)}, [])
    assert summary["objects_without_verdict"]["difficult"] == 1 and summary["objects"] == len(truth) - 1
