"""The inspector: the pipeline as the seed notebook prints it (stage, tensor shape, count, ms;
core.analysis.summary) and, beside it, the training page (gui.panels.training: the seed, the training
table, the selected truth object's anchors, RoIs and losses); the selected box's story
(core.overlays.selection) or the selected truth object's verdict in one sentence; and class
probabilities as bars (of the selected box, or of the RoI that covers the selected object best):
the few most likely classes and the rest summed, in the current model's class names."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTabWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core.models.choice import check_text
from core.overlays.selection import describe, roi_of
from core.state.probe import top_classes
from core.tracing.summary import pipeline_rows

from .training import TrainingPage

SHORT = {"proposals before NMS": "proposals (pre-NMS)", "proposals after NMS": "proposals",
         "detections before NMS": "boxes (pre-NMS)", "detections after NMS": "detections",
         "predictor class logits": "class logits", "predictor box regression": "box regression"}
HINT = "Click a box to see where it came from (suppressed boxes too, with the box that suppressed them)."


class Inspector(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.model = QLabel("")  # the loaded model in words (core.models.load.LoadedModel.summary) and its check
        self.model.setObjectName("model_summary")
        self.model.setWordWrap(True)
        self.model.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._summary, self._check = "", ""
        lay.addWidget(self.model)
        self.table = QTreeWidget()
        self.table.setObjectName("pipeline")
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels(["stage (sizes W x H)", "tensor", "ms"])
        self.table.setUniformRowHeights(True)
        f = self.table.font()
        f.setPointSizeF(max(f.pointSizeF() - 1.0, 7.0))
        self.table.setFont(f)
        head = self.table.header()
        head.setStretchLastSection(False)
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("inspector_tabs")
        self.tabs.addTab(self.table, "pipeline")
        self.training = TrainingPage()
        self.tabs.addTab(self.training, "training")
        lay.addWidget(self.tabs, 3)
        self.selection = QLabel(HINT)
        self.selection.setObjectName("selection")
        self.selection.setWordWrap(True)
        lay.addWidget(self.selection)
        self.chart = pg.PlotWidget(background=None)
        self.chart.setObjectName("class_chart")
        self.chart.setMinimumHeight(110)
        self.chart.setMouseEnabled(False, False)
        self.chart.hideButtons()
        self.chart.setXRange(0, 1)
        self.chart.getAxis("bottom").setLabel("p")
        self.chart.getPlotItem().invertY(True)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush=(80, 150, 230))
        self.chart.addItem(self.bars)
        self.names: list[str] = []  # the class chart's bar names, top to bottom
        lay.addWidget(self.chart, 2)
        self.tabs.currentChanged.connect(lambda i: self.chart.setVisible(self.tabs.widget(i) is self.table))

    def set_model(self, summary: str) -> None:
        self._summary, self._check = summary, ""
        self._show_model()

    def _show_model(self) -> None:
        self.model.setText(self._summary + (f"\n{self._check}" if self._check else ""))
        self.model.setToolTip(self.model.text())

    def set_trace(self, tr) -> None:
        self.table.clear()
        if tr is None:
            return
        self._check = check_text(tr)
        self._show_model()
        items = []
        for stage, shape, count, ms in pipeline_rows(tr):
            stage = SHORT.get(stage, stage)
            # the header says W x H once: the rows stay short enough to read whole (a photo's sizes)
            name = f"{stage}: {count.replace(' -> ', '→').replace(' (W x H)', '')}" if count else stage
            shape = f"[{shape.replace(' x ', ', ')}]" if shape else ""  # a tensor's shape as torch prints it
            it = QTreeWidgetItem([name, shape, "" if ms is None else f"{ms:.0f}"])
            it.setToolTip(0, f"{name}; tensor {shape}" if shape else name)
            items.append(it)
        self.table.addTopLevelItems(items)

    def show_selection(self, tr, sel) -> None:
        if sel is None or tr is None:
            self.selection.setText(HINT)
            self._bars([])
            return
        self.selection.setText(describe(tr, sel))
        roi = roi_of(tr, sel)
        if roi is None:
            self._bars([])
            return
        self._bars(top_classes(tr.box_head.probs[roi], tr.class_names, 5))

    def show_object(self, tr, index: int, sentence: str) -> None:
        """A selected truth object: its verdict in one sentence, the class probabilities of the RoI
        that covers it best (where one does)."""
        self.selection.setText(sentence)
        o = tr.diagnosis.objects[index] if tr is not None and tr.diagnosis is not None else None
        roi = o.roi if o is not None and o.roi >= 0 else (o.rois[0] if o is not None and o.rois else None)
        self._bars(top_classes(tr.box_head.probs[roi], tr.class_names, 5) if roi is not None else [])

    def _bars(self, rows: list[tuple[str, float]]) -> None:
        self.names = [n for n, _ in rows]
        p = np.array([v for _, v in rows], float)
        self.bars.setOpts(x0=np.zeros(len(p)), y=np.arange(len(p)), width=p, height=0.7)
        self.chart.getAxis("left").setTicks([[(i, n[:14]) for i, n in enumerate(self.names)]])
        self.chart.setYRange(-0.5, max(len(p), 1) - 0.5, padding=0.05)
