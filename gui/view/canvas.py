"""The central view: the photo in its own pixels (pan, zoom, fit, aspect locked), one item group
per registered stage stacked on it in drawing order, and the selection on top. Toggling a stage
flips its group's visibility, nothing else. Image coordinates are continuous: pixel (col j, row i)
covers [j, j+1) x [i, i+1), as in the core and the export."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPixmapCache
from PySide6.QtWidgets import QGraphicsItem, QLabel

from core.overlays import REGISTRY
from core.overlays.paths import SELECTION  # the selected box's path: on top, as the export draws it
from core.overlays.placement import place

from . import make_item
from .labels import make_labels


class LensView(pg.GraphicsView):
    hovered = Signal(float, float)  # image pixels
    clicked = Signal(float, float)
    left = Signal()

    def __init__(self, parent=None):
        super().__init__(parent, background=(40, 40, 44))
        # every item keeps a device-sized pixmap (DeviceCoordinateCache): room for them all, so a
        # toggle blits instead of repainting thousands of boxes (Qt's default is 10 MB)
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), 256 * 1024))
        self.setObjectName("view")
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self.vb)
        self.photo = pg.ImageItem(axisOrder="row-major")
        self.photo.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # scaled once per zoom
        self.vb.addItem(self.photo)
        self.groups: dict[str, pg.ItemGroup] = {}
        self.label_groups: dict[str, pg.ItemGroup] = {}  # above every stage's boxes
        self.items: dict[str, list] = {}
        self.labels: dict[str, object] = {}
        self.layers: dict[str, object] = {}  # stage -> the StageLayers shown
        for st in [*REGISTRY, SELECTION]:
            self._group(st)
        self.shown: dict[str, bool] = {}
        self.set_visible(SELECTION, True)
        self.image_size = (0, 0)
        self._relayout = QTimer(self)  # label placement: once per event-loop turn, however many changes
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(0)
        self._relayout.timeout.connect(self.relayout_labels)
        self.vb.sigTransformChanged.connect(self._relayout.start)
        # the hover readout follows the last position the mouse stopped at (pyqtgraph's own move
        # signal is rate-limited and may drop it), computed once per event-loop turn
        self._hover_pos = None
        self._hover = QTimer(self)
        self._hover.setSingleShot(True)
        self._hover.setInterval(0)
        self._hover.timeout.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.setAcceptDrops(False)  # the main window takes drops
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.banner = QLabel("", self)
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet("QLabel { background: rgba(190, 40, 40, 215); color: white; padding: 4px 10px;"
                                  " font-weight: bold; border-radius: 3px; }")
        self.banner.setVisible(False)

    def _group(self, stage: str) -> pg.ItemGroup:
        if stage not in self.groups:
            z = 1000 if stage == SELECTION else len(self.groups) + 1
            for store, zz in ((self.groups, z), (self.label_groups, 2000 + z)):
                g = pg.ItemGroup()
                g.setZValue(zz)
                g.setOpacity(0.0)
                self.vb.addItem(g, ignoreBounds=True)
                store[stage] = g
            self.items[stage] = []
        return self.groups[stage]

    # ---- banner (random weights; a trace that differs from model(images))
    def set_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self._place_banner()

    def _place_banner(self) -> None:
        if getattr(self, "banner", None) is None:
            return  # pyqtgraph resizes before __init__ has made it
        self.banner.setMinimumWidth(0)
        self.banner.setMaximumWidth(16777215)
        self.banner.setWordWrap(False)
        self.banner.adjustSize()
        if self.banner.width() > self.width() - 8:  # a long line wraps within the view
            self.banner.setWordWrap(True)
            self.banner.setFixedWidth(max(self.width() - 8, 100))
            self.banner.adjustSize()
        self.banner.move(max((self.width() - self.banner.width()) // 2, 4), 6)

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._place_banner()

    # ---- photo and stages
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
        g = self._group(stage)
        for item in self.items[stage]:
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.items[stage] = []
        self.labels.pop(stage, None)
        self.layers.pop(stage, None)
        if stage_layers is None:
            return
        self.layers[stage] = stage_layers
        for layer in stage_layers.layers:
            self._add(stage, g, make_item(layer), layer)
        labels = make_labels(stage_layers)
        if labels is not None:
            self._add(stage, self.label_groups[stage], labels, None)
            self.labels[stage] = labels
        self._relayout.start()

    def _add(self, stage, group, item, layer) -> None:
        item.layer = layer  # what it shows, for inspection
        # painted once per zoom level, then blitted: toggling another stage repaints cheaply
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        item.setParentItem(group)
        self.items[stage].append(item)

    def clear_stages(self) -> None:
        for st in list(self.groups):
            self.set_stage(st, None)

    def is_shown(self, stage: str) -> bool:
        return self.shown.get(stage, False)

    def set_visible(self, stage: str, on: bool) -> None:
        """Show or hide a stage: its groups' opacity (a hidden item would drop its cached pixmap and
        repaint everything when shown again; a transparent one is skipped and keeps it)."""
        g = self._group(stage)
        if self.is_shown(stage) != on:
            self.shown[stage] = on
            g.setOpacity(1.0 if on else 0.0)
            self.label_groups[stage].setOpacity(1.0 if on else 0.0)
            if on and stage in self.labels:  # hiding frees space: the labels shown stay where they are
                self._place_stage(stage)

    def _place_stage(self, stage: str) -> None:
        """Place one stage's labels around those already shown (a toggle: nothing else moves)."""
        lab = self.labels[stage]
        got = lab.device_boxes()
        if got is None or self._relayout.isActive():
            self._relayout.start()
            return
        taken = [r for st, other in self.labels.items() if other is not lab and self.is_shown(st)
                 for _, r in other.placed()]
        if lab.still_fits(got[0], taken):
            return  # placed at this zoom before it was hidden, and nothing shown since is in the way
        vp = self.viewport()
        lab.set_rects(got[0], place(got[1], lab.sizes, (2, 2, vp.width() - 2, vp.height() - 2),
                                    optional=[it[3] for it in lab.items], taken=taken or None))

    def relayout_labels(self, *_) -> None:
        """Place the labels of all visible stages on screen together, top stage first (so a
        detection's label never sits on a proposal's), inside the view."""
        parts, boxes, sizes, optional = [], [], [], []
        for st in reversed(list(self.groups)):
            lab = self.labels.get(st)
            if lab is None or not self.is_shown(st):
                continue
            got = lab.device_boxes()
            if got is None:
                continue
            parts.append((lab, got[0], len(boxes), len(got[1])))
            boxes += got[1]
            sizes += list(lab.sizes)
            optional += [it[3] for it in lab.items]
        if not parts:
            return
        vp = self.viewport()
        rects = place(boxes, sizes, (2, 2, vp.width() - 2, vp.height() - 2), optional=optional)
        for lab, dt, start, n in parts:
            lab.set_rects(dt, rects[start:start + n])

    def visible_layers(self) -> list:
        """The StageLayers of the visible stages, in drawing order (for hit tests)."""
        return [self.layers[st] for st in self.groups if st in self.layers and self.is_shown(st)
                and st != SELECTION]

    # ---- coordinates
    def image_per_screen_pixel(self) -> float:
        """Image pixels per screen pixel at the current zoom."""
        return float(self.vb.viewPixelSize()[0]) or 1.0

    def to_image(self, widget_pos) -> QPointF:
        """A point of this widget -> image coordinates."""
        return self.vb.mapSceneToView(self.mapToScene(widget_pos.toPoint() if hasattr(widget_pos, "toPoint")
                                                      else widget_pos))

    def to_widget(self, x: float, y: float) -> QPointF:
        """Image coordinates -> a point of this widget."""
        return QPointF(self.mapFromScene(self.vb.mapViewToScene(QPointF(x, y))))

    def mouseMoveEvent(self, ev) -> None:  # noqa: N802 - Qt API
        super().mouseMoveEvent(ev)
        self._hover_pos = ev.position()
        self._hover.start()

    def leaveEvent(self, ev) -> None:  # noqa: N802
        super().leaveEvent(ev)
        self._hover_pos = None
        self.left.emit()

    def _moved(self) -> None:
        if self._hover_pos is None:
            return
        pos = self.mapToScene(self._hover_pos.toPoint())
        if self.vb.sceneBoundingRect().contains(pos):
            p = self.vb.mapSceneToView(pos)
            self.hovered.emit(p.x(), p.y())
        else:
            self.left.emit()

    def _clicked(self, ev) -> None:
        if ev.button() != pg.QtCore.Qt.MouseButton.LeftButton or ev.double():
            return
        p = self.vb.mapSceneToView(ev.scenePos())
        self.clicked.emit(p.x(), p.y())
