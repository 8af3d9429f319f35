"""The analysis browser: an analysis folder (``rcnn-lens analyze -o OUT``) as a list of its images,
the most missed objects first, with their verdict counts; a click (arrow keys, Enter) opens the image with
its truth and verdicts. A compare folder (``rcnn-lens compare -o OUT``) as a list of its objects, the
changed first, with their verdict in each run. The rows come from core.analysis.browse (Qt-free)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core.analysis.verdicts import VERDICT_COLOURS

COLUMNS = ("image", "missed", "lost at")
SHORT = {"rpn_missed": "RPN missed", "rpn_suppressed": "RPN NMS", "rpn_cut": "RPN cut", "box_misclassified": "wrong class",
         "box_low_score": "low score", "box_mislocalized": "box off", "box_suppressed": "box NMS",
         "box_cut": "past top-n", "box_taken": "taken"}  # the list's words; the verdicts in the tooltip
EMPTY = ("No analysis open. Run `rcnn-lens analyze IMAGES -o OUT` (or `rcnn-lens compare OUT_A OUT_B -o CMP`), then "
         "File > Open analysis folder… (or `rcnn-lens OUT`).")


class AnalysisPanel(QWidget):
    chosen = Signal(str)  # an image path to open
    object_chosen = Signal(int)  # a compare folder's row (its object) to show
    open_folder = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.head = QLabel(EMPTY)
        self.head.setObjectName("analysis_head")
        self.head.setWordWrap(True)
        self.head.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.head)
        self.button = QPushButton("Open analysis folder…")
        self.button.setObjectName("analysis_open")
        self.button.clicked.connect(self.open_folder.emit)
        lay.addWidget(self.button)
        self.table = QTreeWidget()
        self.table.setObjectName("analysis_table")
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(False)  # "lost at" takes a line per stage
        self.table.setHeaderLabels(list(COLUMNS))
        head = self.table.header()
        head.setStretchLastSection(True)
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(0, 110)
        self.table.currentItemChanged.connect(lambda item, _prev: item is not None and self._activated(item))
        self.table.itemActivated.connect(self._activated)  # Enter, or a click on the current row
        lay.addWidget(self.table, 1)
        self.analysis = None
        self.comparison = None
        self.paths: list[str | None] = []  # per row, top to bottom (tests read it)

    def show_analysis(self, analysis) -> None:
        self.analysis, self.comparison = analysis, None
        self.table.clear()
        self.table.setHeaderLabels(list(COLUMNS))
        self.table.setColumnWidth(0, 110)
        self.paths = []
        if analysis is None:
            self.head.setText(EMPTY)
            return
        self.head.setText(f"{analysis.folder.name}: {analysis.headline()}")
        self.head.setToolTip(str(analysis.folder))
        for r in analysis.rows:
            counts = sorted(((k, v) for k, v in r["verdicts"].items() if k != "detected"), key=lambda kv: -kv[1])
            lost = "\n".join(f"{SHORT.get(k, k)} {v}" for k, v in counts)  # a stage a line: whole in a narrow dock
            it = QTreeWidgetItem([Path(r["image"]).name, f"{r['missed']} of {r['objects']}", lost])
            it.setToolTip(2, "; ".join(f"{k}: {v}" for k, v in counts) or "every object detected")
            it.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if r["missed"]:
                worst = max((k for k in r["verdicts"] if k != "detected"), key=lambda k: r["verdicts"][k])
                _emphasize(it, 1, VERDICT_COLOURS[worst])
            self._add(it, r)

    def show_compare(self, cmp) -> None:
        """A compare folder (core.analysis.browse.Comparison): one row per object, the changed first,
        with its verdict in each run."""
        self.analysis, self.comparison = None, cmp
        self.table.clear()
        self.paths = []
        labels = [r["label"] for r in cmp.runs]
        self.table.setHeaderLabels(["image", "object", " -> ".join(labels)])
        self.table.setColumnWidth(0, 100)  # room for the verdicts
        self.head.setText(f"{cmp.folder.name}: {cmp.headline()}. Press B to flip between the runs.")
        self.head.setToolTip("\n".join([str(cmp.folder), *(r["note"] for r in cmp.runs)]))
        for r in cmp.rows:
            it = QTreeWidgetItem([Path(r["image"]).name, f"{r['truth']} {r['name']}",
                                  " -> ".join((v or "none").replace("_", " ") for v in r["verdicts"])])
            it.setToolTip(2, "; ".join(f"{lab}: {v}" for lab, v in zip(labels, r["verdicts"])))
            if r["changed"]:
                _emphasize(it, 2, VERDICT_COLOURS.get(r["verdicts"][-1], (128, 128, 128)))
            self._add(it, r)

    def _add(self, it: QTreeWidgetItem, r: dict) -> None:
        """A row and its image's path (greyed, with why, when it is not where the analysis found it)."""
        it.setToolTip(0, r["path"] or f"{r['image']}: not found (moved since the analysis?)")
        if r["path"] is None:
            it.setForeground(0, QBrush(QColor(150, 150, 150)))
        self.table.addTopLevelItem(it)
        self.paths.append(r["path"])

    def mark(self, path: str | None) -> None:
        """Highlight the row of the image shown (if it is one of the analysis)."""
        for i, p in enumerate(self.paths):
            if p is not None and path is not None and Path(p).resolve() == Path(path).resolve():
                was = self.table.blockSignals(True)
                self.table.setCurrentItem(self.table.topLevelItem(i))
                self.table.blockSignals(was)
                return
        was = self.table.blockSignals(True)
        self.table.setCurrentItem(None)  # a click on any row opens it again
        self.table.clearSelection()
        self.table.blockSignals(was)

    def _activated(self, item, _column=0) -> None:
        i = self.table.indexOfTopLevelItem(item)
        if self.comparison is not None and 0 <= i < len(self.paths):
            self.object_chosen.emit(i)
        elif 0 <= i < len(self.paths):
            self.chosen.emit(self.paths[i] or self.analysis.rows[i]["image"])


def _emphasize(it: QTreeWidgetItem, column: int, rgb) -> None:
    """A cell in bold, in its verdict's colour."""
    it.setForeground(column, QBrush(QColor(*_readable(rgb))))
    f = it.font(column)
    f.setBold(True)
    it.setFont(column, f)


def _readable(rgb) -> tuple[int, int, int]:
    """A verdict colour light enough to read on the list's (usually light or dark) background."""
    r, g, b = rgb
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    return (min(r + 60, 255), min(g + 40, 255), min(b + 40, 255)) if lum < 90 else (r, g, b)
