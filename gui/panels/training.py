"""The inspector's training page: the seed of the training view's random minibatches (a seed box
and "Resample": a new seed, only the training view is computed again), the training table
(core.training.types.Training.table: anchors positive/negative/ignored, the minibatches, the four
losses as torchvision returns them) and, for the selected truth object, what it costs: its share
of each loss, its positive anchors and its sampled positive RoIs with their loss shares
(core.state.truth.object_detail)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.state.truth import object_detail
from core.tracing.parts import Missing

NO_TRUTH = "No ground truth for this image: the training view needs its annotations (File > Open annotations…)."
SEED_MAX = 2_147_483_647  # what a spin box holds


class TrainingPage(QWidget):
    seed_changed = Signal(int)
    resample = Signal()
    fetch = Signal(int, tuple)  # a selected object's part needs an array the engine kept: source, path

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("seed"))
        self.seed = QSpinBox()
        self.seed.setObjectName("seed")
        self.seed.setRange(0, SEED_MAX)
        self.seed.setKeyboardTracking(False)
        self.seed.setToolTip("torch.manual_seed right before the RPN's training step: the same seed gives "
                             "torchvision's minibatches and losses")
        self.seed.valueChanged.connect(lambda v: self._quiet or self.seed_changed.emit(int(v)))
        row.addWidget(self.seed, 1)
        self.button = QPushButton("Resample")
        self.button.setObjectName("resample")
        self.button.setToolTip("a new seed: new random minibatches (Ctrl+R); the backbone does not rerun")
        self.button.clicked.connect(self.resample.emit)
        row.addWidget(self.button)
        lay.addLayout(row)
        self.tree = QTreeWidget()
        self.tree.setObjectName("training_table")
        self.tree.setHeaderLabels(["", "value"])
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(False)  # values wrap onto lines of their own (see _wrap)
        f = self.tree.font()
        f.setPointSizeF(max(f.pointSizeF() - 1.0, 7.0))
        self.tree.setFont(f)
        head = self.tree.header()
        head.setStretchLastSection(True)
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        lay.addWidget(self.tree, 1)
        self.note = QLabel(NO_TRUTH)
        self.note.setObjectName("training_note")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self._quiet = False
        self.rows: list[tuple[str, str]] = []  # the training table shown
        self.object_rows: list[tuple[str, str]] = []  # the selected object's part, flattened (tests read it)
        self._shown = (None, None)
        self._width = 0
        self.waiting: tuple | None = None  # the path asked for (the object's part shows when it comes)

    def show_seed(self, seed: int) -> None:
        self._quiet = True
        try:
            self.seed.setValue(min(int(seed), SEED_MAX))
        finally:
            self._quiet = False

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        if abs(self.width() - self._width) > 8 and self.rows:
            self.show_training(*self._shown)  # wrap the values to the new width

    def _wrap(self, text: str, room: int | None = None) -> str:
        """Break a value into lines that fit the value column, or ``room`` px (a tree view does not wrap
        by itself)."""
        fm = self.tree.fontMetrics()
        if room is None:
            room = max(self.width() - self.tree.columnWidth(0) - 36, 120)  # the page's width is right even when hidden
        lines, line = [], ""
        for word in text.split(" "):
            trial = f"{line} {word}" if line else word
            if line and fm.horizontalAdvance(trial) > room:
                lines.append(line)
                line = word
            else:
                line = trial
        return "\n".join([*lines, line])

    def show_training(self, tr, index: int | None) -> None:
        self._shown, self._width = (tr, index), self.width()
        self.tree.clear()
        T = tr.training if tr is not None else None
        self.rows = T.table() if T is not None else []
        self.object_rows = []
        self.note.setVisible(T is None)
        if T is None:
            self.note.setText(NO_TRUTH if tr is None or tr.truth is None else
                              "No training view for this image (the message bar says why).")
            return
        nodes = [(name, value, []) for name, value in self.rows]
        self.waiting = None
        if index is not None:
            try:
                nodes.append(self._object(tr, index))
            except Missing as m:  # per-anchor arrays the engine sends on demand
                self.object_rows = []
                self.waiting = m.path
                nodes.append((f"object {index}", "fetching its anchors from the engine…", []))
                self.fetch.emit(m.source, m.path)
        fm, indent = self.tree.fontMetrics(), self.tree.indentation()

        def widest(items, depth):
            return max([fm.horizontalAdvance(n) + indent * (depth + 1) for n, _, _ in items]
                       + [widest(kids, depth + 1) for _, _, kids in items if kids] or [0])

        self.tree.setColumnWidth(0, widest(nodes, 0) + 10)
        for node in nodes:
            item = self._item(node)
            self.tree.addTopLevelItem(item)
            self._span(item, 0)
        if index is not None:
            head = self.tree.topLevelItem(self.tree.topLevelItemCount() - 1)
            f = head.font(0)
            f.setBold(True)
            head.setFont(0, f)
            head.setExpanded(True)
            for k in range(head.childCount()):
                head.child(k).setExpanded(head.child(k).childCount() <= 12)
            self.tree.scrollToItem(head, QTreeWidget.ScrollHint.PositionAtTop)  # its part first

    def _item(self, node) -> QTreeWidgetItem:
        name, value, kids = node
        it = QTreeWidgetItem([name, self._wrap(value)])
        it.setToolTip(1, value)
        it.setData(0, Qt.ItemDataRole.UserRole, (name, value))
        for kid in kids:
            it.addChild(self._item(kid))
        return it

    def _span(self, it: QTreeWidgetItem, depth: int) -> None:
        """A value that would take more than two lines in its column reads ``name: value`` across the
        whole width instead (a narrow dock wrapped cells to five lines)."""
        name, value = it.data(0, Qt.ItemDataRole.UserRole)
        if it.text(1).count("\n") >= 2:
            room = max(self.width() - self.tree.indentation() * (depth + 1) - 28, 120)
            it.setText(0, self._wrap(f"{name}: {value}", room))
            it.setText(1, "")
            it.setToolTip(0, value)
            it.setFirstColumnSpanned(True)
        for k in range(it.childCount()):
            self._span(it.child(k), depth + 1)

    def _object(self, tr, i: int):
        """(name, value, children) of the selected object's part of the training step."""
        d = object_detail(tr, i)
        kids = []

        def add(to, name, value, children=None):
            to.append((name, value, children if children is not None else []))
            self.object_rows.append((name, value))
            return to[-1][2]

        if not d["trained"]:
            add(kids, "trained on", "no (a class the model lacks, or a crowd region)")
        else:
            L = d["losses"]
            add(kids, "its losses", f"objectness {L['loss_objectness']:.4g}, rpn box {L['loss_rpn_box_reg']:.4g}, "
                                    f"classifier {L['loss_classifier']:.4g}, box {L['loss_box_reg']:.4g}")
            anchors = add(kids, "anchors", f"{len(d['anchors'])} positive, {sum(a['sampled'] for a in d['anchors'])} "
                                           "in the minibatch")
            for a in d["anchors"]:
                add(anchors, f"#{a['anchor']}", f"{a['where']}: IoU {a['iou']:.2f}{' (lq)' if a['lq'] else ''}, "
                    f"{'sampled' if a['sampled'] else 'not sampled'}; objectness {a['loss_objectness']:.3g} "
                    f"+ box {a['loss_rpn_box_reg']:.3g}")
            rois = add(kids, "RoIs", f"{len(d['rois'])} positive in the minibatch")
            for r in d["rois"]:
                add(rois, f"#{r['roi']}" + (" GT" if r["gt_box"] else ""),
                    f"IoU {r['iou']:.2f}: classifier {r['loss_classifier']:.3g} + box {r['loss_box_reg']:.3g}")
        verdict = tr.diagnosis.objects[i].verdict if tr.diagnosis is not None else None
        return (f"object {i}", tr.truth.names[i] + (f": {verdict}" if verdict else ""), kids)
