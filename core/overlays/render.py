"""Layer data -> an RGB raster with OpenCV (headless export). The photo keeps its own size and
position; an optional legend (model, weights, settings, captions, colour bars) goes below it.

Coordinates are continuous, as in the app: pixel (col j, row i) covers x in [j, j+1), y in [i, i+1).
OpenCV draws on pixel centres, so lines and dots are shifted by half a pixel on their way in: a
box edge at x = 10 straddles pixels 9 and 10, exactly where the app and the heatmaps put it.
Labels are placed after all layers, together, by core.overlays.placement (whole, inside the
image, not on each other)."""

from __future__ import annotations

import cv2
import numpy as np

from core.colormaps import lut
from core.overlays.layers import HALO, Boxes, Heatmap, Lines, Picture, Points, Raster, StageLayers, Text, fade_alpha
from core.overlays.placement import FADED_BACKGROUND, faded_text, ink, labels_of, place

FONT = cv2.FONT_HERSHEY_SIMPLEX
SHIFT = 4
ONE = 1 << SHIFT


def _fx(v: float) -> int:
    """A continuous coordinate -> OpenCV's fixed-point pixel-centre coordinate."""
    return int(round((float(v) - 0.5) * ONE))


def _blend_region(canvas: np.ndarray, colour_img: np.ndarray, x0: int, y0: int, alpha: float) -> None:
    """canvas[y0:, x0:] <- blend with colour_img (clipped to the canvas)."""
    H, W = canvas.shape[:2]
    h, w = colour_img.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, W), min(y0 + h, H)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    src = colour_img[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    dst = canvas[cy0:cy1, cx0:cx1]
    if alpha >= 1.0:
        dst[...] = src
    else:
        cv2.addWeighted(src, float(alpha), dst, 1.0 - float(alpha), 0.0, dst=dst)


def _raster(rgb: np.ndarray, rect, interp) -> tuple[np.ndarray, int, int]:
    x0, y0, x1, y1 = rect
    ix0, iy0 = int(round(x0)), int(round(y0))
    w, h = max(int(round(x1)) - ix0, 1), max(int(round(y1)) - iy0, 1)
    return cv2.resize(rgb, (w, h), interpolation=interp), ix0, iy0


def heatmap_rgb(layer: Heatmap) -> np.ndarray:
    span = max(layer.vmax - layer.vmin, 1e-12)
    idx = np.clip((layer.data - layer.vmin) * (255.0 / span), 0, 255).astype(np.uint8)
    return lut(layer.colormap)[idx]


def cell_index(n_cells: int, lo: float, hi: float, n_pixels: int) -> tuple[int, np.ndarray]:
    """For the pixels whose centres fall inside [lo, hi): (first pixel, cell index of each)."""
    first = max(int(np.ceil(lo - 0.5)), 0)
    last = min(int(np.ceil(hi - 0.5)), n_pixels)  # exclusive
    if last <= first:
        return first, np.zeros(0, np.int64)
    centres = np.arange(first, last, dtype=np.float64) + 0.5
    idx = np.floor((centres - lo) * (n_cells / (hi - lo))).astype(np.int64)
    return first, np.clip(idx, 0, n_cells - 1)


def draw_heatmap(canvas, layer: Heatmap) -> None:
    """Each cell fills exactly the pixels whose centres lie in its rectangle (nearest, no blur)."""
    if layer.data.size == 0 or layer.opacity <= 0:
        return
    x0, y0, x1, y1 = layer.rect
    h, w = layer.data.shape
    fx, cols = cell_index(w, x0, x1, canvas.shape[1])
    fy, rows = cell_index(h, y0, y1, canvas.shape[0])
    if len(cols) == 0 or len(rows) == 0:
        return
    span = max(layer.vmax - layer.vmin, 1e-12)
    idx = np.clip((layer.data - layer.vmin) * (255.0 / span), 0, 255).astype(np.uint8)
    # upsample the 1-channel index (runs of equal cells), then colour with one table lookup
    big = np.repeat(np.repeat(idx, np.bincount(rows, minlength=h), axis=0), np.bincount(cols, minlength=w), axis=1)
    img = cv2.LUT(cv2.merge([big, big, big]), lut(layer.colormap).reshape(256, 1, 3))
    if layer.fade:  # alpha per pixel from the value: the photo shows through where the map is low
        dst = canvas[fy:fy + img.shape[0], fx:fx + img.shape[1]]
        a = fade_alpha(layer.opacity)[big[:dst.shape[0], :dst.shape[1]]][..., None]
        dst[...] = np.round(dst * (1.0 - a) + img[:dst.shape[0], :dst.shape[1]] * a).astype(np.uint8)
        return
    _blend_region(canvas, img, fx, fy, layer.opacity)


def draw_picture(canvas, layer: Picture) -> None:
    if layer.opacity <= 0:
        return
    x0, y0, x1, y1 = layer.rect
    up = (x1 - x0) >= layer.rgb.shape[1]  # enlarging: nearest shows the network's pixels as they are
    img, x0, y0 = _raster(layer.rgb, layer.rect, cv2.INTER_NEAREST if up else cv2.INTER_AREA)
    _blend_region(canvas, img, x0, y0, layer.opacity)


def _label_scale(canvas) -> float:
    return float(np.clip(min(canvas.shape[:2]) / 1300.0, 0.4, 1.0))  # about the window's 9 pt over the photo


def _put_label(canvas, text: str, x: float, y: float, colour, scale: float, above: bool = True) -> None:
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    x = int(np.clip(x, 0, max(canvas.shape[1] - tw - 4, 0)))
    y = int(y)
    top = y - th - base - 4 if above else y
    if top < 0:
        top = y if above else 0
    cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 4), tuple(int(c) for c in colour[:3]), -1)
    lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if lum > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + 2, top + th + 2), FONT, scale, ink, 1, cv2.LINE_AA)


