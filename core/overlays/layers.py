"""Layer data: what one stage draws, in original-image pixels. No Qt, no torch.

The GUI turns each layer into a pyqtgraph item (gui/view/); the export rasterizes the same layers
with OpenCV (core/overlays/render.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in original pixels
RGBA = tuple[int, int, int, int]


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Heatmap:
    name: str
    data: np.ndarray  # [h, w] float32, row 0 at the top
    rect: Rect  # the image area the whole array covers
    colormap: str = "viridis"
    opacity: float = 0.6
    vmin: float = 0.0
    vmax: float = 1.0
    label: str = ""  # what the values are, for the colour bar
    colorbar: bool = True
    fade: bool = False  # low values fade into the photo (alpha follows the value): a sparse map over the image


def fade_alpha(opacity: float) -> np.ndarray:
    """[256] the alpha (0..1) of each colour-table index of a fading heatmap: the photo shows where the
    value is low (the window's lookup table and the export blend with this same ramp)."""
    return float(opacity) * np.sqrt(np.linspace(0.0, 1.0, 256))


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Picture:
    """An RGB raster stretched over ``rect`` (the network's input, de-normalized)."""

    name: str
    rgb: np.ndarray  # [h, w, 3] uint8
    rect: Rect
    opacity: float = 1.0


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Boxes:
    name: str
    xyxy: np.ndarray  # [N, 4] float32
    colours: np.ndarray  # [N, 4] uint8 RGBA
    width: float = 2.0
    dashed: np.ndarray | None = None  # [N] bool
    labels: list[str] | None = None
    ids: np.ndarray | None = None  # [N] an index the GUI reports on hover/click (e.g. detection j)
    select: str | None = None  # what a click on a box selects: core.overlays.selection kind of its id


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Points:
    name: str
    xy: np.ndarray  # [N, 2] float32
    colour: RGBA = (255, 255, 255, 200)
    size: float = 3.0


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Lines:
    """Straight segments, e.g. from a positive anchor to the object it was matched to, or a selected
    box's path from its anchor; an optional label at each midpoint (a suppressed box's IoU with the
    box that suppressed it)."""

    name: str
    segments: np.ndarray  # [N, 4] float32: x0, y0, x1, y1 in original pixels
    colours: np.ndarray  # [N, 4] uint8 RGBA
    width: float = 1.0
    labels: list[str] | None = None


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Text:
    name: str
    items: list[tuple[float, float, str]]  # x, y (top-left, original pixels), text
    colour: RGBA = (255, 255, 255, 255)
    background: RGBA = (0, 0, 0, 160)


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class Raster:
    """An RGBA raster with per-pixel alpha stretched over ``rect`` (instance masks: one raster
    pixel per original pixel). Drawn with nearest neighbour; ``opacity`` scales the alpha."""

    name: str
    rgba: np.ndarray  # [h, w, 4] uint8
    rect: Rect
    opacity: float = 1.0


HALO = (16, 16, 20)  # the dark outline under solid boxes (export and window alike)


@dataclass(frozen=True, eq=False)
class StageLayers:
    """Everything one stage draws, bottom to top, plus a caption for the legend (the app's legend
    area and the export's legend show it; nothing is written over the photo)."""

    stage: str
    layers: list = field(default_factory=list)
    caption: str = ""
    tensors: dict = field(default_factory=dict)  # arrays the layers show, for --npz


def rgba(rgb, alpha: int = 255) -> RGBA:
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]), int(alpha))


def colour_array(colours: list, n: int | None = None) -> np.ndarray:
    arr = np.asarray(colours, np.uint8).reshape(-1, 4)
    if n is not None and len(arr) == 1 and n != 1:
        arr = np.repeat(arr, n, axis=0)
    return arr
