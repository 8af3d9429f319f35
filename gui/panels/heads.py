"""Stage controls of the extra heads (Mask R-CNN's masks, Keypoint R-CNN's keypoints), bounded by
the trace: the detection whose mask probabilities (or keypoint heatmap) are shown runs over the
detections that have them, the heatmap list holds the model's keypoint names. A mixin of the
stage panel (gui.panels.stages): its building blocks, its ``controls``."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox

from .combos import refill


class HeadControls:
    def _build_masks(self, form, stage):
        self._spin(form, stage, "detection", "detection", -1, -1, special="best (0)")
        self.controls[(stage, "detection")].setToolTip("the detection whose 28x28 mask probabilities and box are "
                                                       "shown (0: the highest score)")
        self._fraction(form, stage, "threshold", "mask >")
        self._check(form, stage, "probability", "its 28x28 probabilities")
        self._check(form, stage, "roialign", "its RoIAlign samples")
        self.controls[(stage, "roialign")].setToolTip("where the mask RoIAlign sampled for this detection: its 14x14 "
                                                      "bins and sampling points, at the pool's own scale")
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _build_keypoints(self, form, stage):
        self._spin(form, stage, "detection", "detection", -1, -1, special="all")
        self._combo(form, stage, "heatmap", "heatmap", [("none", None)])
        self.controls[(stage, "heatmap")].setToolTip("one keypoint's heatmap (logits) over the detection's box; "
                                                     "of detection 0 when all are shown")
        s = QDoubleSpinBox()
        s.setObjectName(f"{stage}_min_score")
        s.setRange(-1000.0, 1000.0)
        s.setDecimals(2)
        s.setSingleStep(0.5)
        s.setSpecialValueText("all")
        s.setKeyboardTracking(False)
        s.setToolTip("only keypoints whose heatmap logit is at least this (torchvision's keypoints_scores)")
        s.valueChanged.connect(lambda v, w=s: self._emit(stage, "min_score", None if v == w.minimum() else float(v)))
        form.addRow("min score", s)
        self.controls[(stage, "min_score")] = s
        self._check(form, stage, "skeleton", "skeleton")
        self._check(form, stage, "names", "names")
        self._check(form, stage, "roialign", "RoIAlign samples")
        self.controls[(stage, "roialign")].setToolTip("where the keypoint RoIAlign sampled for the detection shown "
                                                      "(detection 0 when all are): its bins and sampling points")
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _bounds_heads(self, state) -> None:
        tr = state.trace
        for stage, head in (("masks", tr.masks), ("keypoints", tr.keypoints)):
            det = self.controls.get((stage, "detection"))
            if det is not None:
                det.setMaximum(len(head) - 1 if head is not None else -1)
        names = list(tr.keypoints.names) if tr.keypoints is not None else []
        refill(self.controls.get(("keypoints", "heatmap")), [("none", None), *[(f"{k}: {n}", k) for k, n in enumerate(names)]])
