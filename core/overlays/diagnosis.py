"""diagnosis: why an object was missed, drawn on the image. Without a selected object, every truth
box in its verdict's colour; with one (``object``: its index), its path through the stages: its
best anchor and the anchors the RPN's Matcher labels positive for it, its best pre-NMS candidate
and the proposal that suppressed it, the RoIs that cover it, its box before NMS and what
suppressed that, and the detection that matched it. Reads ``trace.diagnosis`` (``core.analysis.diagnose``)
and ``trace.truth``. No Qt, no torch.
"""

from __future__ import annotations

import numpy as np

from core.analysis.verdicts import VERDICT_COLOURS, explain
from core.errors import LensError
from core.overlays.layers import Boxes, StageLayers, Text, colour_array, rgba
from core.tracing.types import STATUS_WORDS, anchor_boxes

DEFAULTS = {"object": None, "anchors": True, "rois": True, "opacity": 1.0}
MAX_ROIS = 30
ANCHOR = (0, 200, 255)
CANDIDATE = (255, 200, 0)
SUPPRESSOR = (230, 30, 30)
ROI = (160, 160, 255)
DETECTION = (44, 220, 44)
TRUTH = (255, 255, 255)


def settings(s: dict | None) -> dict:
    out = dict(DEFAULTS)
    for k, v in (s or {}).items():
        if k not in out:
            raise LensError(f"diagnosis.{k}", f"unknown setting; use one of {', '.join(DEFAULTS)}")
        out[k] = v
    if not 0.0 <= float(out["opacity"]) <= 1.0:
        raise LensError("diagnosis.opacity", "must be between 0 and 1")
    return out


def _anchors(tr, indices) -> np.ndarray:
    """Anchors of the trace by index into the concatenated list (torchvision's order) -> original pixels."""
    return tr.meta.to_image(anchor_boxes(tr.anchors, indices))


def _boxes(name, xyxy, rgb, op, width=2.0, dashed=False, labels=None, alpha=255) -> Boxes:
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    n = xyxy.shape[0]
    return Boxes(name, xyxy, colour_array([rgba(rgb, int(alpha * op))], n), width=width,
                 dashed=np.full(n, bool(dashed)), labels=labels)


def layers(tr, s: dict | None = None) -> StageLayers:
    s = settings(s)
    dg = getattr(tr, "diagnosis", None)
    op = float(s["opacity"])
    if dg is None:
        return StageLayers("diagnosis", [], "diagnosis: no truth for this image")
    counts = {k: v for k, v in dg.counts().items() if v}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    if s["object"] is None:
        objs = dg.objects
        cols = colour_array([rgba(VERDICT_COLOURS[o.verdict], int(255 * op)) for o in objs], len(objs))
        boxes = Boxes("diagnosis.objects", np.array([o.box for o in objs], np.float32).reshape(-1, 4), cols,
                      width=2.0, dashed=np.array([o.verdict != "detected" for o in objs], bool),
                      labels=[f"{o.index}: {o.verdict or 'no verdict'}" for o in objs],
                      ids=np.arange(len(objs)))
        return StageLayers("diagnosis", [boxes], f"diagnosis: {len(objs)} objects: {summary}")
    i = int(s["object"])
    if not 0 <= i < len(dg.objects):
        raise LensError(f"diagnosis object {i}", f"no such object; this image has {len(dg.objects)}")
    o = dg.objects[i]
    out = []
    if s["anchors"] and o.positive_anchors:
        out.append(_boxes("diagnosis.positive_anchors", _anchors(tr, o.positive_anchors), ANCHOR, op,
                          width=1.0, alpha=110))
    if s["anchors"] and o.anchor >= 0:
        out.append(_boxes("diagnosis.best_anchor", _anchors(tr, [o.anchor]), ANCHOR, op, dashed=True,
                          labels=[f"best anchor IoU {o.best_anchor_iou:.2f}"]))
    if o.decoded_anchor >= 0 and o.cut == "pre_nms_top_n":
        out.append(_boxes("diagnosis.decoded_anchor", _anchors(tr, [o.decoded_anchor]), ANCHOR, op,
                          dashed=True, labels=[f"anchor {o.decoded_anchor}: ranked {o.decoded_rank} on level "
                                               f"{o.decoded_level}"]))
    if s["rois"] and o.rois:
        rois = list(o.rois[:MAX_ROIS])
        out.append(_boxes("diagnosis.rois", tr.box_head.rois_image[rois], ROI, op, width=1.0, alpha=140))
    if o.roi >= 0:  # the RoI its verdict rests on, numbered as the sentence numbers it
        out.append(_boxes("diagnosis.roi", tr.box_head.rois_image[o.roi], ROI, op, width=1.5,
                          labels=[f"RoI {o.roi} (proposal {o.roi_proposal})"]))
    P = tr.proposals
    if o.candidate >= 0:
        out.append(_boxes("diagnosis.candidate", P.boxes_image[o.candidate], CANDIDATE, op,
                          dashed=o.candidate_status != "kept",
                          labels=[f"proposal {o.candidate}: {STATUS_WORDS[o.candidate_status]}, "
                                  f"obj {o.candidate_score:.2f}"]))
    if o.suppressor >= 0:
        out.append(_boxes("diagnosis.suppressor", P.boxes_image[o.suppressor], SUPPRESSOR, op,
                          labels=[f"proposal {o.suppressor} suppressed it: IoU {o.suppress_iou:.2f}"]))
    D = tr.detections
    if o.det_candidate >= 0 and o.detection is None:
        out.append(_boxes("diagnosis.box_candidate", D.boxes_image[o.det_candidate], CANDIDATE, op, dashed=True,
                          labels=[f"box {o.det_candidate}: {o.name} {o.det_candidate_score:.2f}, "
                                  f"{STATUS_WORDS[o.det_candidate_status]}"]))
    if o.det_suppressor >= 0:
        out.append(_boxes("diagnosis.box_suppressor", D.boxes_image[o.det_suppressor], SUPPRESSOR, op,
                          labels=[f"suppressor: IoU {o.det_suppress_iou:.2f}"]))
    if o.detection is not None:
        out.append(_boxes("diagnosis.detection", D.final_boxes_image[o.detection], DETECTION, op, width=2.5,
                          labels=[f"detection {o.detection}: {o.name} {o.detection_score:.2f}"]))
    elif o.taken_detection is not None:
        out.append(_boxes("diagnosis.taken", D.final_boxes_image[o.taken_detection], SUPPRESSOR, op,
                          labels=[f"detection {o.taken_detection} went to object {o.taken_by}"]))
    out.append(_boxes("diagnosis.object", o.box, TRUTH, op, width=3.0,
                      labels=[f"{o.index} {o.name}: {o.verdict or 'no verdict'}"]))
    sentence = explain(o, dg.class_names, dg.params)
    out.append(Text("diagnosis.explain", [(4.0, 4.0, sentence)],  # top-left: a caption on the image
                    colour=rgba(VERDICT_COLOURS[o.verdict], 255)))
    return StageLayers("diagnosis", out, f"object {o.index} ({o.name}): {o.verdict or 'no verdict'}: {sentence}")
