"""The Anchor what-if panel: the anchor sizes of each level and the aspect ratios (h/w), starting at
the model's own ``AnchorGenerator``. Apply (or Enter in a field) redraws the Anchors and Anchor
targets stages with a hypothetical generator on this image's feature maps (no backbone rerun; the
model and the other stages are unchanged); the panel and the Truth dock say how this image's
objects end up, strong / rescued / starved, before -> after. Reset goes back to the model's."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

ABOUT = ("Edit the anchors and Apply: the Anchors and Anchor targets stages redraw with these anchors on this "
         "image's feature maps. The RPN head's objectness is not recomputed; the model and the other stages keep "
         "its own anchors.")
MEANING = ("strong: an anchor at IoU >= the RPN's positive threshold; rescued: positive only by the best-match "
           "rule; starved: no positive anchor (its best went to another object)")

BAD = "QLineEdit { border: 2px solid #d03030; }"
RATIOS_TIP = "aspect ratios h/w, torchvision's convention: the same on every level, or per level separated by /"


class AnchorPanel(QWidget):
    applied = Signal(str, str)  # sizes ("16, 24 / 32, 48 / ..."), ratios ("0.5, 1, 2")
    reset = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        about = QLabel(ABOUT)
        about.setWordWrap(True)
        lay.addWidget(about)
        self.form = QFormLayout()
        lay.addLayout(self.form)
        self.sizes: list[QLineEdit] = []
        self.ratios = QLineEdit()
        buttons = QHBoxLayout()
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("anchor_apply")
        self.apply_button.clicked.connect(self._apply)
        self.reset_button = QPushButton("Reset to the model's")
        self.reset_button.setObjectName("anchor_reset")
        self.reset_button.clicked.connect(self.reset.emit)
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reset_button)
        lay.addLayout(buttons)
        self.summary = QLabel("")
        self.summary.setObjectName("anchor_summary")
        self.summary.setWordWrap(True)
        self.summary.setToolTip(MEANING)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        self.objects = QLabel("")  # each object's before -> after, the changed first
        self.objects.setObjectName("anchor_objects")
        self.objects.setWordWrap(True)
        self.objects.setToolTip(MEANING)
        self.objects.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.objects)
        self.paste = QLabel("")
        self.paste.setObjectName("anchor_paste")
        self.paste.setWordWrap(True)
        self.paste.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.paste.setToolTip("the line to paste into your model's builder (select and copy)")
        lay.addWidget(self.paste)
        lay.addStretch(1)
        self._levels: tuple = ()
        self.setEnabled(False)

    def _apply(self) -> None:
        self.applied.emit(" / ".join(w.text() for w in self.sizes), self.ratios.text())

    def mark(self, bad_sizes=(), bad_ratios: bool = False) -> None:
        """Outline the fields that cannot be read in red (none: every outline cleared)."""
        for k, w in enumerate(self.sizes):
            w.setStyleSheet(BAD if k in bad_sizes else "")
        self.ratios.setStyleSheet(BAD if bad_ratios else "")

    def show_state(self, levels, sizes: str, ratios: str, summary: str, paste: str, active: bool,
                   objects: str = "") -> None:
        """``levels``: (name, stride) per level of the trace; the fields' text; what it does to this image."""
        levels = tuple(levels)
        if levels and levels != self._levels:  # another model's levels (no trace: keep the fields)
            while self.form.rowCount():
                self.form.removeRow(0)
            self.sizes = []
            for k, (name, stride) in enumerate(levels):
                w = QLineEdit()
                w.setObjectName(f"anchor_sizes_{k}")
                w.setToolTip(f"anchor sizes of level {name} (sqrt of the anchor's area, px of the model's frame)")
                w.returnPressed.connect(self._apply)
                self.form.addRow(f"level {name} (stride {stride})", w)
                self.sizes.append(w)
            self.ratios = QLineEdit(ratios)
            self.ratios.setObjectName("anchor_ratios")
            self.ratios.setToolTip(RATIOS_TIP)
            self.ratios.returnPressed.connect(self._apply)
            self.form.addRow("aspect ratios h/w", self.ratios)
            self._levels = levels
        per_level = [p.strip() for p in sizes.split("/")] if sizes else []
        for w, text in zip(self.sizes, per_level):
            if not w.hasFocus():
                w.setText(text)
        if not self.ratios.hasFocus():
            self.ratios.setText(ratios)
        self.summary.setText(summary)
        self.objects.setText(objects)
        self.objects.setVisible(bool(objects))
        self.paste.setText(paste)
        f = self.summary.font()
        f.setBold(active)
        self.summary.setFont(f)
        self.reset_button.setEnabled(active)
        self.setEnabled(bool(self._levels))
