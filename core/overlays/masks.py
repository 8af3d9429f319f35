"""masks: Mask R-CNN's instance masks where torchvision pastes them (original pixels, > threshold,
a colour per class); for one detection, its 28x28 mask probabilities over its box, the grid the
mask head predicts (``paste_masks_in_image`` stretches it over the box)."""

from __future__ import annotations

import numpy as np

from core.colormaps import class_colour
from core.errors import LensError
from core.overlays.layers import Boxes, Heatmap, Raster, StageLayers
from core.overlays.rois import head_samples


def composite(m, order, threshold: float, colours) -> tuple[np.ndarray, tuple]:
    """[h, w, 4] RGBA of the masks ``order`` (later ones on top) over the union of their areas."""
    boxes = m.pasted_boxes[order] if len(order) else np.zeros((0, 4), np.int64)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(boxes) == 0:
        return np.zeros((0, 0, 4), np.uint8), (0.0, 0.0, 0.0, 0.0)
    x0, y0 = int(boxes[:, 0].min()), int(boxes[:, 1].min())
    x1, y1 = int(boxes[:, 2].max()), int(boxes[:, 3].max())
    rgba = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
    for j in order:
        bx0, by0, bx1, by1 = (int(v) for v in m.pasted_boxes[j])
        if bx1 <= bx0 or by1 <= by0:
            continue
        hit = m.crop(j) > threshold
        rgba[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0][hit] = (*colours[j], 255)
    return rgba, (float(x0), float(y0), float(x1), float(y1))


def layers(tr, s: dict) -> StageLayers:
    m = tr.masks
    if m is None:
        return StageLayers("masks", [], "masks: this model has no mask head")
    k = len(m)
    if k == 0:
        return StageLayers("masks", [], "masks: no detections")
    op = float(s["opacity"])
    thr = float(s["threshold"])
    j = 0 if s["detection"] is None else int(s["detection"])
    if not 0 <= j < k:
        raise LensError(f"detection {j}", f"out of range; {k} detections have masks")
    colours = [class_colour(int(lab)) for lab in m.labels]
    rgba, rect = composite(m, list(range(k))[::-1], thr, colours)  # the best detection on top
    out = [Raster("masks.pasted", rgba, rect, op)]
    if s["probability"]:
        out.append(Heatmap("masks.probability", np.ascontiguousarray(m.probs[j], np.float32),
                           tuple(float(v) for v in m.rois_image[j]), s["colormap"], max(op, 0.6), 0.0, 1.0,
                           label=f"mask probability of detection {j} ({m.probs.shape[2]}x{m.probs.shape[1]}, W x H)"))
    out.append(Boxes("masks.selected", m.rois_image[j:j + 1], np.array([[*colours[j], 255]], np.uint8), width=2.0,
                     labels=[f"{tr.class_name(int(m.labels[j]))}: mask {int(m.area[j])} px"], ids=np.array([j])))
    ph, pw = m.output_size
    caption = (f"masks: {k} pasted in original pixels (> {thr:g}); RoIAlign {pw}x{ph} (W x H) -> "
               f"logits [{', '.join(str(v) for v in m.logits.shape[1:])}]; detection {j}: {int(m.area[j])} px")
    if s.get("roialign"):
        extra, clause = head_samples("masks", tr, m, j, op)
        out += extra
        caption += f"; {clause}"
    return StageLayers("masks", out, caption, {"masks_area": m.area, "masks_probs": m.probs[j],
                                               "masks_boxes": m.pasted_boxes})
