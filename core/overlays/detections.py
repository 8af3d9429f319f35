"""detections: final boxes after NMS with class name and score, a colour per class; optionally
the suppressed ones faded and dashed."""

from __future__ import annotations

import numpy as np

from core.colormaps import class_colour
from core.overlays.layers import Boxes, StageLayers
from core.tracing.types import SUPPRESSED


def layers(tr, s: dict) -> StageLayers:
    d = tr.detections
    op = float(s["opacity"])
    out = []
    if s["suppressed"]:
        sup = np.nonzero(d.status == SUPPRESSED)[0]
        sup = sup[np.argsort(-d.scores[sup], kind="stable")][:300]
        cols = np.array([(*class_colour(d.label[i]), int(100 * op)) for i in sup], np.uint8).reshape(-1, 4)
        labels = [f"{tr.class_name(int(d.label[i]))} {d.scores[i]:.2f}" for i in sup]
        out.append(Boxes("detections.suppressed", d.boxes_image[sup], cols, width=1.0,
                         dashed=np.ones(len(sup), bool), labels=labels, ids=sup, select="candidate"))
    keep = d.keep
    cols = np.array([(*class_colour(d.label[i]), int(255 * op)) for i in keep], np.uint8).reshape(-1, 4)
    labels = [f"{tr.class_name(int(d.label[i]))} {d.scores[i]:.2f}" for i in keep]
    out.append(Boxes("detections.kept", d.final_boxes_image.reshape(-1, 4)[::-1], cols[::-1], width=2.0,
                     labels=labels[::-1], ids=np.arange(len(keep))[::-1], select="detection"))
    caption = (f"detections: {len(keep)} after NMS (IoU {tr.params['box_nms_thresh']:g}, score > "
               f"{tr.params['box_score_thresh']:g}), {len(d)} before, {int((d.status == SUPPRESSED).sum())} suppressed")
    return StageLayers("detections", out, caption, {
        "detections_boxes": d.final_boxes_image, "detections_scores": d.scores[keep],
        "detections_labels": d.label[keep]})
