"""loss: where the training loss is paid. A heatmap of each sampled anchor's share of
loss_objectness, summed per cell of one level (default: the level that pays most) - or, with mode
``bce``, the binary cross-entropy every labelled anchor would pay, max per cell - and the sampled
RoIs that cost most (their share of loss_classifier + loss_box_reg), coloured by it."""

from __future__ import annotations

import numpy as np

from core.colormaps import lut
from core.overlays._common import anchor_level
from core.overlays._truth_common import empty
from core.overlays.layers import Boxes, Heatmap, StageLayers
from core.tracing.types import grid_rect


def cell_loss(tr, i: int, mode: str = "share") -> np.ndarray:
    """[H, W] per cell of level i (all cells): the sum of its anchors' loss_objectness shares, or
    (``bce``) the largest binary cross-entropy of its labelled anchors."""
    lvl = tr.training.anchors[i]  # the training step's own anchor grid
    a = tr.training.rpn
    values = (a.loss_objectness if mode == "share" else a.bce)[lvl.offset:lvl.offset + lvl.count]
    grid = values.reshape(lvl.grid[0], lvl.grid[1], lvl.per_cell)  # torchvision's order: row, col, anchor
    return grid.sum(-1) if mode == "share" else grid.max(-1)


def layers(tr, s: dict) -> StageLayers:
    none = empty(tr, "loss")
    if none is not None:
        return none
    T = tr.training
    r = T.roi
    if s["level"] is None or s["level"] == "":
        sums = [float(cell_loss(tr, i).sum()) for i in range(len(T.anchors))]
        i = int(np.argmax(sums))
    else:
        i, _ = anchor_level(T.anchors, s["level"])
    lvl = T.anchors[i]
    mode = s["mode"]
    full = cell_loss(tr, i, mode)
    vh, vw = lvl.valid(T.meta)
    data = np.ascontiguousarray(full[:vh, :vw], np.float32)
    hi = max(float(data.max()) if data.size else 0.0, 1e-12)
    out = [Heatmap(f"loss.objectness.{lvl.name}", data, grid_rect((vh, vw), lvl.stride, T.meta), s["colormap"],
                   float(s["opacity"]), 0.0, hi, fade=True, label=f"loss_objectness share per cell, level {lvl.name}" if mode == "share"
                   else f"objectness BCE, max per cell, level {lvl.name}")]
    roi_loss = r.loss_classifier + r.loss_box_reg
    n = min(int(s["rois"]), len(roi_loss))
    top = np.argsort(-roi_loss, kind="stable")[:n]
    if n:
        vmax = max(float(roi_loss[top[0]]), 1e-12)
        cols = np.zeros((n, 4), np.uint8)
        cols[:, :3] = lut(s["colormap"])[np.clip(64 + roi_loss[top] / vmax * 191, 0, 255).astype(int)]  # never black
        cols[:, 3] = 255
        labels = [f"loss {roi_loss[j]:.3f}" if k < 10 else "" for k, j in enumerate(top)]
        out.append(Boxes("loss.rois", r.boxes_image[r.sampled[top]], cols, width=2.0, labels=labels,
                         ids=r.sampled[top]))
    L = T.losses
    padding = float(full.sum() - data.sum())
    caption = (f"loss {sum(L.values()):.4g} = objectness {L['loss_objectness']:.4g} + rpn box "
               f"{L['loss_rpn_box_reg']:.4g} + classifier {L['loss_classifier']:.4g} + box {L['loss_box_reg']:.4g}; "
               + (f"heatmap: level {lvl.name}'s sampled anchors pay {float(full.sum()):.4g} of loss_objectness"
                  + (f" ({padding:.3g} in the padding)" if padding > 0 else "") if mode == "share" else
                  f"heatmap: level {lvl.name}, the cross-entropy each labelled anchor would pay if drawn (max per cell)")
               + f"; boxes: the {n} sampled RoIs that cost most (classifier + box)" + (f"; {T.note}" if T.note else ""))
    return StageLayers("loss", out, caption, {f"loss_objectness_{lvl.name}": data, "loss_rois": roi_loss})
