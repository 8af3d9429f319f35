"""rois: the boxes RoIAlign pooled; for one RoI (default: the one behind the best detection) its
h x w bins, its sampling points, and its pooled features as a small heatmap over the RoI.

The bins and points are where torchvision's ``roi_align`` samples: at MultiScaleRoIAlign's own
``spatial_scale`` per level (``pool.scales``, a power of two it infers from the feature map's size
against the first image's), not at the anchor generator's stride. Where the two differ (AlexNet's
34x35 px stride against a scale of 1/32 in the seed presets) the caption says so."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import LensError
from core.overlays._common import value_range
from core.overlays.layers import Boxes, Heatmap, Points, StageLayers


def sampling(roi_model: np.ndarray, scale: float, out_hw: tuple[int, int], ratio: int):
    """Bins and sampling points of torchvision's roi_align (aligned=False) at ``spatial_scale``
    ``scale`` for one RoI, in the model frame: returns (bins [h*w, 4], points [n, 2])."""
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


@dataclass(frozen=True)
class Grid:
    bins: np.ndarray  # [h*w, 4] original pixels
    points: np.ndarray  # [n, 2] original pixels
    scale: float  # the spatial_scale roi_align used
    level: str  # the feature level it pooled from
    stride: tuple | None  # that level's stride (None if the trace lacks it)


def grid(tr, head, i: int) -> Grid:
    """Where RoIAlign sampled for row ``i`` of a pooling head (the box head's RoIs, or the mask /
    keypoint head's detection boxes): its bins and points in original pixels, at the pool's scale."""
    lvl = int(head.roi_level[i])
    level_name = head.pooled_levels[lvl] if lvl < len(head.pooled_levels) else head.pooled_levels[0]
    stride = tr.features[level_name].stride if level_name in tr.features else None
    if lvl < len(head.scales):
        scale = float(head.scales[lvl])
    else:  # a pooler without MultiScaleRoIAlign's scales: its grid is the feature map's
        scale = 1.0 / float(stride[1]) if stride else 1.0
    bins, pts = sampling(head.rois[i], scale, head.output_size, head.sampling_ratio)
    pts_img = (pts / np.array([tr.meta.scale[1], tr.meta.scale[0]], np.float32)).astype(np.float32)
    return Grid(tr.meta.to_image(bins), pts_img, scale, level_name, stride)


def grid_layers(prefix: str, g: Grid, op: float) -> list:
    """The bins (white) and sampling points (red) of one RoIAlign, as layers named ``prefix.*``."""
    cols = np.tile(np.array([[255, 255, 255, int(150 * op)]], np.uint8), (len(g.bins), 1))
    return [Boxes(f"{prefix}.bins", g.bins, cols, width=1.0),
            Points(f"{prefix}.samples", g.points, (255, 60, 60, int(255 * op)), size=2.0)]


def head_samples(stage: str, tr, head, j: int, op: float) -> tuple[list, str]:
    """A mask / keypoint head's RoIAlign of detection ``j``: its bins and points as layers
    ``<stage>.roialign.*``, and one clause for the caption."""
    g = grid(tr, head, j)
    ph, pw = head.output_size
    return grid_layers(f"{stage}.roialign", g, op), (
        f"detection {j}'s RoIAlign: {pw}x{ph} bins (W x H), {len(g.points)} sampling points from level "
        f"{g.level} at scale 1/{1 / g.scale:g}")


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
        out.append(Boxes("rois.all", h.rois_image, cols, width=1.0, ids=np.arange(k), select="roi"))
    if k == 0:
        return StageLayers("rois", out, "rois: none (no proposals after NMS)")
    roi = default_roi(tr) if s["roi"] is None else int(s["roi"])
    if not 0 <= roi < k:
        raise LensError(f"roi {roi}", f"out of range; {k} RoIs were pooled")
    g = grid(tr, h, roi)
    bins_img, pts_img, scale, level_name, stride = g.bins, g.points, g.scale, g.level, g.stride
    pooled = np.ascontiguousarray(h.pooled[roi].mean(0), np.float32)
    lo, hi = value_range(pooled)
    # the bins cover the RoI, or one feature cell where the RoI is smaller (roi_align's minimum)
    x0, y0 = float(bins_img[:, 0].min()), float(bins_img[:, 1].min())
    x1, y1 = float(bins_img[:, 2].max()), float(bins_img[:, 3].max())
    out.append(Heatmap("rois.pooled", pooled, (x0, y0, x1, y1), s["colormap"], op, lo, hi,
                       label=f"RoI {roi} pooled mean"))
    out += grid_layers("rois", g, op)
    out.append(Boxes("rois.selected", h.rois_image[roi:roi + 1], np.array([[255, 255, 0, int(255 * op)]], np.uint8),
                     width=2.0, labels=[f"RoI {roi} ({level_name})"], ids=np.array([roi])))
    ph, pw = h.output_size
    per_bin = len(pts_img) // max(ph * pw, 1)
    caption = (f"rois: {k} pooled to [{h.pooled.shape[1]}, {ph}, {pw}]; RoI {roi} from level {level_name}: "
               f"{pw}x{ph} bins (W x H), {len(pts_img)} sampling points ({per_bin} a bin), "
               f"RoIAlign scale 1/{1 / scale:g}")
    if stride is not None and (abs(stride[0] * scale - 1) > 1e-6 or abs(stride[1] * scale - 1) > 1e-6):
        caption += (f". Note: the feature stride is {stride[1]}x{stride[0]} px but MultiScaleRoIAlign samples "
                    f"at 1/{1 / scale:g} (a power of two it infers), so its grid and the feature cells drift "
                    f"apart by {abs(stride[1] * scale - 1) * 100:.0f}% of a cell per cell; the points are drawn "
                    f"where RoIAlign samples")
    return StageLayers("rois", out, caption, {"rois_boxes": h.rois_image, "rois_pooled": h.pooled[roi]})
