"""The main window: wiring only. The state and its rules live in core.state.app_state, hover and click in
core.state.probe, the engine's side in gui.session, files in gui.files, export in gui.actions, the view's
items in gui.builder, the furniture in gui.layout, memory in gui.persist."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow

from core.errors import LensError
from core.models.choice import banner
from core.state import probe
from core.state.app_state import LensState
from core.tracing.images import IMAGE_SUFFIXES

from .actions import Actions
from .anchor_side import AnchorSide
from .builder import StageBuilder
from .files import Images, folder_images, resolve
from .layout import furnish, menus, one_column, readable_tabs
from .model_dialog import download, model_loaded, open_chooser
from .persist import Persist
from .session import Session
from .truth_side import TruthSide, startup

APP = "R-CNN Lens"
REPORT = bool(os.environ.get("RCNN_LENS_REPORT_SHOWN"))


class MainWindow(QMainWindow):
    def __init__(self, images=(), model: str | None = None, weights: str | None = None, device: str = "cpu",
                 settings=None, engine_factory=None, trust: bool = False, annotations: str | None = None,
                 seed: int | None = None):
        super().__init__()
        images, model, weights, analysis = startup(images, model, weights)  # rcnn-lens OUT: an analysis
        self.persist = Persist(settings)
        saved_model, saved_weights = self.persist.model()
        stage_settings, visible = self.persist.stages()
        self.state = s = LensState(model or saved_model, weights if model or weights else saved_weights, device,
                                   stage_settings, visible, trust=trust)  # trust: this run only, never saved
        self.first_image, explicit, problem = resolve([str(p) for p in images])
        self.last_error, self._closing, self._started = None, False, False
        self.setWindowTitle(APP)
        screen = QApplication.primaryScreen()
        avail = screen.availableGeometry() if screen is not None else None
        self.resize(min(1280, avail.width() if avail else 1280), min(820, avail.height() if avail else 820))
        self.setAcceptDrops(True)
        self.files = Images(explicit, self)
        self.session = Session(s, self.say, self.show_error, engine_factory, self)
        self.actions_ = Actions(self, s, self.persist, self.say, self.show_error, self.session.fetch)
        furnish(self)
        self.truth_side = TruthSide(self, annotations, seed, analysis)  # its docks before the layout is restored
        self.anchor_side = AnchorSide(self)  # the Anchor what-if dock
        self.builder = StageBuilder(s, self.view, self.legend, self.session.fetch, lambda m: self.say(m, 10000), self)
        menus(self)
        self.persist.restore_window(self)
        self._fold = QTimer(self)  # after a resize settles: fold the docks into one column if the view got too narrow
        self._fold.setSingleShot(True)
        self._fold.setInterval(250)
        self._fold.timeout.connect(lambda: one_column(self))
        self._wire()
        self.truth_side.wire()
        self.anchor_side.wire()
        self.stages.show_state(s)
        if problem:
            QTimer.singleShot(0, lambda: self.show_error(problem))

    @property
    def engine(self):
        return self.session.engine

    def _wire(self) -> None:
        s, ev = self.state, self.state.events
        self.files.opened.connect(s.set_image)
        self.files.failed.connect(lambda path, msg: self.show_error(msg))
        self.files.skipped.connect(self.messages.show_message)
        self.files.edge.connect(lambda msg: self.say(msg, 5000))
        ev.image.connect(self._image_shown)
        ev.trace.connect(self._trace_shown)
        ev.part.connect(lambda path: (self.builder.part_arrived(path), self.actions_.retry()))
        ev.selection.connect(self._selection_shown)
        ev.settings.connect(lambda stage: (self.stages.show_state(s), self.builder.rebuild(stage)))
        ev.visible.connect(self._visible_changed)
        ev.loaded.connect(lambda info: model_loaded(self, info))
        self.session.download_offered.connect(lambda preset: download(self, preset))
        self.session.busy_changed.connect(self.busy.setVisible)
        self.stages.visibility_changed.connect(s.set_visible)
        self.stages.setting_changed.connect(self.set_setting)
        self.thresholds.changed.connect(s.set_param)
        self.thresholds.reset.connect(s.reset_params)
        self.view.hovered.connect(self._hover)
        self.view.left.connect(lambda: self.status.readout.setText(""))
        self.view.clicked.connect(self.click)
        self.builder.settled_changed.connect(self._built)

    def start(self) -> None:
        """Start the engine and read the first image (after show: the window comes first)."""
        from core.paths import DEMO_IMAGES

        self.session.start()
        if self.truth_side.start():
            return
        first = self.first_image or next((str(p) for p in folder_images(DEMO_IMAGES)), None)
        if first:
            self.files.open(first)

    # ------------------------------------------------------------------ state -> view
    def _image_shown(self, path: str) -> None:
        if not self.messages.button.isVisible():
            self.messages.dismiss()  # a problem with an earlier file: this one opened
        self.view.set_image(self.state.image)
        self.status.readout.setText("")  # what was under the mouse on the last image
        self.builder.rebuild_all()
        self.inspector.set_trace(None)
        self.inspector.show_selection(None, None)
        self.setWindowTitle(f"{APP} - {Path(path).name}")
        self.persist.add_recent(path)
        self.persist.set_last_dir("open", str(Path(path).parent))

    def _trace_shown(self, tr) -> None:
        if self._closing:
            return
        s = self.state
        self.stages.show_state(s)
        self.thresholds.set_values(tr.params, s.params)
        self.inspector.set_trace(tr)
        self.inspector.show_selection(tr, None)
        self.view.set_banner(banner(tr, s.random_weights))
        self.builder.rebuild_all()
        n = len(tr.detections.keep)
        self.say(f"{Path(tr.meta.name).name}: {n} detection{'s' if n != 1 else ''}, "
                 f"{sum(tr.timings_ms.values()):.0f} ms ({tr.model}, {tr.weights})")

    def _built(self, _settled: bool) -> None:
        if REPORT and self.state.trace is not None:
            print(f"traced {len(self.state.trace.detections.keep)}", flush=True)

    def _selection_shown(self, sel) -> None:
        self.builder.show_selection()
        self.inspector.show_selection(self.state.trace, sel)

    def _visible_changed(self, stage: str, on: bool) -> None:
        self.stages.show_visible(stage, on)
        self.builder.set_visible(stage, on)
        if REPORT:
            print(f"stage {stage} {'on' if on else 'off'}", flush=True)

    def set_setting(self, stage: str, key: str, value) -> None:
        try:
            self.state.set_setting(stage, key, value)
        except LensError as err:
            self.say(str(err), 10000)
            self.stages.show_state(self.state)

    def key_toggle(self, stage: str) -> None:
        """Keys 1-7 (and the View menu). A digit typed into a field never gets here: spin boxes and
        line edits claim printable keys before shortcuts (Qt's ShortcutOverride)."""
        self.stages.toggle(stage)

    # ------------------------------------------------------------------ hover and click
    def _under(self, x: float, y: float):
        return probe.hit(self.view.visible_layers(), x, y, 4 * self.view.image_per_screen_pixel())

    def _hover(self, x: float, y: float) -> None:
        self.status.readout.setText(probe.readout(self.state.trace, self.state.settings, x, y, self._under(x, y)))

    def click(self, x: float, y: float) -> None:
        """Select the box under (x, y); on empty space deselect, and pick the anchor cell there
        while a gridded stage is shown."""
        s = self.state
        if s.trace is None:
            return
        sel = self._under(x, y)
        if self.truth_side.clicked(sel):  # a truth box: its object
            return
        s.select(sel)
        if sel is None and any(s.visible.get(k) for k in ("anchors", "objectness", "features")):
            a = s.trace.anchors[s.trace.levels.index(s.settings["anchors"]["level"] or s.trace.levels[0])]
            r, c = probe.cell_at(s.trace, a.stride, x, y)
            if 0 <= r < a.grid[0] and 0 <= c < a.grid[1]:
                self.set_setting("anchors", "cell", [r, c])

    # ------------------------------------------------------------------ files, model, messages
    def open_image(self, path: str) -> None:
        self.files.open(str(path))

    def open_dialog(self) -> None:
        pattern = "Images (" + " ".join(f"*{x}" for x in IMAGE_SUFFIXES) + ");;All files (*)"
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.persist.last_dir("open"), pattern)
        if path:
            self.open_image(path)

    def fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.persist.recent():
            self.recent_menu.addAction(p).triggered.connect(lambda _=False, path=p: self.open_image(path))

    def model_dialog(self):
        return open_chooser(self)

    def say(self, text: str, ms: int = 0) -> None:
        self.status.say(text, ms)

    def show_error(self, message: str, action: str | None = None, slot=None) -> None:
        self.last_error = message
        self.say(message, 15000)
        self.messages.show_message(message, action, slot)

    @property
    def settled(self) -> bool:
        """No request pending in the engine, no image being read, every visible stage built."""
        return self._started and not self.session.busy and not self.files.reading and self.builder.settled

    def dragEnterEvent(self, ev) -> None:  # noqa: N802 - Qt API
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if files and not self.truth_side.dropped(files):
            self.open_image(files[0])

    def closeEvent(self, ev) -> None:  # noqa: N802
        self._closing = True
        self.builder.stop()
        self.persist.save_window(self)
        self.persist.save_stages(self.state.settings, self.state.visible)
        self.persist.sync()
        self.session.stop()
        super().closeEvent(ev)

    def showEvent(self, ev) -> None:  # noqa: N802
        super().showEvent(ev)
        if not self._started:
            if self.width() < 1150 and not self.persist.has_window_state():  # a small screen: one dock column
                self.tabifyDockWidget(self.docks["thresholds"], self.docks["inspector"])
                self.truth_side.small_screen()
                self.docks["stages"].raise_()
            self._started = True
            QTimer.singleShot(0, lambda: one_column(self))  # a layout saved on a larger screen that does not fit
            QTimer.singleShot(0, self.start)

    def childEvent(self, ev) -> None:  # noqa: N802
        super().childEvent(ev)
        if ev.polished():  # the tab bars QMainWindow makes when docks are tabbed together
            readable_tabs(ev.child())

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        if self._started:
            self._fold.start()
