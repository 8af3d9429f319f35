"""objectness: one level's RPN objectness, one anchor or the max over anchors, probability or
logit, with a colour bar."""

from __future__ import annotations

import numpy as np

from core.errors import LensError
from core.overlays._common import anchor_level, sigmoid, value_range
from core.overlays.features import GRID_NOTE
from core.overlays.layers import Heatmap, StageLayers
from core.tracing.types import grid_rect


def layers(tr, s: dict) -> StageLayers:
    i, a = anchor_level(tr.anchors, s["level"])
    vh, vw = a.valid(tr.meta)
    logits = tr.rpn[i].objectness[:, :vh, :vw]
    if s["anchor"] is None:
        data, which = logits.max(0), "max over anchors"
    else:
        k = int(s["anchor"])
        if not 0 <= k < a.per_cell:
            raise LensError(f"objectness anchor {k}", f"out of range; level {a.name} has {a.per_cell} anchors a cell")
        size, ratio = a.describe_anchor(k)
        data, which = logits[k], f"anchor {k} (size {size:g}, ratio {ratio:g})"
    data = np.ascontiguousarray(data, np.float32)
    if s["mode"] == "prob":
        data, (lo, hi), unit = sigmoid(data).astype(np.float32), (0.0, 1.0), "probability"
    else:
        (lo, hi), unit = value_range(data), "logit"
    hm = Heatmap(f"objectness.{a.name}", data, grid_rect((vh, vw), a.stride, tr.meta), s["colormap"],
                 float(s["opacity"]), lo, hi, label=f"objectness {a.name} {unit}")
    return StageLayers("objectness", [hm], f"objectness {a.name}: {which}, {unit}, {vw}x{vh} cells (W x H), "
                       f"stride {a.stride[1]}x{a.stride[0]} px. {GRID_NOTE}",
                       {f"objectness_{a.name}": data})
