"""Points -> one item that paints all dots with a single drawPoints call (a round cosmetic pen of
the dot's screen size). Ten thousand anchor centres cost a few milliseconds to build, not the tens
a scatter plot's per-spot bookkeeping takes. Opaque pen, faded by item opacity: translucent
strokes are slow in Qt's raster engine."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph import functions as fn
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen


class PointsItem(pg.GraphicsObject):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        xy = np.asarray(layer.xy, np.float64).reshape(-1, 2)
        self._poly = fn.create_qpolygonf(len(xy))
        if len(xy):
            fn.ndarray_from_qpolygonf(self._poly)[:] = xy
            self._box = QRectF(float(xy[:, 0].min()), float(xy[:, 1].min()), float(np.ptp(xy[:, 0])),
                               float(np.ptp(xy[:, 1])))
        else:
            self._box = QRectF()
        c = layer.colour
        self._pen = QPen(QColor(int(c[0]), int(c[1]), int(c[2])))
        self._pen.setCosmetic(True)
        self._pen.setWidthF(max(layer.size * 1.5, 2.0))
        self._pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.setOpacity(c[3] / 255.0)
        self._margin = 0.0

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        px = self.pixelLength(pg.Point(1, 0))
        if px and abs(self._pen.widthF() * px - self._margin) > 1e-3 * max(self._margin, 1e-9):  # zoomed: bounds change
            self.prepareGeometryChange()
            self._margin = self._pen.widthF() * px

    def boundingRect(self) -> QRectF:
        m = self._margin
        return self._box.adjusted(-m, -m, m, m)

    def paint(self, painter, *args) -> None:
        if len(self._poly):
            painter.setRenderHint(painter.RenderHint.Antialiasing, len(self._poly) < 2000)
            painter.setPen(self._pen)
            painter.drawPoints(self._poly)


def make(layer):
    return PointsItem(layer)
