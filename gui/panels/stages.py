"""The stage panel: a row per registered stage the current trace has, with its visibility toggle
(its key, 1-7 for the inference stages) and its controls, bounded by the trace: levels it has,
channels of the chosen level, anchors of a cell, RoIs pooled. The panel holds no state of its own:
it shows the state's settings and asks for changes (``setting_changed``, ``visibility_changed``)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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
from core.overlays import REGISTRY
from core.overlays.settings import REDUCTIONS, bounds

from .combos import refill
from .heads import HeadControls
from .training_rows import TrainingRows
from .wheel import WheelGuard


class StagePanel(HeadControls, TrainingRows, QWidget):
    visibility_changed = Signal(str, bool)
    setting_changed = Signal(str, str, object)  # stage, key, value

    def __init__(self, parent=None):
        super().__init__(parent)
        self.checks: dict[str, QCheckBox] = {}
        self.rows: dict[str, QWidget] = {}
        self.controls: dict[tuple[str, str], QWidget] = {}
        self._quiet = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        self._lay = QVBoxLayout(body)
        for name in REGISTRY:
            self._add_row(name)
        self._lay.addStretch(1)
        self.wheel = WheelGuard(scroll)
        self.wheel.guard(body)

    def _add_row(self, name: str) -> None:
        st = REGISTRY[name]
        row = QWidget()
        v = QVBoxLayout(row)
        v.setContentsMargins(0, 0, 0, 0)
        cb = QCheckBox(f"{st.key}  {st.title}" if st.key else st.title)
        cb.setObjectName(f"toggle_{name}")
        f = cb.font()
        f.setBold(True)
        cb.setFont(f)
        cb.toggled.connect(lambda on, s=name: self._quiet or self.visibility_changed.emit(s, on))
        self.checks[name] = cb
        v.addWidget(cb)
        form = QFormLayout()
        form.setContentsMargins(18, 0, 0, 6)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        getattr(self, f"_build_{name}", self._build_generic)(form, name)
        v.addLayout(form)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        v.addWidget(line)
        self.rows[name] = row
        self._lay.addWidget(row)

    # ---- building blocks
    def _emit(self, stage, key, value) -> None:
        if not self._quiet:
            self.setting_changed.emit(stage, key, value)

    def _combo(self, form, stage, key, label, items):
        c = QComboBox()
        c.setObjectName(f"{stage}_{key}")
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        c.setMinimumContentsLength(4)
        for text, data in items:
            c.addItem(text, data)
        c.currentIndexChanged.connect(lambda _i, s=stage, k=key, w=c: self._emit(s, k, w.currentData()))
        form.addRow(label, c)
        self.controls[(stage, key)] = c
        return c

    def _spin(self, form, stage, key, label, lo, hi, special=None):
        s = QSpinBox()
        s.setObjectName(f"{stage}_{key}")
        s.setRange(lo, hi)
        s.setKeyboardTracking(False)  # a value once typed, not one per keystroke
        if special:
            s.setSpecialValueText(special)
        s.valueChanged.connect(lambda v, st=stage, k=key, w=s: self._emit(st, k, None if (special and v == w.minimum())
                                                                           else int(v)))
        form.addRow(label, s)
        self.controls[(stage, key)] = s
        return s

    def _opacity(self, form, stage):
        s = QSlider(Qt.Orientation.Horizontal)
        s.setObjectName(f"{stage}_opacity")
        s.setRange(0, 100)
        s.valueChanged.connect(lambda v, st=stage: self._emit(st, "opacity", v / 100.0))
        form.addRow("opacity", s)
        self.controls[(stage, "opacity")] = s

    def _check(self, form, stage, key, label):
        c = QCheckBox(label)
        c.setObjectName(f"{stage}_{key}")
        c.toggled.connect(lambda on, st=stage, k=key: self._emit(st, k, bool(on)))
        form.addRow("", c)
        self.controls[(stage, key)] = c

    def _cmaps(self):
        return [(n, n) for n in available()]

    # ---- per stage (a stage without a builder gets controls from its default settings)
    def _build_generic(self, form, stage):
        """Controls from the default settings: a choice list, a colormap, opacity, a flag, a count,
        a 0..1 threshold. (Settings that need the trace, such as a detection or truth object, want a
        builder of their own: ``_build_<stage>``.)"""
        st = REGISTRY[stage]
        for key, v in st.defaults.items():
            label = key.replace("_", " ")
            if key in st.choices:
                self._combo(form, stage, key, label, [(c, c) for c in st.choices[key]])
            elif key == "opacity":
                self._opacity(form, stage)
            elif key == "colormap":
                self._combo(form, stage, key, key, self._cmaps())
            elif isinstance(v, bool):
                self._check(form, stage, key, label)
            elif isinstance(v, int):
                self._spin(form, stage, key, label, 0, 100000)
            elif isinstance(v, float) and key == "threshold":
                self._fraction(form, stage, key, label)

    def _fraction(self, form, stage, key, label):
        s = QDoubleSpinBox()
        s.setObjectName(f"{stage}_{key}")
        s.setRange(0.0, 1.0)
        s.setDecimals(3)
        s.setSingleStep(0.05)
        s.setKeyboardTracking(False)
        s.valueChanged.connect(lambda v, st=stage, k=key: self._emit(st, k, float(v)))
        form.addRow(label, s)
        self.controls[(stage, key)] = s

    def _build_features(self, form, stage):
        self._combo(form, stage, "level", "level", [])
        self._combo(form, stage, "reduction", "channels", [(f"{r} over channels" if r != "channel" else
                                                            "one channel", r) for r in REDUCTIONS])
        self._spin(form, stage, "channel", "channel", 0, 0)
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _build_anchors(self, form, stage):
        self._combo(form, stage, "level", "level", [])
        self.cell_label = QLabel("cell: best")
        self.cell_label.setObjectName("anchors_cell")
        btn = QPushButton("Best cell")
        btn.setToolTip("back to the cell with the highest objectness (click the image to pick a cell)")
        self.cell_label.setToolTip(btn.toolTip())
        btn.clicked.connect(lambda: self._emit("anchors", "cell", None))
        form.addRow(self.cell_label, btn)
        self._opacity(form, stage)

    def _build_objectness(self, form, stage):
        self._combo(form, stage, "level", "level", [])
        self._combo(form, stage, "anchor", "anchor", [("max over anchors", None)])
        self._combo(form, stage, "mode", "values", [("probability", "prob"), ("logit", "logit")])
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _build_proposals(self, form, stage):
        self._spin(form, stage, "top_n", "top N", 0, 100_000)
        self._check(form, stage, "pre_nms", "also before NMS (faded)")
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _build_rois(self, form, stage):
        self._spin(form, stage, "roi", "RoI", -1, -1, special="best detection's")
        self._check(form, stage, "show_all", "all pooled RoIs")
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _build_detections(self, form, stage):
        self._check(form, stage, "suppressed", "also suppressed (faded)")
        self._opacity(form, stage)

    # ---- showing the state
    def toggle(self, stage: str) -> None:
        if stage in self.checks and self.rows[stage].isVisibleTo(self):
            self.checks[stage].toggle()

    def show_visible(self, stage: str, on: bool) -> None:
        if stage in self.checks and self.checks[stage].isChecked() != on:
            self._quiet = True
            try:
                self.checks[stage].setChecked(on)
            finally:
                self._quiet = False

    def show_state(self, state) -> None:
        """Controls, bounds and rows from the state (no signals while doing it)."""
        self._quiet = True
        try:
            have = set(state.available_stages())
            for name, row in self.rows.items():
                row.setVisible(name in have)
                self.checks[name].setChecked(bool(state.visible.get(name)))
            if state.trace is not None:
                self._bounds(state)
            for (stage, key), w in self.controls.items():
                self._show(w, state.settings.get(stage, {}).get(key))
            if "anchors" in state.settings:
                cell = state.settings["anchors"]["cell"]
                self.cell_label.setText("cell: best" if cell is None else f"cell: {cell[0]}, {cell[1]}")
            ch = self.controls.get(("features", "channel"))
            if ch is not None:
                ch.setEnabled(state.settings["features"]["reduction"] == "channel")
        finally:
            self._quiet = False

    def _bounds(self, state) -> None:
        b = bounds(state.trace)
        s = state.settings
        for stage, levels in (("features", b["feature_levels"]), ("anchors", b["anchor_levels"]),
                              ("objectness", b["anchor_levels"])):
            refill(self.controls.get((stage, "level")), [(lv, lv) for lv in levels])
        names = b["anchor_names"].get(s["objectness"]["level"], [])
        refill(self.controls.get(("objectness", "anchor")),
               [("max over anchors", None), *[(f"{k}: {text}", k) for k, text in enumerate(names)]])
        ch = self.controls.get(("features", "channel"))
        if ch is not None:
            ch.setMaximum(max(b["channels"].get(s["features"]["level"], 1) - 1, 0))
        top = self.controls.get(("proposals", "top_n"))
        if top is not None:
            top.setMaximum(max(len(state.trace.proposals.keep), int(s["proposals"]["top_n"])))
        roi = self.controls.get(("rois", "roi"))
        if roi is not None:
            roi.setMaximum(max(b["rois"] - 1, -1))
        self._bounds_heads(state)
        self._bounds_training(state)

    @staticmethod
    def _show(w, v) -> None:
        if isinstance(w, QComboBox):
            w.setCurrentIndex(max(w.findData(v), 0))
        elif isinstance(w, QSlider):
            w.setValue(int(round(float(v if v is not None else 1.0) * 100)))
        elif isinstance(w, QSpinBox):
            w.setValue(w.minimum() if v is None else int(v))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(w.minimum() if v is None and w.specialValueText() else float(v or 0.0))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(v))
