"""Layer data -> pyqtgraph items, one module per layer type (a registry like napari's)."""

from __future__ import annotations

from core.overlays.layers import Boxes, Heatmap, Lines, Picture, Points, Raster, Text

from . import boxes, heatmap, lines, picture, points, raster, text

FACTORIES = {Heatmap: heatmap.make, Picture: picture.make, Boxes: boxes.make, Points: points.make, Text: text.make,
             Lines: lines.make, Raster: raster.make}


def make_item(layer):
    return FACTORIES[type(layer)](layer)
