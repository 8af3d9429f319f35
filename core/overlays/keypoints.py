"""keypoints: Keypoint R-CNN's keypoints in original pixels (torchvision's ``keypoints`` output)
with the skeleton of COCO's person; for one detection and one keypoint, its heatmap over the box
(``heatmaps_to_keypoints`` upsamples it over exactly that box and takes the argmax)."""

from __future__ import annotations

import numpy as np

from core.colormaps import CLASS_COLOURS
from core.errors import LensError
from core.overlays._common import value_range
from core.overlays.layers import Heatmap, Lines, Points, StageLayers, Text
from core.overlays.rois import head_samples


def layers(tr, s: dict) -> StageLayers:
    kp = tr.keypoints
    if kp is None:
        return StageLayers("keypoints", [], "keypoints: this model has no keypoint head")
    k = len(kp)
    if k == 0:
        return StageLayers("keypoints", [], "keypoints: no detections")
    op = float(s["opacity"])
    dets = list(range(k)) if s["detection"] is None else [int(s["detection"])]
    if not 0 <= dets[0] < k:
        raise LensError(f"detection {dets[0]}", f"out of range; {k} detections have keypoints")
    xy = kp.keypoints_image[..., :2]
    shown = np.ones(kp.scores.shape, bool) if s["min_score"] is None else kp.scores >= float(s["min_score"])
    out = []
    j0 = dets[0]
    if s["heatmap"] is not None:
        n = int(s["heatmap"])
        if not 0 <= n < len(kp.names):
            raise LensError(f"keypoint {n}", f"out of range; the model has {len(kp.names)} keypoints")
        hm = np.ascontiguousarray(kp.heatmaps[j0][n], np.float32)  # one detection's row: fetched alone
        lo, hi = value_range(hm)
        out.append(Heatmap("keypoints.heatmap", hm, tuple(float(v) for v in kp.rois_image[j0]), s["colormap"],
                           0.6 * max(op, 0.5), lo, hi,
                           label=f"{kp.names[n]} heatmap of detection {j0} ({hm.shape[1]}x{hm.shape[0]} logits, W x H)"))
    if s["skeleton"] and kp.skeleton:
        segs, cols = [], []
        for j in dets:
            colour = CLASS_COLOURS[j % len(CLASS_COLOURS)]
            for a, b in kp.skeleton:
                if shown[j, a] and shown[j, b]:
                    segs.append((*xy[j, a], *xy[j, b]))
                    cols.append((*colour, int(255 * op)))
        out.append(Lines("keypoints.skeleton", np.asarray(segs, np.float32).reshape(-1, 4),
                         np.asarray(cols, np.uint8).reshape(-1, 4), width=2.0))
    pts = np.concatenate([xy[j][shown[j]] for j in dets]).astype(np.float32).reshape(-1, 2)
    out.append(Points("keypoints.points", pts, (255, 60, 60, int(255 * op)), size=5.0))
    if s["names"]:
        out.append(Text("keypoints.names", [(float(xy[j0, n, 0]) + 3, float(xy[j0, n, 1]) + 3, kp.names[n])
                                            for n in range(len(kp.names)) if shown[j0, n]]))
    ph, pw = kp.output_size
    caption = (f"keypoints: {len(kp.names)} per detection, {len(dets)} detection(s) shown; RoIAlign {pw}x{ph} (W x H) -> "
               f"heatmaps {kp.heatmaps.shape[3]}x{kp.heatmaps.shape[2]} (W x H)")
    if s.get("roialign"):
        extra, clause = head_samples("keypoints", tr, kp, j0, op)
        out += extra
        caption += f"; {clause}"
    return StageLayers("keypoints", out, caption, {"keypoints": kp.keypoints_image, "keypoints_scores": kp.scores})
