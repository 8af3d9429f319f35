"""The main window: the view, docks, menus and wiring. Model work happens in the engine process."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar

from core.errors import LensError
from core.images import IMAGE_SUFFIXES, load
from core.overlays import layers_for
from core.stages import STAGES

from .panels.inspector import Inspector
from .panels.stages import StagePanel
from .panels.thresholds import ThresholdPanel
from .view.canvas import LensView

APP = "R-CNN Lens"


def _natural(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class MainWindow(QMainWindow):
    def __init__(self, images=(), model: str | None = None, weights: str | None = None, device: str = "cpu",
                 settings: QSettings | None = None, engine_factory=None):
        super().__init__()
        self.qsettings = settings or QSettings("rcnn-lens", "rcnn-lens")
        self.engine_factory = engine_factory
        self.engine = None
        self.model_name = model or self.qsettings.value("model", None) or "demo"
        self.weights = weights if model or weights else (self.qsettings.value("weights", None) or None)
        self.device = device
        self.pending_images = list(images)
        self.trace = None
        self.image = None
        self.image_path: str | None = None
        self.selected: int | None = None
        self.params: dict = {}
        self.last_error: str | None = None
        self.model_info: dict | None = None
        self._msg = None
        self._rebuild_queue: list[str] = []
        self._closing = False
        self.setWindowTitle(APP)
        self.resize(1280, 820)
        self.setAcceptDrops(True)

        self.view = LensView()
        self.setCentralWidget(self.view)
        self.stages = StagePanel()
        self.thresholds = ThresholdPanel()
        self.inspector = Inspector()
        self.docks: dict[str, QDockWidget] = {}
        for title, widget, area in (("Stages", self.stages, Qt.DockWidgetArea.LeftDockWidgetArea),
                                    ("Thresholds", self.thresholds, Qt.DockWidgetArea.LeftDockWidgetArea),
                                    ("Inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[title.lower()] = dock
        self.docks["stages"].setMinimumWidth(300)
        self.docks["inspector"].setMinimumWidth(280)
        self.docks["inspector"].setMaximumWidth(460)
        self.readout = QLabel("")
        self.readout.setObjectName("readout")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        self.statusBar().addPermanentWidget(self.readout, 1)
        self.statusBar().addPermanentWidget(self.busy)
        self._build_menus()

        self.stages.visibility_changed.connect(self.view.set_visible)
        self.stages.settings_changed.connect(self._stage_settings_changed)
        self.thresholds.changed.connect(self._thresholds_changed)
        self.view.hovered.connect(self._hover)
        self.view.left.connect(lambda: self.readout.setText(""))
        self.view.clicked.connect(self._click)
        self._restore()
        for st in STAGES:
            self.view.set_visible(st, self.stages.visible[st])

    # ------------------------------------------------------------------ menus
    def _action(self, menu, text, slot, shortcut=None, name=None):
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(slot)
        if name:
            a.setObjectName(name)
        menu.addAction(a)
        self.addAction(a)
        return a

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open, "open")
        self.recent_menu = m.addMenu("Open &Recent")
        self._action(m, "&Next image in folder", lambda: self.step_image(1), "PgDown", "next")
        self._action(m, "&Previous image in folder", lambda: self.step_image(-1), "PgUp", "previous")
        m.addSeparator()
        self._action(m, "&Export annotated PNG…", self.export_dialog, "Ctrl+E", "export")
        self._action(m, "&Copy annotated image", self.copy_to_clipboard, "Ctrl+Shift+C", "copy")
        self._action(m, "Save &window screenshot…", self.grab_dialog, "Ctrl+Shift+S", "grab")
        m.addSeparator()
        self._action(m, "&Quit", self.close, "Ctrl+Q", "quit")
        mm = self.menuBar().addMenu("&Model")
        self._action(mm, "Choose &model and weights…", self.model_dialog, "Ctrl+M", "model")
        v = self.menuBar().addMenu("&View")
        self._action(v, "&Fit image", self.view.fit, "F", "fit")
        v.addSeparator()
        for i, st in enumerate(STAGES, start=1):
            self._action(v, f"Toggle {st}", lambda _=False, s=st: self.stages.toggle(s), str(i), f"toggle_{st}")
        self._rebuild_recent()

    # ------------------------------------------------------------------ engine
    def start(self) -> None:
        """Start the engine and the first image (call after show: the window comes first)."""
        from .worker import EngineClient

        self.engine = (self.engine_factory or EngineClient)(self)
        QTimer.singleShot(50, self._warm_up)
        self.engine.loaded.connect(self._loaded)
        self.engine.traced.connect(self._traced)
        self.engine.failed.connect(self._failed)
        self.engine.status.connect(lambda t: self.statusBar().showMessage(t, 5000))
        self.engine.busy_changed.connect(self.busy.setVisible)
        self._status(f"loading {self.model_name}…")
        self.engine.load(self.model_name, self.weights, self.device)
        first = self.pending_images[0] if self.pending_images else self._demo_image()
        if first:
            self.open_image(first)

    @staticmethod
    def _warm_up() -> None:
        """First-use costs (colour tables, overlay modules) paid while the engine loads torch."""
        from core.colormaps import lut
        from core.overlays import stage_module

        for name in ("viridis", "inferno", "turbo"):
            lut(name)
        for st in STAGES:
            stage_module(st)

    @staticmethod
    def _demo_image() -> str | None:
        from core.paths import DEMO_IMAGES

        demos = sorted(DEMO_IMAGES.glob("*.png"), key=_natural)
        return str(demos[0]) if demos else None

    def _loaded(self, info: dict) -> None:
        self.model_info = info
        self.qsettings.setValue("model", info["name"])
        self.qsettings.setValue("weights", self.weights or "")
        self._status(f"model {info['name']} ({info['weights']}) on {info['device']}")

    def _traced(self, tr) -> None:
        if self._closing:
            return
        if self.image_path is not None and tr.meta.name != self.image_path:
            return  # a trace of an image that is no longer shown
        self.trace = tr
        self.selected = None
        self._offer_choices()
        self.thresholds.set_values(tr.params)
        self.rebuild_all()
        self.inspector.set_trace(tr)
        self.inspector.show_selection(tr, None)
        n = len(tr.detections.keep)
        if os.environ.get("RCNN_LENS_REPORT_SHOWN"):
            print(f"traced {n}", flush=True)
        self._status(f"{Path(tr.meta.name).name}: {n} detection{'s' if n != 1 else ''}, "
                     f"{sum(tr.timings_ms.values()):.0f} ms ({tr.model}, {tr.weights})")

    def _failed(self, kind: str, message: str) -> None:
        if kind == "load" and self.model_info:
            self.model_name, self.weights = self.model_info["name"], self.model_info["weights"]
        elif kind == "load" and (self.model_name, self.weights) not in (("demo", None), ("demo", "demo")):
            # nothing loaded yet (a remembered model that is gone, say): fall back to the demo
            self.show_error(f"{message} - falling back to the demo model")
            self.set_model("demo", None)
            return
        self.show_error(message)

    # ------------------------------------------------------------------ images
    def open_image(self, path: str) -> bool:
        try:
            rgb = load(path)
        except LensError as err:
            self.show_error(str(err))
            return False
        self.image, self.image_path = rgb, str(path)
        self.view.set_image(rgb)
        if self.trace is not None and self.trace.meta.name != str(path):
            self.view.clear_stages()
            self.trace = None
        self.setWindowTitle(f"{APP} - {Path(path).name}")
        self._add_recent(str(path))
        self.qsettings.setValue("last_dir", str(Path(path).parent))
        if self.engine is not None:
            self.engine.trace(rgb, str(path), self.params)
            self._status(f"tracing {Path(path).name}…")
        return True

    def open_dialog(self) -> None:
        start = self.qsettings.value("last_dir", "") or ""
        pattern = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
        path, _ = QFileDialog.getOpenFileName(self, "Open image", start, pattern)
        if path:
            self.open_image(path)

    def folder_images(self) -> list[Path]:
        if not self.image_path:
            return []
        folder = Path(self.image_path).parent
        return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                      key=_natural)

    def step_image(self, step: int) -> None:
        files = self.folder_images()
        if not files:
            return
        cur = Path(self.image_path)
        names = [p.name for p in files]
        i = names.index(cur.name) if cur.name in names else -1
        j = i + step
        if 0 <= j < len(files):
            self.open_image(str(files[j]))
        else:
            self._status("first image of the folder" if j < 0 else "last image of the folder")

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.qsettings.setValue("recent", json.dumps([path, *recent][:10]))
        self._rebuild_recent()

    def _recent(self) -> list[str]:
        try:
            v = json.loads(self.qsettings.value("recent", "[]") or "[]")
            return [str(p) for p in v] if isinstance(v, list) else []
        except ValueError:
            return []

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for p in self._recent():
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self.open_image(path))
        self.recent_menu.setEnabled(bool(self._recent()))

    def dragEnterEvent(self, ev) -> None:  # noqa: N802 - Qt API
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.open_image(url.toLocalFile())
                break

    # ------------------------------------------------------------------ model
    def model_dialog(self) -> None:
        from .dialogs import ModelDialog

        dlg = ModelDialog(self.model_name, self.weights, self)
        if dlg.exec():
            self.set_model(*dlg.choice())

    def set_model(self, name: str, weights: str | None) -> None:
        self.model_name, self.weights = name, weights
        self.params = {}
        self.engine.load(name, weights, self.device)
        if self.image is not None:
            self.engine.trace(self.image, self.image_path, self.params)
        self._status(f"loading {name}…")

    # ------------------------------------------------------------------ stages
    def rebuild_stage(self, stage: str) -> None:
        if self.trace is None:
            return
        try:
            sl = layers_for(self.trace, stage, self.stages.settings[stage])
        except LensError as err:
            self.show_error(str(err))
            return
        self.view.set_stage(stage, sl)

    def rebuild_all(self) -> None:
        """Rebuild every stage's items, one stage per event-loop turn (visible ones first), so a
        new trace never blocks the UI for the sum of all seven."""
        order = [s for s in STAGES if self.stages.visible[s]] + [s for s in STAGES if not self.stages.visible[s]]
        first = not self._rebuild_queue
        self._rebuild_queue = order
        if first:
            QTimer.singleShot(0, self._rebuild_next)

    def _rebuild_next(self) -> None:
        if not self._rebuild_queue or self._closing:
            return
        stage = self._rebuild_queue.pop(0)
        self.rebuild_stage(stage)
        if self._rebuild_queue:
            QTimer.singleShot(0, self._rebuild_next)

    @property
    def settled(self) -> bool:
        """No trace pending in the engine and every stage's items built."""
        return self.engine is not None and not self.engine.busy and not self._rebuild_queue

    def _stage_settings_changed(self, stage: str) -> None:
        if stage == "objectness" and self.trace is not None:
            self._offer_choices()  # the anchor choices depend on the level
        self.rebuild_stage(stage)

    def _offer_choices(self) -> None:
        """Fill the stage panel's level and anchor choices from the current trace."""
        tr = self.trace
        anchors = {a.name: [f"size {a.describe_anchor(k)[0]:g}, ratio {a.describe_anchor(k)[1]:g}"
                            for k in range(a.per_cell)] for a in tr.anchors}
        self.stages.set_model_info(list(tr.features), list(tr.levels), anchors, len(tr.box_head.rois))

    def _thresholds_changed(self, values: dict) -> None:
        if self.trace is None or self.engine is None:
            return
        self.params = values
        self.engine.retrace(values)
        self._status("rerunning the stages after the thresholds…")

    # ------------------------------------------------------------------ hover and click
    def _model_xy(self, x: float, y: float) -> tuple[float, float]:
        sy, sx = self.trace.meta.scale
        return x * sx, y * sy

    def _cell(self, level_stride, x, y):
        mx, my = self._model_xy(x, y)
        return int(round(my / level_stride[0])), int(round(mx / level_stride[1]))

    def readout_text(self, x: float, y: float) -> str:
        parts = [f"image {x:.0f}, {y:.0f}"]
        tr = self.trace
        if tr is None:
            return parts[0]
        mx, my = self._model_xy(x, y)
        parts.append(f"model {mx:.0f}, {my:.0f}")
        s = self.stages.settings
        fname = s["features"]["level"] or next(iter(tr.features))
        f = tr.features.get(fname)
        if f is not None:
            r, c = self._cell(f.stride, x, y)
            if 0 <= r < f.valid[0] and 0 <= c < f.valid[1]:
                from core.overlays.features import reduce

                v = float(reduce(f.data[:, r:r + 1, c:c + 1], s["features"]["reduction"],
                                 int(s["features"]["channel"]))[0, 0])
                parts.append(f"feature {fname} [{r},{c}] {v:.3g}")
        lvl = s["objectness"]["level"] or tr.levels[0]
        if lvl in tr.levels:
            i = tr.levels.index(lvl)
            a = tr.anchors[i]
            r, c = self._cell(a.stride, x, y)
            vh, vw = a.valid(tr.meta)
            if 0 <= r < vh and 0 <= c < vw:
                logit = float(tr.rpn[i].objectness[:, r, c].max())
                parts.append(f"objectness {lvl} [{r},{c}] {1 / (1 + np.exp(-logit)):.3f}")
        hit = self.view.box_at("detections", x, y, "detections.kept")
        if hit is not None:
            d = tr.detections
            k = int(d.keep[hit])
            parts.append(f"box: {tr.class_name(int(d.label[k]))} {d.scores[k]:.3f}")
        else:
            hit = self.view.box_at("proposals", x, y)
            if hit is not None:
                parts.append(f"proposal {hit}: objectness {tr.proposals.scores[hit]:.3f}")
        return "   ".join(parts)

    def _hover(self, x: float, y: float) -> None:
        self.readout.setText(self.readout_text(x, y))

    def _click(self, x: float, y: float) -> None:
        tr = self.trace
        if tr is None:
            return
        hit = self.view.box_at("detections", x, y, "detections.kept")
        if hit is not None:
            self.select_detection(hit)
            return
        if any(self.stages.visible[s] for s in ("anchors", "objectness", "features")):
            lvl = self.stages.settings["anchors"]["level"] or tr.levels[0]
            a = tr.anchors[tr.levels.index(lvl)]
            r, c = self._cell(a.stride, x, y)
            if 0 <= r < a.grid[0] and 0 <= c < a.grid[1]:
                self.stages.set_cell(r, c)

    def select_detection(self, j: int) -> None:
        tr = self.trace
        self.selected = j
        lin = tr.lineage(j)
        self.inspector.show_selection(tr, j)
        self.stages.settings["rois"]["roi"] = lin["roi"]
        self.stages.show_anchor(lin["level"], lin["cell"])
        self.rebuild_stage("rois")
        self.rebuild_stage("anchors")

    # ------------------------------------------------------------------ export
    def visible_stages(self) -> list[str]:
        return [s for s in STAGES if self.stages.visible[s]]

    def export_to(self, path: str) -> bool:
        if self.trace is None:
            self.show_error("nothing to export yet: the trace is still running")
            return False
        from core.export import write_export

        try:
            write_export(self.trace, Path(path), self.visible_stages(), self.stages.settings,
                         legend=True, image_path=self.image_path)
        except LensError as err:
            self.show_error(str(err))
            return False
        self._status(f"exported {path} and its .json sidecar")
        return True

    def export_dialog(self) -> None:
        if self.trace is None:
            self.show_error("nothing to export yet: the trace is still running")
            return
        start = Path(self.qsettings.value("export_dir", "") or Path(self.image_path or ".").parent)
        name = start / f"{Path(self.image_path or 'image').stem}.lens.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export annotated PNG", str(name), "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.qsettings.setValue("export_dir", str(Path(path).parent))
            self.export_to(path)

    def annotated_qimage(self) -> QImage | None:
        if self.trace is None:
            return None
        from core.export import render_trace

        rgb, _, _ = render_trace(self.trace, self.visible_stages(), self.stages.settings, legend=True)
        rgb = np.ascontiguousarray(rgb)
        return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888).copy()

    def copy_to_clipboard(self) -> None:
        img = self.annotated_qimage()
        if img is None:
            self.show_error("nothing to copy yet: the trace is still running")
            return
        QGuiApplication.clipboard().setImage(img)
        self._status("annotated image copied to the clipboard")

    def grab_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save window screenshot", "rcnn-lens-window.png", "PNG (*.png)")
        if path:
            self.grab_to(path)

    def grab_to(self, path: str) -> bool:
        from PySide6.QtCore import QBuffer, QIODevice

        from core.atomic import write_bytes

        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.grab().save(buf, "PNG")
        try:
            write_bytes(path, bytes(buf.data()))
        except LensError as err:
            self.show_error(str(err))
            return False
        self._status(f"saved window screenshot {path}")
        return True

    # ------------------------------------------------------------------ messages, settings
    def _status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def show_error(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        if self._msg is None:
            self._msg = QMessageBox(QMessageBox.Icon.Warning, APP, message, QMessageBox.StandardButton.Ok, self)
            self._msg.setObjectName("error_box")
        self._msg.setText(message)
        self._msg.open()

    def _restore(self) -> None:
        geo = self.qsettings.value("geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        state = self.qsettings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        try:
            st = json.loads(self.qsettings.value("stage_settings", "{}") or "{}")
            vis = json.loads(self.qsettings.value("visible", "{}") or "{}")
        except ValueError:
            st, vis = {}, {}
        self.stages.restore(st, vis)

    def save_settings(self) -> None:
        self.qsettings.setValue("geometry", self.saveGeometry())
        self.qsettings.setValue("window_state", self.saveState())
        self.qsettings.setValue("stage_settings", json.dumps(self.stages.snapshot()))
        self.qsettings.setValue("visible", json.dumps(self.stages.visible))
        self.qsettings.sync()

    def closeEvent(self, ev) -> None:  # noqa: N802
        self._closing = True
        self._rebuild_queue = []
        self.save_settings()
        if self.engine is not None:
            self.engine.stop()
        super().closeEvent(ev)

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        if self.engine is None:
            QTimer.singleShot(0, self.start)
