"""Colormaps as 256x3 uint8 RGB lookup tables, from OpenCV, so the GUI and the export agree."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

NAMES = {
    "viridis": cv2.COLORMAP_VIRIDIS, "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA, "turbo": cv2.COLORMAP_TURBO, "jet": cv2.COLORMAP_JET,
    "hot": cv2.COLORMAP_HOT, "cividis": cv2.COLORMAP_CIVIDIS, "twilight": cv2.COLORMAP_TWILIGHT,
}
GREY = "grey"


@cache
def lut(name: str) -> np.ndarray:
    """[256, 3] uint8 RGB."""
    ramp = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    if name in (GREY, "gray"):
        return np.repeat(ramp, 3, axis=1)
    if name not in NAMES:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(available())}")
    bgr = cv2.applyColorMap(ramp, NAMES[name]).reshape(256, 3)
    out = np.ascontiguousarray(bgr[:, ::-1])
    out.flags.writeable = False
    return out


def available() -> list[str]:
    return [*NAMES, GREY]


def colour(name: str, t: float) -> tuple[int, int, int]:
    """The colour at t in [0, 1]."""
    i = int(round(min(max(t, 0.0), 1.0) * 255))
    return tuple(int(v) for v in lut(name)[i])


# distinct class colours (RGB), Tableau-like
CLASS_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                 (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def class_colour(label: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[(int(label) - 1) % len(CLASS_COLOURS)]
