"""Where box labels go: whole, inside the drawing area, not on each other. Qt-free and in
whatever pixels the caller draws in (the export's image pixels, the app's screen pixels), so the
app and the export place labels by the same rule.

Each label tries, in order: above the box's top-left corner, inside it at the top-left, below it,
above its top-right corner, inside at the bottom-left, inside at the top-right, beside it right and
left, then stacked further above and below; each candidate is pushed inside the drawing area, and
the first that overlaps no label placed before it, and hides no labelled object, wins; where every
free spot covers some object, the one that hides the least of any object (a label inside a large box
hides little of it; on a small object it would hide most of it).
Labels are placed in priority order (the caller lists the most important first), every required
label before any optional one (the faded labels of suppressed boxes). A required label with no free
spot takes the least covered one; an optional one is then left out, and past the first
``MAX_OPTIONAL`` optional labels (hundreds of suppressed boxes) the rest are not tried. A stage shows
at most ``MAX_STAGE_LABELS`` labels (its most important) and says "+N more" for the rest."""

from __future__ import annotations

import numpy as np

from core.overlays.layers import Boxes, Lines

MAX_OPTIONAL = 60
MAX_STAGE_LABELS = 25  # required labels of one stage; the rest are one "+N more" label
MAX_STAGE_FADED = 15  # the faded labels of suppressed boxes, per stage
HIDDEN_OK = 0.05  # a label may cover this share of an object and still count as off it
MORE_COLOUR = (200, 200, 200, 255)


def _templates():
    """Candidate corners as coefficients: x = a . (x0, x1, w), y = b . (y0, y1, h)."""
    ax, by = [], []

    def add(x, y):
        ax.append(x)
        by.append(y)

    X0, X1, XL, XR = (1, 0, 0), (0, 1, -1), (1, 0, -1), (0, 1, 0)  # left-aligned, right-aligned, beside
    add(X0, (1, 0, -1)), add(X0, (1, 0, 0)), add(X0, (0, 1, 0)), add(X1, (1, 0, -1)), add(X0, (0, 1, -1))
    add(X1, (1, 0, 0)), add(XR, (1, 0, 0)), add(XL, (1, 0, 0)), add(X0, (1, 0, 1)), add(X1, (0, 1, 0))
    for k in range(1, 7):
        add(X0, (1, 0, -(k + 1))), add(X0, (0, 1, k)), add(XR, (1, 0, k)), add(XL, (1, 0, k)), add(XR, (1, 0, -k))
        add(XL, (1, 0, -k))
    return np.array(ax, np.float64), np.array(by, np.float64)


_AX, _BY = _templates()


def candidates(box, w: float, h: float) -> np.ndarray:
    """[C, 2] top-left corners to try for a w x h label of ``box``, best first: above its top-left
    corner, inside at the top-left, below, above the top-right corner, inside at the bottom-left,
    inside at the top-right, beside right and left, then stacked further out."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.stack([_AX @ np.array([x0, x1, w]), _BY @ np.array([y0, y1, h])], 1)


def place(boxes, sizes, area, optional=None, taken=None) -> np.ndarray:
    """[N, 4] label rectangles (x0, y0, x1, y1) for ``boxes`` [N, 4] with label ``sizes`` [N, 2]
    (w, h), in priority order, inside ``area`` (x0, y0, x1, y1); rows of dropped optional labels
    are NaN. ``taken``: rectangles already covered by other labels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    n = len(boxes)
    optional = np.zeros(n, bool) if optional is None else np.asarray(optional, bool)
    ax0, ay0, ax1, ay1 = (float(v) for v in area)
    extra = 0 if taken is None else len(taken)
    placed = np.zeros((n + extra, 4))
    if extra:
        placed[:extra] = np.asarray(taken, np.float64).reshape(-1, 4)
    k = extra
    out = np.full((n, 4), np.nan)
    objects = boxes[((boxes[:, 2] - boxes[:, 0]) > 1) & ((boxes[:, 3] - boxes[:, 1]) > 1)]  # not a line's point
    for i in [*np.nonzero(~optional)[0], *np.nonzero(optional)[0][:MAX_OPTIONAL]]:
        w, h = sizes[i]
        c = candidates(boxes[i], w, h)
        c[:, 0] = np.minimum(np.maximum(c[:, 0], ax0), max(ax1 - w, ax0))  # pushed inside the drawing area
        c[:, 1] = np.minimum(np.maximum(c[:, 1], ay0), max(ay1 - h, ay0))
        if k:
            p = placed[:k]
            ow = np.maximum(np.minimum(p[None, :, 2], c[:, None, 0] + w) - np.maximum(p[None, :, 0], c[:, None, 0]), 0)
            oh = np.maximum(np.minimum(p[None, :, 3], c[:, None, 1] + h) - np.maximum(p[None, :, 1], c[:, None, 1]), 0)
            cover = (ow * oh).sum(1)
        else:
            cover = np.zeros(len(c))
        free = np.nonzero(cover == 0)[0]
        if len(free):
            hidden = _hidden(c[free], w, h, objects)
            off = free[hidden <= HIDDEN_OK]
            j = int(off[0]) if len(off) else int(free[np.argmin(hidden)])
        elif optional[i]:
            continue
        else:
            j = int(np.argmin(cover))
        out[i] = (c[j, 0], c[j, 1], c[j, 0] + w, c[j, 1] + h)
        placed[k] = out[i]
        k += 1
    return out


