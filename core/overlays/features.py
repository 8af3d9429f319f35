"""features: one level's feature map as a heatmap (mean, max, l2 or one channel), padding cropped,
each cell centred on its anchors' centre."""

from __future__ import annotations

import numpy as np

from ..errors import LensError
from ._common import pick_level, value_range
from .layers import Heatmap, StageLayers


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
    data = np.ascontiguousarray(reduce(f.data[:, :vh, :vw], s["reduction"], int(s["channel"])), np.float32)
    lo, hi = value_range(data)
    what = f"channel {int(s['channel'])}" if s["reduction"] == "channel" else s["reduction"]
    caption = f"features {name} ({f.kind}): {what} of {f.data.shape[0]}x{f.data.shape[1]}x{f.data.shape[2]}, " \
              f"stride {f.stride[1]}, {vh}x{vw} cells on the image"
    hm = Heatmap(f"features.{name}", data, f.cell_rect(tr.meta), s["colormap"], float(s["opacity"]), lo, hi,
                 label=f"features {name} {what}")
    return StageLayers("features", [hm], caption, {f"features_{name}": data})
