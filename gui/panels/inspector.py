"""The inspector: the pipeline as the notebook prints it (stage, shapes, counts, time), and the
selected box's lineage with a bar chart of its class probabilities."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from core.cli import trace_table


class Inspector(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.table = QPlainTextEdit()
        self.table.setObjectName("pipeline")
        self.table.setReadOnly(True)
        self.table.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF() - 1.5, 7.0))
        self.table.setFont(font)
        lay.addWidget(self.table, 3)
        self.selection = QLabel("Click a detection to see where it came from.")
        self.selection.setObjectName("selection")
        self.selection.setWordWrap(True)
        lay.addWidget(self.selection)
        self.chart = pg.PlotWidget(background=None)
        self.chart.setMinimumHeight(120)
        self.chart.setMouseEnabled(False, False)
        self.chart.hideButtons()
        self.chart.setYRange(0, 1)
        self.chart.getAxis("left").setLabel("p")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=(80, 150, 230))
        self.chart.addItem(self.bars)
        lay.addWidget(self.chart, 2)

    def set_trace(self, tr) -> None:
        lines = trace_table(tr, tr.meta.name).splitlines()
        cut = next((i for i, ln in enumerate(lines) if ln.startswith("  ")), len(lines))
        self.table.setPlainText("\n".join(lines[:cut]))

    def show_selection(self, tr, detection: int | None) -> None:
        if detection is None or tr is None or detection >= len(tr.detections.keep):
            self.selection.setText("Click a detection to see where it came from.")
            self.bars.setOpts(x=[], height=[])
            return
        lin = tr.lineage(detection)
        d = tr.detections
        i = int(d.keep[detection])
        name = tr.class_name(int(d.label[i]))
        self.selection.setText(
            f"<b>{name} {d.scores[i]:.3f}</b><br>"
            f"from proposal {lin['proposal']} (objectness {lin['proposal_score']:.3f}, RoI {lin['roi']})<br>"
            f"anchor: level {lin['level']}, cell {lin['cell'][0]},{lin['cell'][1]}, "
            f"size {lin['anchor_size']:g}, ratio {lin['aspect_ratio']:g}<br>"
            f"suppressed {len(lin['suppressed'])} overlapping {name} box(es)")
        probs = np.asarray(lin["class_probs"], float)
        self.bars.setOpts(x=np.arange(len(probs)), height=probs)
        ax = self.chart.getAxis("bottom")
        ticks = [(k, tr.class_name(k)[:10]) for k in range(len(probs))]
        ax.setTicks([ticks if len(probs) <= 12 else ticks[::max(len(probs) // 10, 1)]])
