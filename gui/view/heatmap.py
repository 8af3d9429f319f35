"""Heatmap -> pg.ImageItem stretched over its image rectangle, with the core's colour table."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from core.colormaps import lut
from core.overlays.layers import fade_alpha


def make(layer):
    item = pg.ImageItem(axisOrder="row-major")
    item.setImage(layer.data, autoLevels=False, levels=(layer.vmin, layer.vmax))
    x0, y0, x1, y1 = layer.rect
    item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    if layer.fade:  # alpha in the table, as the export blends: the photo shows where the value is low
        alpha = np.round(fade_alpha(layer.opacity) * 255).astype(np.uint8)[:, None]
        item.setLookupTable(np.concatenate([lut(layer.colormap), alpha], 1))
    else:
        item.setLookupTable(lut(layer.colormap))
        item.setOpacity(layer.opacity)
    item.render()  # build the QImage now (rebuild time), not on the first paint (toggle time)
    return item
