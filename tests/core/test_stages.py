"""What a Trace holds: anchors by hand, frames, lineage from detection to anchor, suppression."""

import numpy as np
import pytest
import torch

import core
from core.tracing.types import KEPT, OVER_TOP_N, SUPPRESSED

from .conftest import noise_image


@pytest.fixture(scope="module")
def walk():
    model = core.load_model("seed-walkthrough", weights="random:1", box_score_thresh=0.0)
    return model, core.trace(model, noise_image(800, 800, seed=1))


def test_walkthrough_shapes_match_the_notebook(walk):
    _, tr = walk
    assert tr.meta.resized_size == (800, 800) and tr.meta.batch_size == (800, 800)
    assert tr.features["0"].data.shape == (256, 24, 24)
    assert tr.rpn[0].objectness.shape == (9, 24, 24) and tr.rpn[0].deltas.shape == (36, 24, 24)
    assert tr.anchors[0].count == 5184
    k = len(tr.proposals.keep)
    assert tr.box_head.pooled.shape == (k, 256, 7, 10)
    assert tr.box_head.features.shape == (k, 1024)
    assert tr.box_head.class_logits.shape == (k, 17) and tr.box_head.box_regression.shape == (k, 68)


def test_anchors_by_hand(walk):
    model, tr = walk
    a = tr.anchors[0]
    assert a.stride == (33, 33)  # 800 // 24, as AnchorGenerator computes it
    # size 128, ratio 0.5: h = 128*sqrt(.5) = 90.5, w = 181.0, rounded half-extents
    assert a.describe_anchor(0) == (128.0, 0.5)
    np.testing.assert_array_equal(a.cell_anchors[0], [-91, -45, 91, 45])
    all_a = a.anchors()
    # anchors of cell (row 2, col 5) are centred on (5*33, 2*33)
    cell = all_a[(2 * 24 + 5) * 9:(2 * 24 + 5) * 9 + 9]
    centres = (cell[:, :2] + cell[:, 2:]) / 2
    np.testing.assert_allclose(centres, [[165, 66]] * 9)
    # and equal to torchvision's own anchor generator
    with torch.inference_mode():
        x = torch.from_numpy(tr.image).permute(2, 0, 1).float() / 255
        images, _ = model.module.transform([x])
        feats = [torch.zeros(1, 1, 24, 24)]
        ref = model.module.rpn.anchor_generator(images, feats)[0].numpy()
    np.testing.assert_array_equal(all_a, ref)


def test_frames_non_square_padded():
    model = core.load_model("seed-alexnet", weights="random:2")
    tr = core.trace(model, noise_image(120, 250))
    m = tr.meta
    # min_size 300 / max_size 500: 120x250 -> scale min(300/120, 500/250) = 2.0
    assert m.resized_size == (240, 500) and m.batch_size == (256, 512)
    assert m.scale == (2.0, 2.0)
    p = tr.proposals
    np.testing.assert_allclose(p.boxes_image, p.boxes / 2.0, rtol=1e-6)
    f = tr.features["0"]
    assert f.valid[0] <= f.data.shape[1] and f.valid[1] <= f.data.shape[2]


def test_lineage_detection_to_proposal_to_anchor(walk):
    model, tr = walk
    p = tr.proposals
    anchors = np.concatenate([a.anchors() for a in tr.anchors])
    # a kept proposal is its anchor decoded with its deltas, then clipped (torchvision's BoxCoder)
    deltas = np.concatenate([r.deltas.reshape(-1, 4, *r.deltas.shape[1:]).transpose(2, 3, 0, 1).reshape(-1, 4)
                             for r in tr.rpn])
    coder = model.module.rpn.box_coder
    idx = p.keep[:20]
    dec = coder.decode(torch.from_numpy(deltas[p.anchor[idx]]), [torch.from_numpy(anchors[p.anchor[idx]])])
    dec = dec.reshape(-1, 4).clamp(min=0, max=800).numpy()
    np.testing.assert_allclose(dec, p.boxes[idx], atol=1e-3)
    # logits are the objectness map values at (anchor, row, col)
    a = tr.anchors[0]
    r, c, k = a.unravel(p.anchor[idx])
    np.testing.assert_array_equal(tr.rpn[0].objectness[k, r, c], p.logits[idx])
    lin = tr.lineage(0)
    d = tr.detections
    i = d.keep[0]
    assert lin["roi"] == d.proposal[i] and lin["proposal"] == p.keep[lin["roi"]]
    np.testing.assert_allclose(tr.box_head.probs[lin["roi"]][d.label[i]], d.scores[i])


def test_suppressed_know_their_suppressor(walk):
    _, tr = walk
    for s, thresh, groups in ((tr.proposals, tr.params["rpn_nms_thresh"], tr.proposals.level),
                              (tr.detections, tr.params["box_nms_thresh"], tr.detections.label)):
        sup = np.nonzero(s.status == SUPPRESSED)[0]
        assert len(sup) > 0
        by = s.suppressed_by[sup]
        assert (by >= 0).all()
        assert np.isin(s.status[by], [KEPT, OVER_TOP_N]).all()
        assert (s.scores[by] >= s.scores[sup]).all()
        assert (groups[by] == groups[sup]).all()
        assert (s.suppress_iou[sup] > thresh).all()
        kept = s.status == KEPT
        assert kept.sum() == len(s.keep) and (s.suppressed_by[kept] == -1).all()


def test_final_matches_keep_order(walk):
    _, tr = walk
    fin = tr.final()
    assert [f["score"] for f in fin] == sorted((f["score"] for f in fin), reverse=True)
    assert len(tr.detections.keep) == len(fin) <= tr.params["box_detections_per_img"]
