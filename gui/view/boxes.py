"""Boxes -> one item that paints all rectangles with cosmetic pens (dashed where asked). Labels
are their own item (gui/view/labels.py), placed on screen and never faded with the boxes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen

from core.overlays.layers import HALO


class BoxesItem(pg.GraphicsObject):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        xy = layer.xyxy.reshape(-1, 4)
        if len(xy):
            x0, y0 = float(xy[:, 0].min()), float(xy[:, 1].min())
            x1, y1 = float(xy[:, 2].max()), float(xy[:, 3].max())
            self._box = QRectF(x0, y0, x1 - x0, y1 - y0)
        else:
            self._box = QRectF()
        self._margin = 2.0
        self._pen_groups = None
        # Qt's raster engine strokes translucent lines ~30x slower than opaque ones: when the
        # whole layer shares one alpha, paint opaque and let the item's opacity fade it (one blit)
        alphas = np.unique(layer.colours[:, 3]) if len(layer.colours) else np.array([255])
        self._shared_alpha = len(alphas) == 1 and 0 < int(alphas[0]) < 255
        if self._shared_alpha:
            self.setOpacity(int(alphas[0]) / 255.0)

    def viewTransformChanged(self) -> None:
        super().viewTransformChanged()
        px = self.pixelLength(pg.Point(1, 0))
        if px and abs((self.layer.width + 2) * px - self._margin) > 1e-3 * max(self._margin, 1e-9):  # zoomed: bounds change
            self.prepareGeometryChange()
            self._margin = (self.layer.width + 2) * px  # the cosmetic pen's half width and more

    def boundingRect(self) -> QRectF:
        m = self._margin
        return self._box.adjusted(-m, -m, m, m)

    def _groups(self) -> list:
        """(pen, [QRectF]) per colour and line style, built once: paint is a few drawRects calls."""
        if self._pen_groups is None:
            lay = self.layer
            groups: dict = {}
            dashed = lay.dashed if lay.dashed is not None else np.zeros(len(lay.xyxy), bool)
            for b, c, d in zip(lay.xyxy, lay.colours, dashed):
                key = (int(c[0]), int(c[1]), int(c[2]), 255 if self._shared_alpha else int(c[3]), bool(d))
                groups.setdefault(key, []).append(
                    QRectF(float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])))
            out = []
            for (r, g, b, a, d), rects in groups.items():
                if a == 255 and not d and not self._shared_alpha:  # a dark halo under solid boxes, as the export
                    halo = QPen(QColor(*HALO))
                    halo.setCosmetic(True)
                    halo.setWidthF(lay.width + 2)
                    out.append((halo, rects))
                pen = QPen(QColor(r, g, b, a))
                pen.setCosmetic(True)
                pen.setWidthF(lay.width if lay.width > 1 else 0.0)  # 0: the hairline fast path
                if d:
                    pen.setStyle(Qt.PenStyle.DashLine)
                out.append((pen, rects))
            self._pen_groups = out
        return self._pen_groups

    def paint(self, painter, *args) -> None:
        if not len(self.layer.xyxy):
            return
        for pen, rects in self._groups():
            # faded boxes come in hundreds: antialiasing them costs much and shows nothing
            painter.setRenderHint(painter.RenderHint.Antialiasing, pen.color().alpha() == 255)
            painter.setPen(pen)
            painter.drawRects(rects)


def make(layer):
    return BoxesItem(layer)
