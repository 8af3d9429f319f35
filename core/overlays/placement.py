"""Where box labels go: whole, inside the drawing area, not on each other. Qt-free and in
whatever pixels the caller draws in (the export's image pixels, the app's screen pixels), so the
app and the export place labels by the same rule.

Each label tries, in order: above the box's top-left corner, inside it at the top-left, below it,
above its top-right corner, inside at the bottom-left, inside at the top-right, beside it right and
left, then stacked further above and below; each candidate is pushed inside the drawing area, and
the first that overlaps no label placed before it wins.
Labels are placed in priority order (the caller lists the most important first). A label with no
free spot takes the least covered one, or is left out when it is ``optional`` (the faded labels
of suppressed boxes)."""

from __future__ import annotations

import numpy as np


def candidates(box, w: float, h: float) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = (float(v) for v in box)
    out = [(x0, y0 - h), (x0, y0), (x0, y1), (x1 - w, y0 - h), (x0, y1 - h), (x1 - w, y0), (x1, y0), (x0 - w, y0),
           (x0, y0 + h), (x1 - w, y1)]
    for k in range(1, 4):
        out += [(x0, y0 - h * (k + 1)), (x0, y1 + h * k), (x0, y0 + h * (k + 1))]
    return out


def place(boxes, sizes, area, optional=None, taken=None) -> np.ndarray:
    """[N, 4] label rectangles (x0, y0, x1, y1) for ``boxes`` [N, 4] with label ``sizes`` [N, 2]
    (w, h), in priority order, inside ``area`` (x0, y0, x1, y1); rows of dropped optional labels
    are NaN. ``taken``: rectangles already covered by other labels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    n = len(boxes)
    optional = np.zeros(n, bool) if optional is None else np.asarray(optional, bool)
    ax0, ay0, ax1, ay1 = (float(v) for v in area)
    placed = np.zeros((n + (0 if taken is None else len(taken)), 4))
    k = 0
    if taken is not None and len(taken):
        placed[:len(taken)] = np.asarray(taken, np.float64).reshape(-1, 4)
        k = len(taken)
    out = np.full((n, 4), np.nan)
    for i in range(n):
        w, h = sizes[i]
        best, best_cover = None, np.inf
        for cx, cy in candidates(boxes[i], w, h):
            x = min(max(cx, ax0), max(ax1 - w, ax0))
            y = min(max(cy, ay0), max(ay1 - h, ay0))
            if k:
                p = placed[:k]
                ow = np.clip(np.minimum(p[:, 2], x + w) - np.maximum(p[:, 0], x), 0, None)
                oh = np.clip(np.minimum(p[:, 3], y + h) - np.maximum(p[:, 1], y), 0, None)
                cover = float((ow * oh).sum())
            else:
                cover = 0.0
            if cover < best_cover:
                best, best_cover = (x, y), cover
                if cover == 0.0:
                    break
        if best_cover > 0.0 and optional[i]:
            continue
        out[i] = (best[0], best[1], best[0] + w, best[1] + h)
        placed[k] = out[i]
        k += 1
    return out


def ink(colour) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``colour``."""
    lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (0, 0, 0) if lum > 140 else (255, 255, 255)


FADED_BACKGROUND = (28, 28, 32)


def faded_text(colour) -> tuple[int, int, int]:
    """The text colour of a faded (suppressed) box's label: its own colour lightened, so it reads
    on the dark label background."""
    c = np.asarray(colour[:3], np.float64)
    return tuple(int(v) for v in np.clip(c + (255 - c) * 0.45, 0, 255))


def label_items(stage_layers, is_boxes) -> list[tuple]:
    """(box, text, colour RGBA, faded) of every label of a stage's box layers, most important
    first: layers drawn later (on top) before earlier ones; within a layer, later boxes first."""
    out = []
    for layer in reversed(list(stage_layers)):
        if not is_boxes(layer) or not layer.labels:
            continue
        for i in range(len(layer.labels) - 1, -1, -1):
            text = layer.labels[i]
            if text and layer.colours[i, 3] > 0:
                out.append((layer.xyxy[i], text, tuple(int(v) for v in layer.colours[i]),
                            bool(layer.colours[i, 3] < 200)))
    return out


def line_label_items(stage_layers, is_lines) -> list[tuple]:
    """Labels of a stage's line layers, each at its segment's midpoint."""
    out = []
    for layer in stage_layers:
        if is_lines(layer) and layer.labels:
            for (p, q), text, c in zip(layer.segments, layer.labels, layer.colours):
                if text:
                    m = (np.asarray(p, np.float64) + np.asarray(q, np.float64)) / 2
                    out.append((np.array([m[0], m[1], m[0], m[1]]), text, tuple(int(v) for v in c), False))
    return out
