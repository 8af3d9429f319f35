"""What is under a point of the image, Qt-free: the box a click selects among the drawn layers
(``hit``), the hover readout (``readout``), the cell of a level under a point (``cell_at``), and
the class chart's bars (``top_classes``). The app passes image coordinates; tests call these
without a window."""

from __future__ import annotations

import numpy as np

from core.overlays.layers import Boxes
from core.overlays.selection import Selection, describe
from core.tracing.parts import Missing


def model_xy(tr, x: float, y: float) -> tuple[float, float]:
    sy, sx = tr.meta.scale
    return x * sx, y * sy


def cell_at(tr, stride, x: float, y: float) -> tuple[int, int]:
    """(row, col) of the cell whose anchors are centred nearest to image point (x, y): cell (r, c)
    is centred on (c * stride_x, r * stride_y) in the model frame."""
    mx, my = model_xy(tr, x, y)
    return int(np.floor(my / stride[0] + 0.5)), int(np.floor(mx / stride[1] + 0.5))


def _edge_distance(xy: np.ndarray, x: float, y: float) -> np.ndarray:
    """Distance from (x, y) to each box's outline."""
    dx_out = np.maximum(np.maximum(xy[:, 0] - x, x - xy[:, 2]), 0)
    dy_out = np.maximum(np.maximum(xy[:, 1] - y, y - xy[:, 3]), 0)
    outside = np.hypot(dx_out, dy_out)
    inside = np.minimum.reduce([x - xy[:, 0], xy[:, 2] - x, y - xy[:, 1], xy[:, 3] - y])
    return np.where((dx_out > 0) | (dy_out > 0), outside, inside)


def hit(stage_layers, x: float, y: float, tol: float = 3.0) -> Selection | None:
    """The box a click at (x, y) selects among ``stage_layers`` (StageLayers of the visible stages,
    in drawing order). A box whose outline passes within ``tol`` image pixels wins (the nearest
    outline: overlapping boxes are picked by their edges); otherwise the smallest box containing
    the point, boxes drawn opaque before faded ones. Faded (suppressed) boxes can be picked."""
    best_edge, best_area = None, None
    for order, sl in enumerate(stage_layers):
        for layer in sl.layers:
            if not isinstance(layer, Boxes) or layer.select is None or layer.ids is None or not len(layer.xyxy):
                continue
            xy = layer.xyxy.reshape(-1, 4).astype(np.float64)
            shown = layer.colours[:, 3] > 0
            d = _edge_distance(xy, x, y)
            for i in np.nonzero(shown & (d <= tol))[0]:
                key = (float(d[i]), -order)
                if best_edge is None or key < best_edge[0]:
                    best_edge = (key, Selection(layer.select, int(layer.ids[i])))
            inside = shown & (xy[:, 0] <= x) & (x <= xy[:, 2]) & (xy[:, 1] <= y) & (y <= xy[:, 3])
            for i in np.nonzero(inside)[0]:
                area = float((xy[i, 2] - xy[i, 0]) * (xy[i, 3] - xy[i, 1]))
                key = (bool(layer.colours[i, 3] < 200), area, -order)
                if best_area is None or key < best_area[0]:
                    best_area = (key, Selection(layer.select, int(layer.ids[i])))
    if best_edge is not None:
        return best_edge[1]
    return best_area[1] if best_area is not None else None


GRID_HINT = "cells are centred on anchor centres: the grid overhangs top/left by half a cell and ends half a cell short"


def readout(tr, settings: dict, x: float, y: float, under: Selection | None = None) -> str:
    """The hover line: image and model coordinates, the feature value and objectness of the cell
    under the point (or why there is no cell there), and the box under it."""
    parts = [f"x {x:.0f}, y {y:.0f}"]
    if tr is None:
        return parts[0]
    h, w = tr.meta.original_size
    if not (0 <= x < w and 0 <= y < h):
        return f"{parts[0]} (outside the {w}x{h} image)"
    mx, my = model_xy(tr, x, y)
    parts.append(f"model {mx:.0f}, {my:.0f}")
    fs = settings.get("features", {})
    fname = fs.get("level") if fs.get("level") in tr.features else next(iter(tr.features), None)
    f = tr.features.get(fname) if fname is not None else None
    if f is not None:
        r, c = cell_at(tr, f.stride, x, y)
        if 0 <= r < f.valid[0] and 0 <= c < f.valid[1]:
            from core.overlays.features import reduce

            try:
                red = fs.get("reduction", "mean")
                v = float(reduce(np.asarray(f.data[:, r:r + 1, c:c + 1]), red, int(fs.get("channel", 0)))[0, 0])
                parts.append(f"feature {fname} [{r},{c}] {v:.3g}")
            except (Missing, ValueError, IndexError):
                parts.append(f"feature {fname} [{r},{c}]")
        else:
            parts.append(f"no {fname} cell here ({GRID_HINT})")
    os_ = settings.get("objectness", {})
    lvl = os_.get("level") if os_.get("level") in tr.levels else (tr.levels[0] if tr.levels else None)
    if lvl is not None:
        i = tr.levels.index(lvl)
        a = tr.anchors[i]
        r, c = cell_at(tr, a.stride, x, y)
        vh, vw = a.valid(tr.meta)
        if 0 <= r < vh and 0 <= c < vw:
            logit = float(tr.rpn[i].objectness[:, r, c].max())
            parts.append(f"objectness {lvl} [{r},{c}] {1 / (1 + np.exp(-logit)):.3f}")
    if under is not None and under.kind == "truth":
        parts.append(truth_line(tr, under.index))
    elif under is not None:
        parts.append(describe(tr, under).split("; from")[0])
    return "   ".join(parts)


def truth_line(tr, i: int) -> str:
    """A truth object in a few words: its index, class and verdict."""
    t = tr.truth
    if t is None or not 0 <= i < len(t):
        return ""
    dg = tr.diagnosis
    verdict = dg.objects[i].verdict if dg is not None and i < len(dg.objects) else None
    return f"truth {i}: {t.names[i]}" + (f" ({verdict.replace('_', ' ')})" if verdict else "")


def top_classes(probs, names, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes (name, p), best first, and the rest summed as one bar."""
    probs = np.asarray(probs, np.float64)
    order = np.argsort(-probs, kind="stable")
    top = [(str(names[i]) if i < len(names) else f"class {i}", float(probs[i])) for i in order[:k]]
    rest = order[k:]
    if len(rest):
        top.append((f"{len(rest)} others", float(probs[rest].sum())))
    return top
