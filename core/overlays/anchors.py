"""anchors: one level's cell centres as a grid and all anchors (sizes x ratios) of one cell,
by default the cell with the highest objectness."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.colormaps import colour
from core.errors import LensError
from core.overlays._common import anchor_level, best_cell
from core.overlays.layers import Boxes, Points, StageLayers

MAX_CENTRES = 10_000  # cell centres drawn at most; denser grids show every k-th row and column


def layers(tr, s: dict) -> StageLayers:
    w = getattr(tr, "anchor_whatif", None)
    if w is not None:  # a hypothetical generator: its anchors, the model's dashed beside them
        model = tr.anchors
        out = _layers(replace(tr, anchors=w.levels), s)
        i, a = anchor_level(model, s["level"])
        was = _cell_boxes(a, *_cell(tr, i, a, s), tr.meta)
        grey = np.tile(np.array([[200, 200, 200, int(200 * float(s["opacity"]))]], np.uint8), (len(was), 1))
        layers_ = [*out.layers[:2], Boxes(f"anchors.{model[i].name}.model_cell", was.astype(np.float32), grey,
                                           width=1.0, dashed=np.ones(len(was), bool)), *out.layers[2:]]
        return StageLayers("anchors", layers_, f"{out.caption}; the model's own anchors of the cell dashed grey. "
                                               f"{w.caption()}", out.tensors)
    return _layers(tr, s)


def _layers(tr, s: dict) -> StageLayers:
    i, a = anchor_level(tr.anchors, s["level"])
    m = tr.meta
    sy, sx = m.scale
    vh, vw = a.valid(m)
    step = max(int(np.ceil(np.sqrt(vh * vw / MAX_CENTRES))), 1)  # a readable grid, not a grey carpet
    rows, cols = np.mgrid[0:vh:step, 0:vw:step]
    centres = np.stack([cols.ravel() * a.stride[1] / sx, rows.ravel() * a.stride[0] / sy], 1).astype(np.float32)
    r, c = _cell(tr, i, a, s)
    boxes = _cell_boxes(a, r, c, m)
    n = a.per_cell
    cols_ = np.array([(*colour("turbo", 0.1 + 0.8 * k / max(n - 1, 1)), 255) for k in range(n)], np.uint8)
    labels = []
    for k in range(n):
        size, ratio = a.describe_anchor(k)
        labels.append(f"size {size:g}, h/w {ratio:g}")
    op = float(s["opacity"])
    cols_[:, 3] = int(255 * op)
    count = f"{a.grid[1]}x{a.grid[0]} cells (W x H) x {n} anchors = {a.count}"
    cx, cy = c * a.stride[1] / sx, r * a.stride[0] / sy
    return StageLayers("anchors", [
        Points(f"anchors.{a.name}.centres", centres, (255, 255, 255, int(170 * op)), size=2.0),
        Points(f"anchors.{a.name}.cell", np.array([[cx, cy]], np.float32), (255, 0, 255, int(255 * op)), size=6.0),
        Boxes(f"anchors.{a.name}.cell_anchors", boxes.astype(np.float32), cols_, width=1.5, labels=labels),
    ], f"anchors {a.name}: {count}, stride {a.stride[1]}x{a.stride[0]} px; cell (row {r}, col {c}) and its "
       f"{n} anchors (size, ratio)" + (f"; centres of every {step}th row and column" if step > 1 else ""),
        {f"anchors_{a.name}_cell": boxes, f"anchors_{a.name}_centres": centres})


def _cell(tr, i: int, a, s: dict) -> tuple[int, int]:
    """(row, col) of the cell the stage shows on level ``i``: the settings', else the best."""
    if s["cell"] is None:
        return best_cell(tr, i)
    r, c = (int(v) for v in s["cell"])
    if not (0 <= r < a.grid[0] and 0 <= c < a.grid[1]):
        raise LensError(f"anchor cell {r},{c}", f"outside the {a.grid[0]}x{a.grid[1]} grid of level {a.name}")
    return r, c


def _cell_boxes(a, r: int, c: int, m) -> np.ndarray:
    """The cell's anchors in original pixels: the generator's cell anchors shifted to the cell, as
    ``AnchorGenerator.grid_anchors`` shifts them, then to the image's frame."""
    sy, sx = m.scale
    shift = np.array([c * a.stride[1], r * a.stride[0]] * 2, np.float32)
    return ((a.cell_anchors + shift) / np.array([sx, sy, sx, sy], np.float32)).astype(np.float32)
