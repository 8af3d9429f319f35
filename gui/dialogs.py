"""The model and weights chooser."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from core.presets import PRESETS


class ModelDialog(QDialog):
    def __init__(self, name: str, weights: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose model and weights")
        form = QFormLayout(self)
        self.preset = QComboBox()
        for key, p in PRESETS.items():
            self.preset.addItem(key, key)
            self.preset.setItemData(self.preset.count() - 1, p.description, 3)  # tooltip role
        self.preset.setCurrentIndex(max(self.preset.findData(name), 0))
        form.addRow("model", self.preset)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        self.weights = QComboBox()
        self.weights.setEditable(True)
        for w in ("default", "demo", "coco", "random", "random:1"):
            self.weights.addItem(w)
        self.weights.setCurrentText(weights or "default")
        pick = QPushButton("Checkpoint…")
        pick.clicked.connect(self._pick)
        h.addWidget(self.weights, 1)
        h.addWidget(pick)
        form.addRow("weights", row)
        form.addRow(QLabel("coco needs the file in torch's cache (see `rcnn-lens models`);\n"
                           "a checkpoint is a state_dict .pt/.pth, loaded with weights_only=True."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", "", "PyTorch checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.weights.setCurrentText(path)

    def choice(self) -> tuple[str, str | None]:
        w = self.weights.currentText().strip()
        return self.preset.currentData(), (None if w in ("", "default") else w)