def _dash_segments(boxes: np.ndarray, dash: float = 6.0) -> np.ndarray:
    """[M, 2, 2] int32 dash segments (SHIFT fixed point) of all rectangles [N, 4] (x1, y1, x2, y2),
    vectorized: one polylines call draws them all."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    edges = np.concatenate([np.stack(e, 1) for e in ((x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2),
                                                      (x1, y2, x1, y1))]).astype(np.float64)
    a, b = edges[:, :2], edges[:, 2:]
    length = np.maximum(np.abs(b - a).max(1), 1.0)
    step = 2 * dash * ONE
    counts = np.ceil(length / step).astype(np.int64)
    edge = np.repeat(np.arange(len(edges)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    t0 = k * step / length[edge]
    t1 = np.minimum(t0 + dash * ONE / length[edge], 1.0)
    d = (b - a)[edge]
    p0 = a[edge] + d * t0[:, None]
    p1 = a[edge] + d * t1[:, None]
    return np.stack([p0, p1], 1).astype(np.int32)


def _groups(alphas: np.ndarray):
    for a in np.unique(alphas):
        yield int(a), np.nonzero(alphas == a)[0]


def _bbox(xyxy: np.ndarray, pad: int, shape) -> tuple[int, int, int, int]:
    H, W = shape[:2]
    x0 = int(max(np.floor(xyxy[:, 0].min()) - pad, 0))
    y0 = int(max(np.floor(xyxy[:, 1].min()) - pad, 0))
    x1 = int(min(np.ceil(xyxy[:, 2].max()) + pad, W))
    y1 = int(min(np.ceil(xyxy[:, 3].max()) + pad, H))
    return x0, y0, x1, y1


def draw_boxes(canvas, layer: Boxes) -> None:
    n = len(layer.xyxy)
    if n == 0:
        return
    t = _thickness(canvas, layer.width)
    for alpha, idx in _groups(layer.colours[:, 3]):
        if alpha == 0:
            continue
        x0, y0, x1, y1 = _bbox(layer.xyxy[idx], t + 2, canvas.shape)
        if x1 <= x0 or y1 <= y0:
            continue
        region = canvas[y0:y1, x0:x1]
        work = region if alpha >= 255 else region.copy()
        dashed = np.zeros(len(layer.xyxy), bool) if layer.dashed is None else layer.dashed
        fixed = np.round((layer.xyxy - np.array([x0, y0, x0, y0], np.float32) - 0.5) * ONE).astype(np.int64)
        line = cv2.LINE_AA if alpha >= 255 else cv2.LINE_8  # faded boxes: antialiasing is invisible
        if alpha >= 255:  # a dark halo under the solid boxes: visible on any background (the window's too)
            for i in idx[~dashed[idx]]:
                cv2.rectangle(work, (int(fixed[i, 0]), int(fixed[i, 1])), (int(fixed[i, 2]), int(fixed[i, 3])),
                              HALO, t + 2, line, SHIFT)
        for i in idx[~dashed[idx]]:
            col = tuple(int(c) for c in layer.colours[i, :3])
            cv2.rectangle(work, (int(fixed[i, 0]), int(fixed[i, 1])), (int(fixed[i, 2]), int(fixed[i, 3])),
                          col, t, line, SHIFT)
        d_idx = idx[dashed[idx]]
        if len(d_idx):
            cols = layer.colours[d_idx, :3]
            for col in np.unique(cols, axis=0):
                same = d_idx[(cols == col).all(1)]
                cv2.polylines(work, _dash_segments(fixed[same]), False, tuple(int(c) for c in col), t,
                              cv2.LINE_8, SHIFT)  # thin faded dashes: antialiasing buys nothing here
        if work is not region:
            cv2.addWeighted(work, alpha / 255.0, region, 1 - alpha / 255.0, 0.0, dst=region)


def draw_points(canvas, layer: Points) -> None:
    if len(layer.xy) == 0 or layer.colour[3] == 0:
        return
    r = max(int(round(layer.size * max(min(canvas.shape[:2]) / 800.0, 1.0) / 2)), 1)
    pad = r + 2
    xy = layer.xy
    x0, y0, x1, y1 = _bbox(np.concatenate([xy, xy], 1), pad, canvas.shape)
    if x1 <= x0 or y1 <= y0:
        return
    region = canvas[y0:y1, x0:x1]
    work = region if layer.colour[3] >= 255 else region.copy()
    col = tuple(int(c) for c in layer.colour[:3])
    if r <= 2:  # small dots: a filled disc stamped with numpy, no per-point call
        dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
        keep = dx * dx + dy * dy <= r * r + r
        cx = np.floor(xy[:, 0] - x0).astype(np.int64)[:, None] + dx[keep][None, :]
        cy = np.floor(xy[:, 1] - y0).astype(np.int64)[:, None] + dy[keep][None, :]
        ok = (cx >= 0) & (cx < work.shape[1]) & (cy >= 0) & (cy < work.shape[0])
        work[cy[ok], cx[ok]] = col
    else:
        for x, y in xy:
            cv2.circle(work, (_fx(x - x0), _fx(y - y0)), r * ONE, col, -1, cv2.LINE_AA, SHIFT)
    if work is not region:
        a = layer.colour[3] / 255.0
        cv2.addWeighted(work, a, region, 1 - a, 0.0, dst=region)


def _thickness(canvas, width: float) -> int:
    return max(int(round(width * max(min(canvas.shape[:2]) / 800.0, 1.0))), 1)


def draw_lines(canvas, layer: Lines) -> None:
    if len(layer.segments) == 0:
        return
    t = _thickness(canvas, layer.width)
    fixed = np.round((np.asarray(layer.segments, np.float64).reshape(-1, 4) - 0.5) * ONE).astype(np.int64)
    for alpha, idx in _groups(layer.colours[:, 3]):
        if alpha == 0:
            continue
        work = canvas if alpha >= 255 else canvas.copy()
        for i in idx:
            cv2.line(work, (int(fixed[i, 0]), int(fixed[i, 1])), (int(fixed[i, 2]), int(fixed[i, 3])),
                     tuple(int(c) for c in layer.colours[i, :3]), t, cv2.LINE_AA, SHIFT)
        if work is not canvas:
            cv2.addWeighted(work, alpha / 255.0, canvas, 1 - alpha / 255.0, 0.0, dst=canvas)


def draw_text(canvas, layer: Text) -> None:
    scale = _label_scale(canvas)
    for x, y, s in layer.items:
        _put_label(canvas, s, x, y, layer.background, scale, above=False)


def draw_labels(canvas, stages: list[StageLayers]) -> None:
    """Every box and line label of the stages, placed together: later stages first."""
    items = labels_of(stages)
    if not items:
        return
    scale = _label_scale(canvas)
    sizes = []
    for _, text, _, _ in items:
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        sizes.append((tw + 6, th + base + 4))
    H, W = canvas.shape[:2]
    rects = place([b for b, *_ in items], sizes, (0, 0, W, H), optional=[f for *_, f in items])
    for (_, text, colour, faded), r in zip(items, rects):
        if np.isnan(r[0]):
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in r)
        bg = FADED_BACKGROUND if faded else colour[:3]
        fg = faded_text(colour) if faded else ink(colour)
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), tuple(int(v) for v in bg), -1)
        (_, th), _ = cv2.getTextSize(text, FONT, scale, 1)
        cv2.putText(canvas, text, (x0 + 3, y0 + th + 2), FONT, scale, fg, 1, cv2.LINE_AA)


def draw_raster(canvas, layer: Raster) -> None:
    """Per-pixel alpha blend; each raster pixel fills the canvas pixels whose centres lie in it."""
    if layer.opacity <= 0 or layer.rgba.size == 0:
        return
    x0, y0, x1, y1 = layer.rect
    h, w = layer.rgba.shape[:2]
    fx, cols = cell_index(w, x0, x1, canvas.shape[1])
    fy, rows = cell_index(h, y0, y1, canvas.shape[0])
    if len(cols) == 0 or len(rows) == 0:
        return
    src = layer.rgba[rows[:, None], cols[None, :]]
    dst = canvas[fy:fy + len(rows), fx:fx + len(cols)]
    a = src[..., 3:4].astype(np.float32) * (float(layer.opacity) / 255.0)
    hit = a[..., 0] > 0
    dst[hit] = (dst[hit] * (1.0 - a[hit]) + src[..., :3][hit] * a[hit] + 0.5).astype(np.uint8)


DRAW = {Heatmap: draw_heatmap, Picture: draw_picture, Boxes: draw_boxes, Points: draw_points, Text: draw_text,
        Lines: draw_lines, Raster: draw_raster}


def render(image: np.ndarray, stages: list[StageLayers], legend: list[str] | None = None) -> np.ndarray:
    """Draw the stages (bottom to top, in the given order) on a copy of ``image`` (RGB uint8),
    then their labels. With ``legend``, lines of text and a colour bar per heatmap are added below
    the photo."""
    canvas = np.ascontiguousarray(image.copy())
    for st in stages:
        for layer in st.layers:
            DRAW[type(layer)](canvas, layer)
    draw_labels(canvas, stages)
    if legend is None:
        return canvas
    bars = [lay for st in stages for lay in st.layers if isinstance(lay, Heatmap) and lay.colorbar]
    return np.vstack([canvas, legend_panel(canvas.shape[1], legend, bars)])


def legend_panel(width: int, lines: list[str], bars: list[Heatmap]) -> np.ndarray:
    scale = 0.45
    (_, th), base = cv2.getTextSize("Ag", FONT, scale, 1)
    lh = th + base + 6
    wrapped = []
    for line in lines:
        words, cur = line.split(" "), ""
        for word in words:
            cand = f"{cur} {word}" if cur else word
            if cur and cv2.getTextSize(cand, FONT, scale, 1)[0][0] > width - 12:
                wrapped.append(cur)
                cur = "    " + word
            else:
                cur = cand
        wrapped.append(cur)
    bar_h = 14
    height = 8 + lh * len(wrapped) + (len(bars) * (bar_h + lh + 6)) + 6
    panel = np.full((height, width, 3), 32, np.uint8)
    y = 8
    for line in wrapped:
        cv2.putText(panel, line, (6, y + th), FONT, scale, (235, 235, 235), 1, cv2.LINE_AA)
        y += lh
    for bar in bars:
        cv2.putText(panel, bar.label or bar.name, (6, y + th), FONT, scale, (235, 235, 235), 1, cv2.LINE_AA)
        y += lh
        bw = max(min(width - 140, 400), 40)
        ramp = lut(bar.colormap)[np.linspace(0, 255, bw).astype(np.uint8)]
        panel[y:y + bar_h, 60:60 + bw] = ramp[None, :, :]
        cv2.putText(panel, f"{bar.vmin:.3g}", (4, y + bar_h - 2), FONT, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
        cv2.putText(panel, f"{bar.vmax:.3g}", (64 + bw, y + bar_h - 2), FONT, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
        y += bar_h + 6
    return panel
