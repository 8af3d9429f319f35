"""Raster (RGBA with per-pixel alpha, e.g. instance masks) -> pg.ImageItem over its rectangle,
nearest-neighbour like the export (each raster pixel fills the pixels whose centres lie in it)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF


def make(layer):
    item = pg.ImageItem(axisOrder="row-major")
    item.setImage(layer.rgba, autoLevels=False, levels=(0, 255))
    x0, y0, x1, y1 = layer.rect
    item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    item.setOpacity(layer.opacity)
    item.render()  # build the QImage now (rebuild time), not on the first paint (toggle time)
    return item
