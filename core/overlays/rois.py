"""rois: the boxes RoIAlign pooled; for one RoI (default: the one behind the best detection) its
h x w bins, its sampling points, and its pooled features as a small heatmap over the RoI."""

from __future__ import annotations

import math

import numpy as np

from ..errors import LensError
from ._common import value_range
from .layers import Boxes, Heatmap, Points, StageLayers


def sampling(roi_model: np.ndarray, level_stride: float, out_hw: tuple[int, int], ratio: int):
    """Bins and sampling points of torchvision's roi_align (aligned=False) for one RoI, in the
    model frame: returns (bins [h*w, 4], points [n, 2])."""
    scale = 1.0 / level_stride
    x1, y1, x2, y2 = (float(v) * scale for v in roi_model)
    rw, rh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    ph, pw = out_hw
    bw, bh = rw / pw, rh / ph
    gx = ratio if ratio > 0 else math.ceil(rw / pw)
    gy = ratio if ratio > 0 else math.ceil(rh / ph)
    j, i = np.meshgrid(np.arange(pw), np.arange(ph))
    bins = np.stack([x1 + j * bw, y1 + i * bh, x1 + (j + 1) * bw, y1 + (i + 1) * bh], -1).reshape(-1, 4)
    sx = (np.arange(gx) + 0.5) * bw / gx
    sy = (np.arange(gy) + 0.5) * bh / gy
    px = (x1 + np.arange(pw)[:, None] * bw + sx[None, :]).ravel()
    py = (y1 + np.arange(ph)[:, None] * bh + sy[None, :]).ravel()
    xx, yy = np.meshgrid(px, py)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    return (bins / scale).astype(np.float32), (pts / scale).astype(np.float32)


def default_roi(tr) -> int:
    d = tr.detections
    if len(d.keep):
        return int(d.proposal[d.keep[0]])
    return 0


def layers(tr, s: dict) -> StageLayers:
    h = tr.box_head
    k = len(h.rois)
    out = []
    op = float(s["opacity"])
    if s["show_all"] and k:
        cols = np.tile(np.array([[120, 200, 255, int(110 * op)]], np.uint8), (k, 1))
        out.append(Boxes("rois.all", h.rois_image, cols, width=1.0, ids=np.arange(k)))
    if k == 0:
        return StageLayers("rois", out, "rois: none (no proposals after NMS)")
    roi = default_roi(tr) if s["roi"] is None else int(s["roi"])
    if not 0 <= roi < k:
        raise LensError(f"roi {roi}", f"out of range; {k} RoIs were pooled")
    lvl = int(h.roi_level[roi])
    level_name = h.pooled_levels[lvl] if lvl < len(h.pooled_levels) else h.pooled_levels[0]
    stride = float(tr.features[level_name].stride[1]) if level_name in tr.features else 1.0
    bins, pts = sampling(h.rois[roi], stride, h.output_size, h.sampling_ratio)
    to_img = tr.meta.to_image
    bins_img = to_img(bins)
    pts_img = (pts / np.array([tr.meta.scale[1], tr.meta.scale[0]], np.float32)).astype(np.float32)
    pooled = np.ascontiguousarray(h.pooled[roi].mean(0), np.float32)
    lo, hi = value_range(pooled)
    x0, y0, x1, y1 = (float(v) for v in h.rois_image[roi])
    out.append(Heatmap("rois.pooled", pooled, (x0, y0, x1, y1), s["colormap"], op, lo, hi,
                       label=f"RoI {roi} pooled mean"))
    grid_cols = np.tile(np.array([[255, 255, 255, int(150 * op)]], np.uint8), (len(bins_img), 1))
    out.append(Boxes("rois.bins", bins_img, grid_cols, width=1.0))
    out.append(Points("rois.samples", pts_img, (255, 60, 60, int(255 * op)), size=2.0))
    out.append(Boxes("rois.selected", h.rois_image[roi:roi + 1], np.array([[255, 255, 0, int(255 * op)]], np.uint8),
                     width=2.0, labels=[f"RoI {roi} ({level_name})"], ids=np.array([roi])))
    ph, pw = h.output_size
    caption = (f"rois: {k} pooled to {h.pooled.shape[1]}x{ph}x{pw}; RoI {roi} from level {level_name}, "
               f"{len(pts_img)} sampling points")
    return StageLayers("rois", out, caption, {"rois_boxes": h.rois_image, "rois_pooled": h.pooled[roi]})
