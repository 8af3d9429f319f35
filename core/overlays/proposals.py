"""proposals: after NMS, the top N coloured by score; optionally the pre-NMS set with the
suppressed ones faded and dashed."""

from __future__ import annotations

import numpy as np

from core.colormaps import lut
from core.overlays.layers import Boxes, StageLayers
from core.tracing.types import SUPPRESSED


def layers(tr, s: dict) -> StageLayers:
    p = tr.proposals
    top = p.keep[: int(s["top_n"])]
    op = float(s["opacity"])
    table = lut(s["colormap"])
    out = []
    if s["pre_nms"]:
        sup = np.nonzero(p.status == SUPPRESSED)[0]
        sup = sup[np.argsort(-p.scores[sup], kind="stable")][: max(int(s["top_n"]) * 4, 0)]
        cols = np.zeros((len(sup), 4), np.uint8)
        cols[:, :3] = 200
        cols[:, 3] = int(90 * op)
        out.append(Boxes("proposals.suppressed", p.boxes_image[sup], cols, width=1.0,
                         dashed=np.ones(len(sup), bool), ids=sup, select="proposal"))
    sc = p.scores[top]
    lo, hi = (float(sc.min()), float(sc.max())) if len(sc) else (0.0, 1.0)
    t = (sc - lo) / max(hi - lo, 1e-9)
    cols = np.zeros((len(top), 4), np.uint8)
    cols[:, :3] = table[np.clip((t * 255).round().astype(int), 0, 255)]
    cols[:, 3] = int(255 * op)
    labels = [f"obj {v:.2f}" for v in sc[:10]] + [""] * max(len(top) - 10, 0)  # the RPN's objectness
    out.append(Boxes("proposals.kept", p.boxes_image[top][::-1], cols[::-1], width=1.5,
                     labels=labels[::-1], ids=top[::-1], select="proposal"))  # best drawn last, on top
    n_sup = int((p.status == SUPPRESSED).sum())
    caption = (f"proposals: top {len(top)} of {len(p.keep)} after NMS (IoU {tr.params['rpn_nms_thresh']:g}), "
               f"{len(p)} before, {n_sup} suppressed; score {lo:.2f}..{hi:.2f}")
    return StageLayers("proposals", out, caption,
                       {"proposals_boxes": p.boxes_image[top], "proposals_scores": sc})
