"""The stage panel: one row per stage with its visibility toggle (keys 1-7) and its controls."""

from __future__ import annotations

import copy

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.colormaps import available
from core.overlays.settings import REDUCTIONS, defaults
from core.stages import STAGES

TITLES = {"input": "Input (resized, padded)", "features": "Backbone features", "anchors": "Anchors",
          "objectness": "RPN objectness", "proposals": "Proposals", "rois": "RoIs (RoIAlign)",
          "detections": "Detections"}


class StagePanel(QWidget):
    visibility_changed = Signal(str, bool)
    settings_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.settings = defaults()
        self.visible = {st: st == "detections" for st in STAGES}
        self.checks: dict[str, QCheckBox] = {}
        self.controls: dict[tuple[str, str], QWidget] = {}
        self._quiet = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        lay = QVBoxLayout(body)
        for i, st in enumerate(STAGES, start=1):
            cb = QCheckBox(f"{i}  {TITLES[st]}")
            cb.setObjectName(f"toggle_{st}")
            cb.setChecked(self.visible[st])
            f = cb.font()
            f.setBold(True)
            cb.setFont(f)
            cb.toggled.connect(lambda on, s=st: self._toggled(s, on))
            self.checks[st] = cb
            lay.addWidget(cb)
            form = QFormLayout()
            form.setContentsMargins(18, 0, 0, 6)
            getattr(self, f"_build_{st}")(form)
            lay.addLayout(form)
            line = QFrame()
            line.setFrameShape(QFrame.Shape.HLine)
            lay.addWidget(line)
        lay.addStretch(1)

    # ---- building blocks
    def _combo(self, form, stage, key, label, items):
        c = QComboBox()
        c.setObjectName(f"{stage}_{key}")
        for text, data in items:
            c.addItem(text, data)
        c.currentIndexChanged.connect(lambda _i, s=stage, k=key, w=c: self._set(s, k, w.currentData()))
        form.addRow(label, c)
        self.controls[(stage, key)] = c
        return c

    def _spin(self, form, stage, key, label, lo, hi, special=None):
        s = QSpinBox()
        s.setObjectName(f"{stage}_{key}")
        s.setRange(lo, hi)
        if special:
            s.setSpecialValueText(special)
        s.valueChanged.connect(lambda v, st=stage, k=key: self._set(st, k, None if (special and v == lo) else v))
        form.addRow(label, s)
        self.controls[(stage, key)] = s
        return s

    def _opacity(self, form, stage):
        s = QSlider(Qt.Orientation.Horizontal)
        s.setObjectName(f"{stage}_opacity")
        s.setRange(0, 100)
        s.setValue(int(round(self.settings[stage]["opacity"] * 100)))
        s.valueChanged.connect(lambda v, st=stage: self._set(st, "opacity", v / 100.0))
        form.addRow("opacity", s)
        self.controls[(stage, "opacity")] = s

    def _check(self, form, stage, key, label):
        c = QCheckBox(label)
        c.setObjectName(f"{stage}_{key}")
        c.toggled.connect(lambda on, st=stage, k=key: self._set(st, k, bool(on)))
        form.addRow("", c)
        self.controls[(stage, key)] = c

    def _cmaps(self):
        return [(n, n) for n in available()]

    # ---- per stage
    def _build_input(self, form):
        self._opacity(form, "input")

    def _build_features(self, form):
        self._combo(form, "features", "level", "level", [])
        self._combo(form, "features", "reduction", "reduction", [(r, r) for r in REDUCTIONS])
        self._spin(form, "features", "channel", "channel", 0, 4095)
        self._combo(form, "features", "colormap", "colormap", self._cmaps())
        self._opacity(form, "features")

    def _build_anchors(self, form):
        self._combo(form, "anchors", "level", "level", [])
        self.cell_label = QLabel("cell: highest objectness")
        btn = QPushButton("Best cell")
        btn.setToolTip("back to the cell with the highest objectness (click the image to pick a cell)")
        btn.clicked.connect(lambda: self._set("anchors", "cell", None))
        form.addRow(self.cell_label, btn)

    def _build_objectness(self, form):
        self._combo(form, "objectness", "level", "level", [])
        self._combo(form, "objectness", "anchor", "anchor", [("max over anchors", None)])
        self._combo(form, "objectness", "mode", "values", [("probability", "prob"), ("logit", "logit")])
        self._combo(form, "objectness", "colormap", "colormap", self._cmaps())
        self._opacity(form, "objectness")

    def _build_proposals(self, form):
        self._spin(form, "proposals", "top_n", "top N", 0, 10000)
        self._check(form, "proposals", "pre_nms", "before NMS too (suppressed faded)")
        self._combo(form, "proposals", "colormap", "colormap", self._cmaps())

    def _build_rois(self, form):
        self._spin(form, "rois", "roi", "RoI", -1, 100000, special="best detection's")
        self._check(form, "rois", "show_all", "all pooled RoIs")
        self._opacity(form, "rois")

    def _build_detections(self, form):
        self._check(form, "detections", "suppressed", "suppressed by NMS, faded")

    # ---- state
    def _toggled(self, stage: str, on: bool) -> None:
        self.visible[stage] = on
        self.visibility_changed.emit(stage, on)

    def toggle(self, stage: str) -> None:
        self.checks[stage].toggle()

    def _set(self, stage: str, key: str, value) -> None:
        if self._quiet:
            return
        self.settings[stage][key] = value
        if stage == "anchors" and key == "cell":
            self.cell_label.setText("cell: highest objectness" if value is None else f"cell: {value[0]}, {value[1]}")
        self.settings_changed.emit(stage)

    def show_anchor(self, level: str, cell) -> None:
        """Point the anchors stage at a level and cell (a selected detection's anchor)."""
        self._quiet = True
        try:
            self.settings["anchors"]["level"] = level
            self.settings["anchors"]["cell"] = [int(cell[0]), int(cell[1])]
            c = self.controls[("anchors", "level")]
            c.setCurrentIndex(max(c.findData(level), 0))
            self.cell_label.setText(f"cell: {cell[0]}, {cell[1]}")
        finally:
            self._quiet = False

    def set_cell(self, row: int, col: int) -> None:
        self._set("anchors", "cell", [int(row), int(col)])

    def set_model_info(self, feature_levels, anchor_levels, anchors_per_cell: dict, rois: int) -> None:
        """Fill the level/anchor choices from a trace, keeping current choices where they exist."""
        self._quiet = True
        try:
            for stage, levels in (("features", feature_levels), ("anchors", anchor_levels),
                                  ("objectness", anchor_levels)):
                c = self.controls[(stage, "level")]
                cur = self.settings[stage]["level"]
                if [c.itemData(i) for i in range(c.count())] != list(levels):
                    c.clear()
                    for lv in levels:
                        c.addItem(lv, lv)
                if cur not in levels:
                    self.settings[stage]["level"] = levels[0] if levels else None
                    if stage == "anchors":
                        self.settings["anchors"]["cell"] = None
                c.setCurrentIndex(max(c.findData(self.settings[stage]["level"]), 0))
            lvl = self.settings["objectness"]["level"]
            a = self.controls[("objectness", "anchor")]
            a.clear()
            a.addItem("max over anchors", None)
            for k, text in enumerate(anchors_per_cell.get(lvl, [])):
                a.addItem(f"{k}: {text}", k)
            if self.settings["objectness"]["anchor"] is not None and \
                    self.settings["objectness"]["anchor"] >= len(anchors_per_cell.get(lvl, [])):
                self.settings["objectness"]["anchor"] = None
            a.setCurrentIndex(max(a.findData(self.settings["objectness"]["anchor"]), 0))
            roi = self.settings["rois"]["roi"]
            if roi is not None and roi >= rois:
                self.settings["rois"]["roi"] = None
            self._sync_simple()
        finally:
            self._quiet = False

    def _sync_simple(self) -> None:
        for (stage, key), w in self.controls.items():
            if key == "level" or (stage, key) == ("objectness", "anchor"):
                continue
            v = self.settings[stage][key]
            if isinstance(w, QComboBox):
                w.setCurrentIndex(max(w.findData(v), 0))
            elif isinstance(w, QSlider):
                w.setValue(int(round(float(v) * 100)))
            elif isinstance(w, QSpinBox):
                w.setValue(w.minimum() if v is None else int(v))
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(v))

    def restore(self, settings: dict | None, visible: dict | None) -> None:
        base = defaults()
        for st, vals in (settings or {}).items():
            if st in base and isinstance(vals, dict):
                for k, v in vals.items():
                    if k in base[st]:
                        base[st][k] = v
        try:
            from core.overlays.settings import check

            check(base)
        except Exception:  # noqa: BLE001 - a stale or hand-edited settings file: fall back to defaults
            base = defaults()
        self.settings = base
        self._quiet = True
        try:
            self._sync_simple()
        finally:
            self._quiet = False
        for st, on in (visible or {}).items():
            if st in self.checks:
                self.checks[st].setChecked(bool(on))

    def snapshot(self) -> dict:
        return copy.deepcopy(self.settings)
