"""Helpers shared by the stage modules."""

from __future__ import annotations

import numpy as np

from core.errors import LensError


def pick_level(names, level, what: str) -> str:
    names = list(names)
    if level is None or level == "":
        return names[0]
    level = str(level)
    if level not in names:
        raise LensError(f"{what} level {level}", f"no such level; this model has {', '.join(names)}")
    return level


def anchor_level(levels, level):
    """(index, AnchorLevel) of ``level`` (a name; None or "" the first) among ``levels`` (a trace's
    or a training step's ``anchors``)."""
    names = [a.name for a in levels]
    i = names.index(pick_level(names, level, "anchor"))
    return i, levels[i]


def value_range(a: np.ndarray) -> tuple[float, float]:
    if a.size == 0:
        return 0.0, 1.0
    lo, hi = float(np.min(a)), float(np.max(a))
    if not np.isfinite(lo) or not np.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return lo, hi


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def best_cell(tr, i: int) -> tuple[int, int]:
    """(row, col) of the valid cell with the highest objectness (max over anchors) at level i."""
    a = tr.anchors[i]
    vh, vw = a.valid(tr.meta)
    obj = tr.rpn[i].objectness[:, :vh, :vw].max(0)
    r, c = np.unravel_index(int(np.argmax(obj)), obj.shape)
    return int(r), int(c)
