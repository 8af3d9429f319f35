"""anchor_targets: the RPN's training labels. Positive anchors in their object's colour with a line
to it (solid: in the minibatch; dashed: positive but not drawn; ``lq``: made positive only by the
low-quality rule), the minibatch's negatives in blue, ignored anchors grey; filters by level and by
object; optionally the box each positive's predicted deltas decode to."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.overlays._common import anchor_level
from core.overlays._truth_common import centres, empty, gt_row, object_colour, rgba
from core.overlays.layers import Boxes, Lines, StageLayers
from core.tracing.types import anchor_boxes
from core.training.types import IGNORED, NEGATIVE, POSITIVE

NEGATIVE_COLOUR = (70, 140, 255)
IGNORED_COLOUR = (170, 170, 170)
MAX_LABELS = 60


def selection(tr, s: dict):
    """(positive, negative, ignored) global anchor indices the settings show, and a description."""
    a = tr.training.rpn
    n = len(a.label)
    sel = np.ones(n, bool)
    what = []
    if s["level"] is not None and s["level"] != "":
        _, lvl = anchor_level(tr.training.anchors, s["level"])
        sel[:] = False
        sel[lvl.offset:lvl.offset + lvl.count] = True
        what.append(f"level {lvl.name}")
    g = gt_row(tr, s["gt"])
    if g is not None:
        sel &= a.matched == g
        what.append(f"object {int(s['gt'])}")
    pos = sel & (a.label == POSITIVE)
    neg = sel & (a.label == NEGATIVE) & a.sampled
    ign = sel & (a.label == IGNORED)
    show = s["show"]
    if show == "sampled":
        pos &= a.sampled
        ign[:] = False
    elif show == "positive":
        neg[:] = False
        ign[:] = False
    if g is not None:
        neg[:] = False  # a negative's nearest object is not its object
    return np.nonzero(pos)[0], np.nonzero(neg)[0], np.nonzero(ign)[0], ", ".join(what)


def whatif_view(tr):
    """The trace as the anchor targets stage draws it under a what-if: the hypothetical anchors and
    their labels in place of the model's (only for drawing this stage; the trace is unchanged)."""
    w = getattr(tr, "anchor_whatif", None)
    if w is None or w.targets is None or tr.training is None:
        return tr, None
    # the what-if labels the trace's own feature maps, in the inference frame (tr.meta), not the
    # training step's frame (which its transform may have sized differently)
    T = replace(tr.training, rpn=w.targets, gt_truth=w.gt_truth, gt_boxes=w.gt_boxes, gt_boxes_image=w.gt_boxes_image,
                meta=tr.meta, anchors=w.levels, note="")
    return replace(tr, anchors=w.levels, training=T), w


def layers(tr, s: dict) -> StageLayers:
    none = empty(tr, "anchor_targets")
    if none is not None:
        return none
    tr, w = whatif_view(tr)
    if w is not None:
        s = {**s, "predicted": False}  # the RPN head is not rerun on hypothetical anchors
    T = tr.training
    a = T.rpn
    m = T.meta  # the training step's frame: the size its transform chose
    op = float(s["opacity"])
    pos, neg, ign, what = selection(tr, s)
    out = []
    if len(ign):
        out.append(Boxes("anchor_targets.ignored", m.to_image(anchor_boxes(T.anchors, ign)), rgba([IGNORED_COLOUR] * len(ign),
                         0.5 * op), width=1.0, dashed=np.ones(len(ign), bool), ids=ign))
    if len(neg):
        out.append(Boxes("anchor_targets.negative", m.to_image(anchor_boxes(T.anchors, neg)),
                         rgba([NEGATIVE_COLOUR] * len(neg), 0.45 * op), width=1.0, ids=neg))
    if len(pos):
        boxes = m.to_image(anchor_boxes(T.anchors, pos))
        truth_rows = T.gt_truth[a.matched[pos]]
        cols = rgba([object_colour(i) for i in truth_rows], op)
        labels = None
        if len(pos) <= MAX_LABELS:
            labels = [f"IoU {a.iou[i]:.2f}" + (" lq" if a.promoted[i] else "") for i in pos]
        if s["lines"]:
            seg = np.concatenate([centres(boxes), centres(T.gt_boxes_image[a.matched[pos]])], 1)
            out.append(Lines("anchor_targets.matched", seg, rgba([object_colour(i) for i in truth_rows], 0.8 * op)))
        out.append(Boxes("anchor_targets.positive", boxes, cols, width=2.0, dashed=~a.sampled[pos], labels=labels,
                         ids=pos))
        if s["predicted"]:
            rows = np.searchsorted(a.positive, pos)
            out.append(Boxes("anchor_targets.predicted", m.to_image(a.pred_boxes[rows]), rgba(
                [object_colour(i) for i in truth_rows], 0.7 * op), width=1.0, dashed=np.ones(len(pos), bool)))
    c = a.counts()
    caption = (f"anchor targets: {a.caption()}: {c['positive']} positive ({c['promoted']} only by the best-match "
               f"rule, lq), {c['negative']} negative, {c['ignored']} ignored; the minibatch holds "
               f"{c['sampled_positive']} positive + {c['sampled'] - c['sampled_positive']} negative (seed {T.seed})"
               + (f"; showing {what}" if what else "") + (f"; {T.note}" if T.note else ""))
    if w is not None:
        caption = f"{caption}. {w.caption()}"
    return StageLayers("anchor_targets", out, caption, {
        "anchor_targets_label": a.label, "anchor_targets_iou": a.iou, "anchor_targets_matched": a.matched,
        "anchor_targets_sampled": a.sampled, "anchor_targets_positive": pos})
