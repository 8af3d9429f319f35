"""Points -> pg.ScatterPlotItem in screen-sized pixels (opaque brush, faded by item opacity:
translucent strokes are slow in Qt's raster engine)."""

from __future__ import annotations

import pyqtgraph as pg


def make(layer):
    c = layer.colour
    item = pg.ScatterPlotItem(pxMode=True, size=max(layer.size * 1.5, 2.0), pen=None,
                              brush=pg.mkBrush(c[0], c[1], c[2], 255))
    item.setOpacity(c[3] / 255.0)
    if len(layer.xy):
        item.setData(x=layer.xy[:, 0], y=layer.xy[:, 1])
    return item
