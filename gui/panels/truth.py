"""The Truth panel: the image's annotated objects with their verdicts (core.analysis.diagnose: the stage
where each was lost), best anchor IoU, best proposal IoU and detection; filters by verdict and by
class (Diagnosis.where); a box score threshold slider that the verdicts follow live (a retrace,
no backbone); the selected object's verdict in one sentence. Selecting a row selects the object
(its path is drawn on the image); the panel shows the state, it holds none of its own beyond the
filters."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.analysis.verdicts import RULES, VERDICT_COLOURS, VERDICTS
from core.state.truth import filtered, object_rows

from .combos import refill

COLUMNS = ("object", "verdict", "anchor", "prop.", "det.")
HEADER_TIPS = ("index and class as annotated", "the first stage that lost it (core.analysis.diagnose)",
               "its best IoU with any anchor", "its best IoU with a proposal after NMS (what the box head sees)",
               "the final detection matched to it (COCO's rule) and its score")
HINT = "Select an object (here or by clicking its box) to see its path through the stages."
NONE = ("No ground truth for this image. Put its annotations beside it (STEM.xml, STEM.txt with "
        "classes.txt, annotations.json) or open them: File > Open annotations…")


def verdict_brushes(verdict) -> tuple[QBrush, QBrush]:
    """(background, text) for a verdict cell: its colour, with black or white text on it."""
    r, g, b = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[None])
    text = QColor(0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else QColor(255, 255, 255)
    return QBrush(QColor(r, g, b)), QBrush(text)


def _iou(v) -> str:
    return "" if v is None else f"{v:.2f}"


class TruthPanel(QWidget):
    object_selected = Signal(object)  # index or None
    threshold_changed = Signal(float)  # box_score_thresh
    open_annotations = Signal()

    def __init__(self, parent=None, debounce_ms: int = 120):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.source = QLabel(NONE)
        self.source.setObjectName("truth_source")
        self.source.setWordWrap(True)
        top.addWidget(self.source, 1)
        btn = QPushButton("Annotations…")
        btn.setObjectName("truth_open")
        btn.setToolTip("read the truth from a COCO .json, a VOC .xml or folder, a YOLO .txt or folder")
        btn.clicked.connect(self.open_annotations.emit)
        top.addWidget(btn, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(top)
        filters = QHBoxLayout()
        self.verdict = QComboBox()
        self.verdict.setObjectName("truth_verdict_filter")
        self.cls = QComboBox()
        self.cls.setObjectName("truth_class_filter")
        for c in (self.verdict, self.cls):
            c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            c.setMinimumContentsLength(6)
            c.currentIndexChanged.connect(lambda _i: self._quiet or self._refill())
            filters.addWidget(c, 1)
        lay.addLayout(filters)
        thr = QHBoxLayout()
        thr.addWidget(QLabel("box score ≥"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("truth_score_slider")
        self.slider.setRange(0, 1000)
        self.slider.setToolTip("the box score threshold (box_score_thresh): verdicts follow it, the backbone "
                               "does not rerun")
        self.slider.valueChanged.connect(self._slid)
        thr.addWidget(self.slider, 1)
        self.slider_value = QLabel("")
        self.slider_value.setMinimumWidth(38)
        thr.addWidget(self.slider_value)
        lay.addLayout(thr)
        self.table = QTreeWidget()
        self.table.setObjectName("truth_table")
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setHeaderLabels(list(COLUMNS))
        for c, tip in enumerate(HEADER_TIPS):
            self.table.headerItem().setToolTip(c, tip)
        self.table.setAlternatingRowColors(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the last column gives way
        head = self.table.header()
        for c in range(len(COLUMNS)):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        head.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._picked)
        lay.addWidget(self.table, 1)
        self.why = QLabel(HINT)
        self.why.setObjectName("truth_why")
        self.why.setWordWrap(True)
        self.why.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.why)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(lambda: self.threshold_changed.emit(self.slider.value() / 1000.0))
        self._quiet = False
        self._trace = None
        self._selected: int | None = None
        self.shown: list[int] = []  # object indices listed, top to bottom (tests read it)

    # ---- the state -> the panel
    def show_trace(self, tr, selected: int | None, sentence: str = "") -> None:
        self._trace, self._selected = tr, selected
        self._quiet = True
        try:
            self._filters(tr)
            if tr is not None and "box_score_thresh" in tr.params:
                v = float(tr.params["box_score_thresh"])
                if not self._timer.isActive():
                    self.slider.setValue(int(round(v * 1000)))
                self.slider_value.setText(f"{v:.3g}")
        finally:
            self._quiet = False
        t = tr.truth if tr is not None else None
        if t is None:
            self.source.setText(NONE)
        else:
            fmt = f" ({t.format.upper()})" if t.format else ""
            counts = tr.diagnosis.counts() if tr.diagnosis is not None else {}
            lost = sum(v for k, v in counts.items() if k != "detected")
            self.source.setText(f"{len(t)} objects from {_name(t.source)}{fmt}"
                                + (f": {counts.get('detected', 0)} detected, {lost} lost" if counts else ""))
            self.source.setToolTip(t.source)
        self._refill()
        self.show_selected(selected, sentence)

    def show_selected(self, index: int | None, sentence: str = "") -> None:
        self._selected = index
        self.why.setText(sentence or HINT)
        self._quiet = True
        try:
            self.table.clearSelection()
            if index is not None and index in self.shown:
                it = self.table.topLevelItem(self.shown.index(index))
                it.setSelected(True)
                self.table.setCurrentItem(it)
                self.table.scrollToItem(it)
        finally:
            self._quiet = False

    def set_filters(self, verdict=None, cls=None) -> None:
        """Choose the filters (None: all; verdict "lost": any but detected, "none": no verdict)."""
        for combo, v in ((self.verdict, verdict), (self.cls, cls)):
            i = combo.findData(v) if v is not None else 0
            combo.setCurrentIndex(max(i, 0))

    # ---- internals
    def _filters(self, tr) -> None:
        rows = object_rows(tr)
        counts = {}
        for r in rows:
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        items = [("all verdicts", None)]
        lost = sum(n for v, n in counts.items() if v not in ("detected", None))
        if rows:
            items.append((f"lost ({lost})", "lost"))
        items += [(f"{v.replace('_', ' ')} ({counts[v]})", v) for v in VERDICTS if v in counts]
        if None in counts:
            items.append((f"no verdict ({counts[None]})", "none"))
        refill(self.verdict, items)
        for i in range(1, self.verdict.count()):
            v = self.verdict.itemData(i)
            if v in RULES:
                self.verdict.setItemData(i, RULES[v], Qt.ItemDataRole.ToolTipRole)
        names = sorted({r["name"] for r in rows})
        refill(self.cls, [("all classes", None), *[(n, n) for n in names]])

    def _refill(self) -> None:
        tr = self._trace
        rows = object_rows(tr)
        keep = filtered(tr, self.verdict.currentData(), self.cls.currentData())
        self._quiet = True
        try:
            self.table.clear()
            self.shown = []
            for r in rows:
                if r["index"] not in keep:
                    continue
                det = "" if r["detection"] is None else f"{r['detection']}: {r['detection_score']:.2f}"
                verdict = r["verdict"] or ("no verdict" if r["known"] else "not a model class")
                it = QTreeWidgetItem([f"{r['index']} {r['name']}", verdict.replace("_", " "),
                                      _iou(r["best_anchor_iou"]), _iou(r["best_proposal_iou"]), det])
                bg, fg = verdict_brushes(r["verdict"])
                it.setBackground(1, bg)
                it.setForeground(1, fg)
                it.setToolTip(1, RULES.get(r["verdict"], "no verdict: a class the model lacks, a crowd region or a VOC 'difficult' object (ignored, as COCO ignores crowds)"))
                for c in (2, 3):
                    it.setTextAlignment(c, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.addTopLevelItem(it)
                self.shown.append(r["index"])
        finally:
            self._quiet = False
        self.show_selected(self._selected, self.why.text() if self._selected is not None else "")

    def _picked(self) -> None:
        if self._quiet:
            return
        items = self.table.selectedItems()
        index = self.shown[self.table.indexOfTopLevelItem(items[0])] if items else None
        if index != self._selected:
            self._selected = index
            self.object_selected.emit(index)

    def _slid(self, v: int) -> None:
        self.slider_value.setText(f"{v / 1000:.3g}")
        if not self._quiet:
            self._timer.start()


def _name(path: str) -> str:
    from pathlib import Path

    return Path(path).name if path else "memory"