def _hidden(corners: np.ndarray, w: float, h: float, objects: np.ndarray) -> np.ndarray:
    """[K] for label rectangles at ``corners`` [K, 2] of size w x h: the largest share of any object
    box it covers."""
    if not len(objects):
        return np.zeros(len(corners))
    ow = np.minimum(objects[None, :, 2], corners[:, None, 0] + w) - np.maximum(objects[None, :, 0], corners[:, None, 0])
    oh = np.minimum(objects[None, :, 3], corners[:, None, 1] + h) - np.maximum(objects[None, :, 1], corners[:, None, 1])
    area = (objects[:, 2] - objects[:, 0]) * (objects[:, 3] - objects[:, 1])
    return (np.maximum(ow, 0) * np.maximum(oh, 0) / area[None]).max(1)


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


def stage_labels(stage) -> list[tuple]:
    """(box xyxy in image pixels, text, colour RGBA, faded) of every label of one stage
    (``StageLayers``), most important first: its line labels (at their segments' midpoints), then its
    box labels, layers drawn later (on top) before earlier ones, later boxes first. The one place that
    decides a stage's labels: the window (gui.view.labels) and the export (render) both ask here."""
    out = []
    for layer in stage.layers:
        if isinstance(layer, Lines) and layer.labels:
            for seg, text, c in zip(np.asarray(layer.segments, np.float64).reshape(-1, 4), layer.labels, layer.colours):
                if text:
                    m = (seg[:2] + seg[2:]) / 2
                    out.append((np.array([m[0], m[1], m[0], m[1]]), text, tuple(int(v) for v in c), False))
    for layer in reversed(list(stage.layers)):
        if not isinstance(layer, Boxes) or not layer.labels:
            continue
        for i in range(len(layer.labels) - 1, -1, -1):
            text = layer.labels[i]
            if text and layer.colours[i, 3] > 0:
                out.append((layer.xyxy[i], text, tuple(int(v) for v in layer.colours[i]),
                            bool(layer.colours[i, 3] < 200)))
    return _capped(out)


def _capped(items: list[tuple]) -> list[tuple]:
    """The stage's most important labels (``MAX_STAGE_LABELS``, ``MAX_STAGE_FADED`` faded ones) and a
    "+N more" label where the first one left out would have gone."""
    solid = [it for it in items if not it[3]]
    faded = [it for it in items if it[3]]
    kept = solid[:MAX_STAGE_LABELS] + faded[:MAX_STAGE_FADED]
    rest = solid[MAX_STAGE_LABELS:] + faded[MAX_STAGE_FADED:]
    if rest:
        kept.append((rest[0][0], f"+{len(rest)} more", MORE_COLOUR, False))
    return kept


def labels_of(stages) -> list[tuple]:
    """The labels of several stages, to be placed together: the top (last drawn) stage's first, so a
    detection's label never gives way to a proposal's."""
    return [item for st in reversed(list(stages)) for item in stage_labels(st)]
