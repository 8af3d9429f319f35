"""The central view: the photo in its own pixels (pan, zoom, fit, aspect locked) and one item
group per stage stacked on it. Toggling a stage flips its group's visibility, nothing else."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtWidgets import QGraphicsItem

from core.stages import STAGES

from . import make_item
from .boxes import BoxesItem


class LensView(pg.GraphicsView):
    hovered = Signal(float, float)  # image pixels
    clicked = Signal(float, float)
    left = Signal()

    def __init__(self, parent=None):
        super().__init__(parent, background=(40, 40, 44))
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self.vb)
        self.photo = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.photo)
        self.groups: dict[str, pg.ItemGroup] = {}
        for z, st in enumerate(STAGES, start=1):
            g = pg.ItemGroup()
            g.setZValue(z)
            g.setVisible(False)
            self.vb.addItem(g, ignoreBounds=True)
            self.groups[st] = g
        self.items: dict[str, list] = {st: [] for st in STAGES}
        self.image_size = (0, 0)
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.setAcceptDrops(False)  # the main window takes drops

    def set_image(self, rgb, fit: bool = True) -> None:
        self.photo.setImage(rgb, autoLevels=False, levels=(0, 255))
        new = (int(rgb.shape[0]), int(rgb.shape[1]))
        changed = new != self.image_size
        self.image_size = new
        if fit or changed:
            self.fit()

    def fit(self) -> None:
        h, w = self.image_size
        if h and w:
            self.vb.setRange(QRectF(0, 0, w, h), padding=0.02)

    def set_stage(self, stage: str, stage_layers) -> None:
        g = self.groups[stage]
        for item in self.items[stage]:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.items[stage] = []
        if stage_layers is None:
            return
        for layer in stage_layers.layers:
            item = make_item(layer)
            item.layer = layer  # what it shows, for hit tests and inspection
            # painted once per zoom level, then blitted: toggling another stage repaints cheaply
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            item.setParentItem(g)
            self.items[stage].append(item)

    def clear_stages(self) -> None:
        for st in STAGES:
            self.set_stage(st, None)

    def set_visible(self, stage: str, on: bool) -> None:
        self.groups[stage].setVisible(on)

    def box_at(self, stage: str, x: float, y: float, name_prefix: str = ""):
        if not self.groups[stage].isVisible():
            return None
        for item in reversed(self.items[stage]):
            if isinstance(item, BoxesItem) and item.layer.name.startswith(name_prefix):
                hit = item.box_at(x, y)
                if hit is not None:
                    return hit
        return None

    def _to_image(self, pos) -> QPointF:
        return self.vb.mapSceneToView(pos)

    def _moved(self, pos) -> None:
        if self.vb.sceneBoundingRect().contains(pos):
            p = self._to_image(pos)
            self.hovered.emit(p.x(), p.y())
        else:
            self.left.emit()

    def _clicked(self, ev) -> None:
        if ev.button() != pg.QtCore.Qt.MouseButton.LeftButton or ev.double():
            return
        p = self._to_image(ev.scenePos())
        self.clicked.emit(p.x(), p.y())
