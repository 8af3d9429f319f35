"""features: one level's feature map as a heatmap (mean, max, l2 or one channel), padding cropped,
each cell centred on its anchors' centre."""

from __future__ import annotations

import numpy as np

from core.errors import LensError
from core.overlays._common import pick_level, value_range
from core.overlays.layers import Heatmap, StageLayers

GRID_NOTE = ("Each cell is centred on its anchors' centre (col x stride, row x stride), so the grid "
             "overhangs the top and left edges by half a cell and stops half a cell short of the bottom and "
             "right: by design, not a misalignment.")


def reduce(data: np.ndarray, reduction: str, channel: int = 0) -> np.ndarray:
    if reduction == "mean":
        return data.mean(0)
    if reduction == "max":
        return data.max(0)
    if reduction == "l2":
        return np.sqrt((data.astype(np.float32) ** 2).sum(0))
    if not 0 <= channel < data.shape[0]:
        raise LensError(f"features channel {channel}", f"out of range; this level has {data.shape[0]} channels")
    return data[channel]


def layers(tr, s: dict) -> StageLayers:
    name = pick_level(tr.features, s["level"], "feature")
    f = tr.features[name]
    vh, vw = f.valid
    c, h, w = f.data.shape
    if s["reduction"] == "channel" and not 0 <= int(s["channel"]) < c:
        raise LensError(f"features channel {int(s['channel'])}", f"out of range; this level has {c} channels")
    data = np.ascontiguousarray(reduce(f.data[:, :vh, :vw], s["reduction"], int(s["channel"])), np.float32)
    lo, hi = value_range(data)
    what = f"channel {int(s['channel'])}" if s["reduction"] == "channel" else f"{s['reduction']} over channels"
    caption = (f"features {name} ({f.kind}): {what} of [{c}, {h}, {w}], stride {f.stride[1]}x{f.stride[0]} px, "
               f"{vw}x{vh} cells on the image (W x H). {GRID_NOTE}")
    hm = Heatmap(f"features.{name}", data, f.cell_rect(tr.meta), s["colormap"], float(s["opacity"]), lo, hi,
                 label=f"features {name} {what}")
    return StageLayers("features", [hm], caption, {f"features_{name}": data})
