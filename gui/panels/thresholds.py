"""Live thresholds: torchvision's FasterRCNN keywords, debounced; a change reruns only the later
stages (core.retrace in the engine)."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

FIELDS = (
    ("rpn_nms_thresh", "RPN NMS IoU", "float", 0.0, 1.0),
    ("rpn_post_nms_top_n_test", "RPN post-NMS top N", "int", 1, 5000),
    ("box_score_thresh", "box score threshold", "float", 0.0, 1.0),
    ("box_nms_thresh", "box NMS IoU", "float", 0.0, 1.0),
    ("box_detections_per_img", "detections per image", "int", 1, 1000),
)


class ThresholdPanel(QWidget):
    changed = Signal(dict)  # debounced: only the values that differ from the model's

    def __init__(self, parent=None, debounce_ms: int = 150):
        super().__init__(parent)
        form = QFormLayout(self)
        self.widgets = {}
        self._quiet = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(lambda: self.changed.emit(self.values()))
        for key, label, kind, lo, hi in FIELDS:
            if kind == "float":
                w = QDoubleSpinBox()
                w.setDecimals(3 if key == "box_score_thresh" else 2)
                w.setSingleStep(0.05)
            else:
                w = QSpinBox()
            w.setObjectName(key)
            w.setRange(lo, hi)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._edited)
            form.addRow(label, w)
            self.widgets[key] = w
        self.setEnabled(False)

    def _edited(self, *_):
        if not self._quiet:
            self._timer.start()

    def values(self) -> dict:
        return {k: (float(w.value()) if isinstance(w, QDoubleSpinBox) else int(w.value()))
                for k, w in self.widgets.items()}

    def set_values(self, params: dict) -> None:
        self._quiet = True
        try:
            for k, w in self.widgets.items():
                if k in params:
                    w.setValue(params[k])
        finally:
            self._quiet = False
        self.setEnabled(True)
