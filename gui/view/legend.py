"""The legend area under the view: each visible stage's caption and a colour bar with its value
range for each heatmap, as the export's legend has them; nothing is written over the photo."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from core.colormaps import lut
from core.overlays.layers import Heatmap


def ramp_pixmap(colormap: str, width: int = 110, height: int = 10) -> QPixmap:
    ramp = np.ascontiguousarray(np.repeat(lut(colormap)[np.linspace(0, 255, width).astype(np.uint8)][None],
                                          height, axis=0))
    img = QImage(ramp.data, width, height, ramp.strides[0], QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img)


class ColourBar(QWidget):
    def __init__(self, layer: Heatmap, parent=None):
        super().__init__(parent)
        self.setObjectName("colourbar")
        h = QHBoxLayout(self)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(4)
        self.name = QLabel(layer.label or layer.name)  # one line: the numbers stay beside the ramp
        self.name.setToolTip(layer.label or layer.name)
        self.lo, self.hi = QLabel(f"{layer.vmin:.3g}"), QLabel(f"{layer.vmax:.3g}")
        self.ramp = QLabel()
        self.ramp.setPixmap(ramp_pixmap(layer.colormap))
        for w in (self.name, self.lo, self.ramp, self.hi):
            w.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            h.addWidget(w, 0, Qt.AlignmentFlag.AlignVCenter)
        h.addStretch(1)
        self.range = (layer.vmin, layer.vmax)


class Legend(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("legend")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # captions wrap instead
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        # its height is the splitter's (the user drags it; remembered): a toggle that adds or drops a
        # caption must not resize the view (that would repaint every cached item and move every label)
        self.setMinimumHeight(48)
        body = QWidget()
        self._lay = QVBoxLayout(body)
        self._lay.setContentsMargins(6, 2, 6, 2)
        self._lay.setSpacing(2)
        self._lay.addStretch(1)
        self.setWidget(body)
        self.rows: dict[str, QWidget] = {}
        self.order: list[str] = []

    def set_order(self, stages: list[str]) -> None:
        self.order = list(stages)

    def set_stage(self, stage: str, stage_layers, visible: bool, note: str = "") -> None:
        old = self.rows.pop(stage, None)
        if old is not None:
            old.setParent(None)
            old.deleteLater()
        if stage_layers is None and not note:
            self._refresh()
            return
        row = QWidget(self.widget())
        row.setObjectName(f"legend_{stage}")
        v = QVBoxLayout(row)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        text = QLabel(note or (stage_layers.caption if stage_layers is not None else ""))
        text.setObjectName("caption")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(text)
        for layer in (stage_layers.layers if stage_layers is not None else []):
            if isinstance(layer, Heatmap) and layer.colorbar:
                v.addWidget(ColourBar(layer))
        self.rows[stage] = row
        idx = [s for s in self.order if s in self.rows].index(stage) if stage in self.order else len(self.rows) - 1
        self._lay.insertWidget(min(idx, self._lay.count() - 1), row)
        row.setVisible(visible)
        self._refresh()

    def set_visible(self, stage: str, on: bool) -> None:
        if stage in self.rows:
            self.rows[stage].setVisible(on)
        self._refresh()

    def clear(self) -> None:
        for st in list(self.rows):
            self.set_stage(st, None, False)

    def captions(self) -> list[str]:
        """The captions shown (tests read this)."""
        return [r.findChild(QLabel, "caption").text() for st, r in self.rows.items() if not r.isHidden()]

    def _refresh(self) -> None:
        pass
