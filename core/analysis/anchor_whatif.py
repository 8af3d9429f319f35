"""The app's anchor what-if: a hypothetical ``AnchorGenerator`` on a trace's own feature maps (no
backbone rerun), the RPN's training labels with it, and how each truth object ends up before and
after. The same functions as ``rcnn-lens anchors`` (core.analysis.anchor_match), so the counts are
the command line's for the same configuration (tests/core/test_anchor_whatif.py).

    w = what_if(tr, AnchorConfig.parse("32,48 / 64,96 / 128,192 / 256,384", "0.5, 1, 2"))
    tr = dataclasses.replace(tr, anchor_whatif=w)       # the trace's other stages are unchanged
"""

from __future__ import annotations

import numpy as np
import torch

from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_evidence import model_anchors, trace_state
from core.analysis.anchor_match import anchors_for, generator, generator_of, geometry_of, match
from core.analysis.anchor_types import AnchorWhatIf
from core.errors import LensError
from core.tracing.runner import anchor_levels
from core.training.targets import at_rpn_sampler
from core.training.types import POSITIVE, AnchorTargets


def geometry(tr, truth=None):
    """The trace's image as core.analysis.anchor_match sees it: the sizes the trace ran with."""
    m = tr.meta
    return geometry_of(m.name, m.original_size, m.resized_size, m.batch_size, tuple(a.grid for a in tr.anchors),
                       truth)


@torch.inference_mode()
def what_if(tr, cfg: AnchorConfig) -> AnchorWhatIf:
    """``cfg``'s anchors on ``tr``'s feature maps, its labels and minibatch (for the training
    view's seed), and every truth object's match and best anchor IoU before and after."""
    state = trace_state(tr)
    if state is None:
        raise LensError("anchor what-if", "this trace holds no tensors to compute anchors from")
    module = state.model.module
    generator_of(module, state.model.name)
    cfg.check(len(tr.anchors), "anchor what-if")
    gen = generator(cfg)
    rpn = module.rpn
    truth = tr.truth
    g = geometry(tr, truth)
    anchors = anchors_for(gen, g)
    levels = anchor_levels(gen, [a.name for a in tr.anchors], [a.grid for a in tr.anchors], tr.meta.batch_size)
    n = len(truth) if truth is not None else 0
    seed = tr.training.seed if tr.training is not None else 0
    before = np.full(n, -1, np.int8)
    after = np.full(n, -1, np.int8)
    best0, best1 = np.full(n, -1, np.float32), np.full(n, -1, np.float32)
    targets = None
    if truth is not None:
        m0, m1 = match(rpn, g.boxes, model_anchors(tr)), match(rpn, g.boxes, anchors)
        before[g.truth], after[g.truth] = m0.outcome(), m1.outcome()
        best0[g.truth], best1[g.truth] = m0.best_iou, m1.best_iou
        targets = _targets(tr, rpn, m1, anchors, seed)
    boxes_image = truth.boxes[g.truth] if truth is not None else np.zeros((0, 4), np.float32)
    return AnchorWhatIf(cfg.sizes, cfg.aspect_ratios, cfg.paste(), levels, targets, g.truth, g.boxes,
                        np.asarray(boxes_image, np.float32), before, after, int(seed), best0, best1)


def _targets(tr, rpn, m, anchors: torch.Tensor, seed: int) -> AnchorTargets:
    """The RPN's training labels for these anchors (as ``assign_targets_to_anchors``) and the
    minibatch ``fg_bg_sampler`` draws from the random state the training view's sampler draws from
    for ``seed`` (seeded, then the transform's size draw); the caller's random state is kept."""
    with at_rpn_sampler(tr, seed) as dev:
        pos, neg = rpn.fg_bg_sampler([torch.from_numpy(m.labels).to(dev)])
    sampled = (pos[0] | neg[0]).cpu().numpy().astype(bool)
    label = m.labels.astype(np.int8)
    positive = np.nonzero(label == POSITIVE)[0].astype(np.int64)
    high = float(rpn.proposal_matcher.high_threshold)
    none4, none = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    s = rpn.fg_bg_sampler
    return AnchorTargets(
        fg_iou_thresh=high, bg_iou_thresh=float(rpn.proposal_matcher.low_threshold),
        batch_size_per_image=int(s.batch_size_per_image), positive_fraction=float(s.positive_fraction),
        label=label, matched=m.best_object.astype(np.int64), iou=m.best_object_iou.astype(np.float32),
        promoted=(label == POSITIVE) & (m.best_object_iou < high), sampled=sampled,
        objectness=none, bce=none, loss_objectness=none, positive=positive,
        anchor_boxes=anchors[torch.from_numpy(positive)].numpy().astype(np.float32), target_deltas=none4,
        pred_deltas=none4, target_boxes=none4, pred_boxes=none4, pred_boxes_image=none4, loss_box_reg=none)
