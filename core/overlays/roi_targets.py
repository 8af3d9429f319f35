"""roi_targets: the RoI heads' training minibatch: the RPN's training proposals with the objects
appended (labelled ``GT``), positives in their class colour with their IoU (dashed: positive but
not drawn), the minibatch's background RoIs in blue; by object; optionally each positive's
predicted box for its class."""

from __future__ import annotations

import numpy as np

from core.colormaps import class_colour
from core.overlays._truth_common import empty, gt_row, rgba
from core.overlays.layers import Boxes, StageLayers

BACKGROUND_COLOUR = (70, 140, 255)
MAX_LABELS = 60


def layers(tr, s: dict) -> StageLayers:
    none = empty(tr, "roi_targets")
    if none is not None:
        return none
    T = tr.training
    r = T.roi
    op = float(s["opacity"])
    sampled = np.zeros(len(r.boxes), bool)
    sampled[r.sampled] = True
    idx = r.sampled if s["show"] == "sampled" else np.nonzero(r.label > 0)[0]
    g = gt_row(tr, s["gt"])
    if g is not None:
        idx = idx[(r.matched[idx] == g) & (r.label[idx] > 0)]
    pos = idx[r.label[idx] > 0]
    bg = idx[r.label[idx] == 0]
    out = []
    if len(bg):
        out.append(Boxes("roi_targets.background", r.boxes_image[bg], rgba([BACKGROUND_COLOUR] * len(bg), 0.4 * op),
                         width=1.0, ids=bg))
    for name, part, width in (("positive", pos[pos < r.num_proposals], 2.0), ("gt", pos[pos >= r.num_proposals], 3.0)):
        if not len(part):
            continue
        labels = None
        if len(pos) <= MAX_LABELS:
            labels = [f"GT {tr.class_name(int(r.label[i]))}" if name == "gt"
                      else f"{tr.class_name(int(r.label[i]))} IoU {r.iou[i]:.2f}" for i in part]
        out.append(Boxes(f"roi_targets.{name}", r.boxes_image[part], rgba([class_colour(r.label[i]) for i in part], op),
                         width=width, dashed=~sampled[part], labels=labels, ids=part))
    if len(pos) and s["predicted"]:
        drawn = pos[sampled[pos]]
        rows = np.searchsorted(r.sampled, drawn)
        out.append(Boxes("roi_targets.predicted", r.pred_boxes_image[rows],
                         rgba([class_colour(r.label[i]) for i in drawn], 0.7 * op), width=1.0,
                         dashed=np.ones(len(drawn), bool)))
    c = r.counts()
    caption = (f"roi targets: {c['proposals']} proposals (training top-n {T.pre_nms_top_n}/{T.post_nms_top_n}) + "
               f"{c['gt_appended']} GT appended; {r.caption()}: the minibatch holds {c['positive']} positive + "
               f"{c['negative']} background" + (f"; showing object {int(s['gt'])}" if g is not None else ""))
    return StageLayers("roi_targets", out, caption, {
        "roi_targets_boxes": r.boxes_image, "roi_targets_label": r.label, "roi_targets_iou": r.iou,
        "roi_targets_sampled": r.sampled})
