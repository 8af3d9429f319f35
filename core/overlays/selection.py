"""The selected box and its path: for a detection, its exact anchor (level, cell, size, ratio),
the proposal that anchor became (= the RoI RoIAlign pooled), and the final box, joined by lines;
for a box NMS suppressed, also the kept box that suppressed it and their IoU on the line between
them. Drawn on top of every stage while something is selected (not a toggled stage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.analysis.verdicts import ERROR_RULES
from core.colormaps import class_colour
from core.overlays.layers import Boxes, Lines, StageLayers
from core.tracing.types import STATUS_NAMES, STATUS_WORDS, SUPPRESSED

KINDS = ("detection", "candidate", "proposal", "roi")
HIGHLIGHT = (255, 255, 255)
ANCHOR, PROPOSAL, SUPPRESSOR, PATH = (255, 0, 255), (255, 220, 0), (255, 80, 80), (255, 255, 255)


@dataclass(frozen=True)
class Selection:
    kind: str  # detection (final, index j), candidate (a box before NMS), proposal, roi
    index: int


def valid(tr, sel: Selection | None) -> bool:
    if sel is None or tr is None or sel.kind not in KINDS or sel.index < 0:
        return False
    n = {"detection": len(tr.detections.keep), "candidate": len(tr.detections), "proposal": len(tr.proposals),
         "roi": len(tr.box_head.rois)}[sel.kind]
    return sel.index < n


def normalized(tr, sel: Selection) -> Selection:
    """A kept candidate is its final detection."""
    if sel.kind == "candidate":
        j = np.nonzero(tr.detections.keep == sel.index)[0]
        if len(j):
            return Selection("detection", int(j[0]))
    return sel


def anchor_of(tr, proposal: int) -> dict:
    """The anchor a proposal came from (anchor_at)."""
    return anchor_at(tr, int(tr.proposals.anchor[proposal]))


def anchor_name(tr, index: int) -> str:
    """``level 0 (3, 5) size 32 ratio 0.5``: where anchor ``index`` (over all levels) sits."""
    a = anchor_at(tr, index)
    return f"level {a['level']} ({a['cell'][0]}, {a['cell'][1]}) size {a['size']:g} ratio {a['ratio']:g}"


def anchor_at(tr, index: int) -> dict:
    """Anchor ``index`` (over all levels, as the RPN numbers them): level, cell, index in the cell,
    size, ratio, its box in original pixels."""
    offsets = np.array([a.offset for a in tr.anchors])
    al = tr.anchors[int(np.searchsorted(offsets, int(index), side="right") - 1)]
    row, col, a = (int(v) for v in al.unravel(int(index) - al.offset))
    size, ratio = al.describe_anchor(a)
    shift = np.array([col * al.stride[1], row * al.stride[0]] * 2, np.float32)
    box = tr.meta.to_image(al.cell_anchors[a] + shift)[0]  # anchors share the model frame's origin
    return {"level": al.name, "cell": (row, col), "anchor": a, "size": size, "ratio": ratio, "box": box}


def roi_of(tr, sel: Selection) -> int | None:
    d = tr.detections
    if sel.kind == "detection":
        return int(d.proposal[d.keep[sel.index]])
    if sel.kind == "candidate":
        return int(d.proposal[sel.index])
    if sel.kind == "roi":
        return sel.index
    return None


def proposal_of(tr, sel: Selection) -> int:
    roi = roi_of(tr, sel)
    return sel.index if roi is None else int(tr.proposals.keep[roi])


def _centre(b) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], np.float32)


def layers(tr, sel: Selection) -> StageLayers:
    sel = normalized(tr, sel)
    d, p = tr.detections, tr.proposals
    pi = proposal_of(tr, sel)
    anc = anchor_of(tr, pi)
    boxes, cols, labels, dashed = [], [], [], []

    def add(box, colour, label, dash=False, alpha=255):
        boxes.append(np.asarray(box, np.float32))
        cols.append((*colour, alpha))
        labels.append(label)
        dashed.append(dash)

    add(anc["box"], ANCHOR, f"anchor {anc['level']} ({anc['cell'][0]},{anc['cell'][1]}) "
                            f"size {anc['size']:g} ratio {anc['ratio']:g}", dash=True)
    roi = roi_of(tr, sel)
    add(p.boxes_image[pi], PROPOSAL, f"proposal {pi} {p.scores[pi]:.2f}" + (f" = RoI {roi}" if roi is not None else ""))
    path = [_centre(anc["box"]), _centre(p.boxes_image[pi])]
    pair = None  # (box, the box that suppressed it, status)
    if sel.kind == "detection":
        i = int(d.keep[sel.index])
        box = d.final_boxes_image[sel.index]
        lab = int(d.label[i])
        add(box, HIGHLIGHT, "")  # the detections stage labels it already
        path.append(_centre(box))
    elif sel.kind == "candidate":
        i = sel.index
        lab = int(d.label[i])
        add(d.boxes_image[i], class_colour(lab), f"{tr.class_name(lab)} {d.scores[i]:.2f} "
                                                 f"({STATUS_WORDS[STATUS_NAMES[int(d.status[i])]]})", dash=True)
        path.append(_centre(d.boxes_image[i]))
        if int(d.status[i]) == SUPPRESSED and d.suppressed_by[i] >= 0:
            k = int(d.suppressed_by[i])
            pair = (d.boxes_image[i], d.boxes_image[k], float(d.suppress_iou[i]), f"kept {tr.class_name(lab)} "
                                                                                  f"{d.scores[k]:.2f}")
    elif sel.kind == "proposal" and int(p.status[pi]) == SUPPRESSED and p.suppressed_by[pi] >= 0:
        k = int(p.suppressed_by[pi])
        pair = (p.boxes_image[pi], p.boxes_image[k], float(p.suppress_iou[pi]), f"kept proposal {k} {p.scores[k]:.2f}")
    segs = [np.concatenate([path[i], path[i + 1]]) for i in range(len(path) - 1)]
    seg_labels = [""] * len(segs)
    lines_cols = [(*PATH, 230)] * len(segs)
    if pair is not None:
        add(pair[1], SUPPRESSOR, pair[3])
        segs.append(np.concatenate([_centre(pair[0]), _centre(pair[1])]))
        seg_labels.append(f"IoU {pair[2]:.2f}")
        lines_cols.append((*SUPPRESSOR, 255))
    box_layer = Boxes("selection.boxes", np.stack(boxes), np.array(cols, np.uint8), width=2.5,
                   dashed=np.array(dashed), labels=labels)
    lines = Lines("selection.path", np.stack(segs).astype(np.float32) if segs else np.zeros((0, 4), np.float32),
                  np.array(lines_cols, np.uint8).reshape(-1, 4), width=1.5, labels=seg_labels)
    return StageLayers("selection", [lines, box_layer], describe(tr, sel))


def tide(tr, j: int) -> str:
    """What final detection ``j`` is against the truth: a true positive, or a false positive of TIDE's
    type (the rule in words); "" without truth."""
    dg = getattr(tr, "diagnosis", None)
    if dg is None or not 0 <= j < len(dg.detections):
        return ""
    e = dg.detections[j]
    if e.error == "tp":
        return f"; a true positive: it matches truth object {e.truth} (IoU {e.iou:.2f})"
    near = f"; nearest: truth object {e.truth}, IoU {e.iou:.2f}" if e.truth is not None else ""
    return f"; a false positive, TIDE type {e.error}: {ERROR_RULES[e.error]}{near}"


def describe(tr, sel: Selection) -> str:
    """One line about the selection (the status bar, the inspector)."""
    sel = normalized(tr, sel)
    d, p = tr.detections, tr.proposals
    pi = proposal_of(tr, sel)
    anc = anchor_of(tr, pi)
    where = (f"anchor level {anc['level']} cell ({anc['cell'][0]}, {anc['cell'][1]}) size {anc['size']:g} "
             f"ratio {anc['ratio']:g} -> proposal {pi} (objectness {p.scores[pi]:.3f})")
    if sel.kind == "detection":
        i = int(d.keep[sel.index])
        return (f"detection {sel.index}: {tr.class_name(int(d.label[i]))} {d.scores[i]:.3f} from {where}, "
                f"RoI {roi_of(tr, sel)}{tide(tr, sel.index)}")
    if sel.kind == "candidate":
        i = sel.index
        text = (f"box {i} before NMS: {tr.class_name(int(d.label[i]))} {d.scores[i]:.3f}, "
                f"{STATUS_WORDS[STATUS_NAMES[int(d.status[i])]]}")
        if int(d.status[i]) == SUPPRESSED and d.suppressed_by[i] >= 0:
            k = int(d.suppressed_by[i])
            j = np.nonzero(d.keep == k)[0]
            text += (f" by {'detection ' + str(int(j[0])) if len(j) else 'box ' + str(k)} "
                     f"({d.scores[k]:.3f}) at IoU {d.suppress_iou[i]:.2f}")
        return f"{text}; from {where}"
    if sel.kind == "roi":
        return f"RoI {sel.index}: from {where}"
    text = f"proposal {pi}: objectness {p.scores[pi]:.3f}, {STATUS_WORDS[STATUS_NAMES[int(p.status[pi])]]}"
    if int(p.status[pi]) == SUPPRESSED and p.suppressed_by[pi] >= 0:
        k = int(p.suppressed_by[pi])
        text += f" by proposal {k} ({p.scores[k]:.3f}) at IoU {p.suppress_iou[pi]:.2f}"
    return f"{text}; from anchor level {anc['level']} cell ({anc['cell'][0]}, {anc['cell'][1]}) size " \
           f"{anc['size']:g} ratio {anc['ratio']:g}"
