"""Heatmap -> pg.ImageItem stretched over its image rectangle, with the core's colour table."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF

from core.colormaps import lut


def make(layer):
    item = pg.ImageItem(axisOrder="row-major")
    item.setImage(layer.data, autoLevels=False, levels=(layer.vmin, layer.vmax))
    item.setLookupTable(lut(layer.colormap))
    x0, y0, x1, y1 = layer.rect
    item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    item.setOpacity(layer.opacity)
    item.render()  # build the QImage now (rebuild time), not on the first paint (toggle time)
    return item
