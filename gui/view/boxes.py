"""Boxes -> one item that paints all rectangles (cosmetic pens, dashes) and screen-sized labels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPen


class BoxesItem(pg.GraphicsObject):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        xy = layer.xyxy.reshape(-1, 4)
        if len(xy):
            x0, y0 = float(xy[:, 0].min()), float(xy[:, 1].min())
            x1, y1 = float(xy[:, 2].max()), float(xy[:, 3].max())
            self._bounds = QRectF(x0 - 2, y0 - 40, x1 - x0 + 4, y1 - y0 + 44)
        else:
            self._bounds = QRectF()
        self._pen_groups = None
        # Qt's raster engine strokes translucent lines ~30x slower than opaque ones: when the
        # whole layer shares one alpha, paint opaque and let the item's opacity fade it (one blit)
        alphas = np.unique(layer.colours[:, 3]) if len(layer.colours) else np.array([255])
        self._shared_alpha = len(alphas) == 1 and 0 < int(alphas[0]) < 255
        if self._shared_alpha:
            self.setOpacity(int(alphas[0]) / 255.0)
        self._font = QFont()
        self._font.setPointSizeF(8.5)

    def boundingRect(self) -> QRectF:
        return self._bounds

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
        if self.layer.labels:
            self._paint_labels(painter)

    def _paint_labels(self, painter) -> None:
        lay = self.layer
        tr = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setFont(self._font)
        fm = QFontMetricsF(self._font)
        for i, text in enumerate(lay.labels):
            if not text:
                continue
            c = lay.colours[i]
            p = tr.map(QPointF(float(lay.xyxy[i][0]), float(lay.xyxy[i][1])))
            w, h = fm.horizontalAdvance(text) + 6, fm.height() + 2
            rect = QRectF(p.x(), p.y() - h, w, h)
            painter.fillRect(rect, QColor(int(c[0]), int(c[1]), int(c[2]), 255 if self._shared_alpha else int(c[3])))
            lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
            painter.setPen(QColor(0, 0, 0) if lum > 140 else QColor(255, 255, 255))
            painter.drawText(rect.adjusted(3, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()

    def box_at(self, x: float, y: float):
        """The id of the smallest box containing (x, y), or None."""
        xy = self.layer.xyxy.reshape(-1, 4)
        if not len(xy):
            return None
        inside = (xy[:, 0] <= x) & (x <= xy[:, 2]) & (xy[:, 1] <= y) & (y <= xy[:, 3])
        idx = np.nonzero(inside & (self.layer.colours[:, 3] > 0))[0]
        if not len(idx):
            return None
        area = (xy[idx, 2] - xy[idx, 0]) * (xy[idx, 3] - xy[idx, 1])
        k = int(idx[int(np.argmin(area))])
        return int(self.layer.ids[k]) if self.layer.ids is not None else k


def make(layer):
    return BoxesItem(layer)
