"""Lines -> one item painting all segments with cosmetic pens (labels: gui/view/labels.py)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPen


class LinesItem(pg.GraphicsObject):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        seg = layer.segments.reshape(-1, 4)
        if len(seg):
            x0, y0 = float(min(seg[:, 0].min(), seg[:, 2].min())), float(min(seg[:, 1].min(), seg[:, 3].min()))
            x1, y1 = float(max(seg[:, 0].max(), seg[:, 2].max())), float(max(seg[:, 1].max(), seg[:, 3].max()))
            self._bounds = QRectF(x0, y0, x1 - x0, y1 - y0)
        else:
            self._bounds = QRectF()
        self._margin = 0.0

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        px = self.pixelLength(pg.Point(1, 0))
        if px and abs(4 * px - self._margin) > 1e-3 * max(self._margin, 1e-9):  # zoomed: bounds change
            self.prepareGeometryChange()
            self._margin = 4 * px  # the cosmetic pen's width, in item units

    def boundingRect(self) -> QRectF:
        m = self._margin
        return self._bounds.adjusted(-m, -m, m, m)

    def paint(self, painter, *args) -> None:
        painter.setRenderHint(painter.RenderHint.Antialiasing, True)
        for s, c in zip(self.layer.segments.reshape(-1, 4), self.layer.colours):
            pen = QPen(QColor(int(c[0]), int(c[1]), int(c[2]), int(c[3])))
            pen.setCosmetic(True)
            pen.setWidthF(max(self.layer.width, 1.0))
            painter.setPen(pen)
            painter.drawLine(QLineF(float(s[0]), float(s[1]), float(s[2]), float(s[3])))


def make(layer):
    return LinesItem(layer)
