"""Box and line labels of one stage, screen-sized. The view places the labels of all visible
stages together by the core's rule (core.overlays.placement; LensView.relayout_labels): whole,
inside the view, not on each other. The faded labels of suppressed boxes are drawn on a dark
background in their box's colour, so they stay readable. The item's bounds are the placed labels
themselves (recomputed when the view zooms, pans or resizes), so nothing is clipped."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF

from core.overlays.placement import FADED_BACKGROUND, faded_text, ink, stage_labels


class LabelsItem(pg.GraphicsObject):
    def __init__(self, items: list[tuple], point_size: float = 9.0):
        super().__init__()
        self.items = items  # (box xyxy in image pixels, text, RGBA, faded), most important first
        self.font = QFont()
        self.font.setPointSizeF(point_size)
        fm = QFontMetricsF(self.font)
        self.sizes = np.array([(fm.horizontalAdvance(t) + 8, fm.height() + 3) for _, t, _, _ in items],
                               np.float64).reshape(-1, 2)
        self._rects = np.zeros((0, 4))  # placed, device pixels
        self._bounds = QRectF()
        self._dt_inv = None
        self.setZValue(1000)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def device_boxes(self):
        """(the item -> device transform, the labelled boxes in device pixels), or None."""
        dt = self.deviceTransform_()
        if dt is None or not self.items:
            return None
        dev = []
        for box, *_ in self.items:
            a, b = dt.map(QPointF(float(box[0]), float(box[1]))), dt.map(QPointF(float(box[2]), float(box[3])))
            dev.append((min(a.x(), b.x()), min(a.y(), b.y()), max(a.x(), b.x()), max(a.y(), b.y())))
        return dt, dev

    def set_rects(self, dt, rects: np.ndarray) -> None:
        """Show the labels at ``rects`` (device pixels; NaN rows are left out)."""
        inv, ok = dt.inverted()
        if not ok:
            return
        if self._dt_inv is not None and inv == self._dt_inv and rects.shape == self._rects.shape \
                and np.array_equal(rects, self._rects, equal_nan=True):
            return  # nothing moved: keep the cached pixmap
        self._rects, self._dt_inv = rects, inv
        shown = rects[~np.isnan(rects[:, 0])]
        self.prepareGeometryChange()
        if len(shown):
            union = QRectF(QPointF(shown[:, 0].min(), shown[:, 1].min()),
                           QPointF(shown[:, 2].max(), shown[:, 3].max())).adjusted(-1, -1, 1, 1)
            self._bounds = inv.mapRect(union)
        else:
            self._bounds = QRectF()
        self.update()

    def still_fits(self, dt, taken) -> bool:
        """Are the labels placed for this very transform, and clear of ``taken``?"""
        inv, ok = dt.inverted()
        if not ok or self._dt_inv is None or inv != self._dt_inv or len(self._rects) != len(self.items):
            return False
        r = self._rects[~np.isnan(self._rects[:, 0])]
        if not len(taken) or not len(r):
            return True
        t = np.asarray(taken, np.float64).reshape(-1, 4)
        ow = np.minimum(r[:, None, 2], t[None, :, 2]) - np.maximum(r[:, None, 0], t[None, :, 0])
        oh = np.minimum(r[:, None, 3], t[None, :, 3]) - np.maximum(r[:, None, 1], t[None, :, 1])
        return not ((ow > 0) & (oh > 0)).any()

    def placed(self) -> list[tuple[str, tuple]]:
        """(text, device rectangle) of every label shown (tests read this)."""
        return [(it[1], tuple(r)) for it, r in zip(self.items, self._rects) if not np.isnan(r[0])]

    def paint(self, painter, *args) -> None:
        if self._dt_inv is None or not len(self._rects):
            return
        to_paint = self._dt_inv * painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(painter.RenderHint.TextAntialiasing, True)
        painter.setFont(self.font)
        for (_, text, colour, faded), r in zip(self.items, self._rects):
            if np.isnan(r[0]):
                continue
            rect = to_paint.mapRect(QRectF(QPointF(r[0], r[1]), QPointF(r[2], r[3])))
            bg = FADED_BACKGROUND if faded else colour[:3]
            fg = faded_text(colour) if faded else ink(colour)
            painter.fillRect(rect, QColor(int(bg[0]), int(bg[1]), int(bg[2]), 235))
            painter.setPen(QColor(*fg))
            painter.drawText(rect.adjusted(4, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


def make_labels(stage_layers) -> LabelsItem | None:
    items = stage_labels(stage_layers)
    return LabelsItem(items) if items else None

