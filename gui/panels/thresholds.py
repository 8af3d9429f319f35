"""Live thresholds: all seven of torchvision's FasterRCNN test-time keywords. Editing one sends
that one only (debounced), at the value typed: the others stay exactly as the model has them.
Reset goes back to the model's own values. A change reruns only the later stages (core.retrace)."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QPushButton, QSpinBox, QWidget

FIELDS = (
    ("rpn_pre_nms_top_n_test", "RPN top N per level before NMS", "int", 0, 1_000_000),
    ("rpn_nms_thresh", "RPN NMS IoU", "float", 0.0, 1.0),
    ("rpn_post_nms_top_n_test", "RPN top N after NMS", "int", 0, 1_000_000),
    ("rpn_score_thresh", "RPN objectness threshold", "float", 0.0, 1.0),
    ("box_score_thresh", "box score threshold", "float", 0.0, 1.0),
    ("box_nms_thresh", "box NMS IoU", "float", 0.0, 1.0),
    ("box_detections_per_img", "detections per image", "int", 0, 100_000),
)


class ThresholdPanel(QWidget):
    changed = Signal(str, object)  # key, value: one threshold the user changed
    reset = Signal()

    def __init__(self, parent=None, debounce_ms: int = 150):
        super().__init__(parent)
        form = QFormLayout(self)
        self.widgets = {}
        self._quiet = False
        self._dirty: dict = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._flush)
        for key, label, kind, lo, hi in FIELDS:
            if kind == "float":
                w = QDoubleSpinBox()
                w.setDecimals(4)
                w.setSingleStep(0.05)
            else:
                w = QSpinBox()
            w.setObjectName(key)
            w.setRange(lo, hi)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, k=key, kind=kind: self._edited(k, float(v) if kind == "float" else int(v)))
            w.setToolTip(key)
            form.addRow(label, w)
            self.widgets[key] = w
        self.reset_button = QPushButton("Reset to the model's values")
        self.reset_button.setObjectName("reset_thresholds")
        self.reset_button.clicked.connect(self.reset.emit)
        form.addRow(self.reset_button)
        self.setEnabled(False)

    def _edited(self, key: str, value) -> None:
        if not self._quiet:
            self._dirty[key] = value
            self._timer.start()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for k, v in dirty.items():
            self.changed.emit(k, v)

    def set_values(self, params: dict, overridden=()) -> None:
        """Show ``params`` (the trace's); fields the user overrode are marked."""
        self._quiet = True
        try:
            for k, w in self.widgets.items():
                if k in params:
                    w.setValue(params[k])
                f = w.font()
                f.setBold(k in overridden)
                w.setFont(f)
        finally:
            self._quiet = False
        self.setEnabled(True)
