"""input: the image as the network sees it (resized, normalized; shown de-normalized), with the
padding of the batch marked and the scale written."""

from __future__ import annotations

import numpy as np

from core.overlays.layers import Boxes, Picture, StageLayers, colour_array

_CACHE: dict = {}


def denormalized(m) -> np.ndarray:
    """The network's input tensor back to HxWx3 uint8 RGB (cached for the last trace)."""
    key = id(m.input)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is m.input:
        return hit[1]
    data = np.asarray(m.input)  # a withheld input raises core.tracing.parts.Missing: fetch it
    mean = np.asarray(m.image_mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(m.image_std, np.float32).reshape(3, 1, 1)
    rgb = np.clip((data * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    rgb = np.ascontiguousarray(rgb)
    _CACHE.clear()
    _CACHE[key] = (m.input, rgb)
    return rgb


def layers(tr, s: dict) -> StageLayers:
    m = tr.meta
    rgb = denormalized(m)
    sy, sx = m.scale
    bh, bw = m.batch_size
    rh, rw = m.resized_size
    batch_rect = (0.0, 0.0, bw / sx, bh / sy)
    resized = (0.0, 0.0, rw / sx, rh / sy)
    boxes = Boxes("input.frames", np.array([batch_rect, resized], np.float32),
                  colour_array([(255, 255, 0, 255), (0, 255, 255, 200)]), width=2.0,
                  dashed=np.array([True, False]), labels=[f"padded batch {bw}x{bh}", ""])
    caption = (f"input: {m.original_size[1]}x{m.original_size[0]} -> resized {rw}x{rh} "
               f"(scale {sx:.3f}), padded to {bw}x{bh} (W x H); shown de-normalized")
    return StageLayers("input", [Picture("input.image", rgb, batch_rect, float(s["opacity"])), boxes],
                       caption, {"input": m.input})
