"""Picture (an RGB raster) -> pg.ImageItem over its rectangle."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF


def make(layer):
    item = pg.ImageItem(axisOrder="row-major")
    item.setImage(layer.rgb, autoLevels=False, levels=(0, 255))
    x0, y0, x1, y1 = layer.rect
    item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    item.setOpacity(layer.opacity)
    item.render()  # build the QImage now (rebuild time), not on the first paint (toggle time)
    return item
