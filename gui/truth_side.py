"""The app's ground-truth side, wired: the Truth dock (objects, verdicts, filters, a score slider),
the Analysis dock (an ``rcnn-lens analyze`` folder, the most missed images first), the selected
object's path drawn on the image (core.overlays.diagnosis) with its sentence in the legend and the
inspector, the inspector's training page (seed, Resample, training table), the File menu's
"Open annotations…" and "Open analysis folder…", a Truth menu, clicks on truth boxes, and what is
remembered (the annotations, the seed). The state and its rules live in core.state.truth
(``state.gt``); the engine reads the truth and computes the training view and verdicts
(core.engine.truth_handlers)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog

from core.analysis import browse
from core.errors import LensError
from core.overlays.paths import OBJECT, object_path

from .layout import add_action, add_dock
from .panels.analysis import AnalysisPanel
from .panels.truth import TruthPanel
from .reading import read_folder

TRAINING_ROWS = ("anchor_targets", "roi_targets", "loss")
SHOW = {"truth": "ground truth", "anchor_targets": "anchor targets", "roi_targets": "RoI targets",
        "loss": "training loss"}
ANNOTATION_FILES = "Annotations (*.json *.xml *.txt *.yaml *.yml);;All files (*)"


def startup(images, model, weights):
    """``rcnn-lens OUT`` where OUT holds analysis.jsonl: the analysis opens (and, unless --model
    says otherwise, the model it was made with). -> (images, model, weights, analysis folder)."""
    images = [str(p) for p in images]
    if len(images) == 1 and browse.is_browsable(images[0]):
        folder = images[0]
        if model is None:
            try:
                s = browse.settings(folder) if browse.is_analysis(folder) else browse.open_compare(folder).runs[0]
            except LensError:
                s = {}  # said when the window opens it
            if s.get("model"):
                model, weights = s["model"], s.get("weights") or None
        return [], model, weights, folder
    return images, model, weights, None


class _Bridge(QObject):
    read = Signal(object, str, bool)  # Analysis or None, the error, switch to its model


class TruthSide(QObject):
    def __init__(self, win, annotations=None, seed=None, analysis=None):
        """Make the docks (before the window restores its layout); ``wire`` after the menus."""
        super().__init__(win)
        self.reading = 0  # analysis folders being read
        self._bridge = _Bridge()
        self._bridge.read.connect(self._analysis_read)
        self.win, self.state, self.gt = win, win.state, win.state.gt
        q = win.persist.q
        saved = q.value("annotations", "") or ""
        if annotations is None and saved and Path(saved).exists():
            annotations = saved
        self.gt.set_annotations(annotations, now=False)
        try:
            self.gt.seed = int(seed if seed is not None else q.value("seed", 0) or 0)
        except (TypeError, ValueError):
            self.gt.seed = 0
        self.analysis = None
        self.pending = analysis
        self.panel, self.browser = TruthPanel(), AnalysisPanel()
        for title, widget, area in (("Truth", self.panel, Qt.DockWidgetArea.RightDockWidgetArea),
                                    ("Analysis", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)):
            add_dock(win, title, widget, area)
        d = win.docks
        win.splitDockWidget(d["inspector"], d["truth"], Qt.Orientation.Vertical)
        win.tabifyDockWidget(d["stages"], d["analysis"])
        d["analysis"].setVisible(False)
        d["stages"].raise_()
        win.resizeDocks([d["inspector"]], [340], Qt.Orientation.Horizontal)  # room for the Truth table
        win.resizeDocks([d["inspector"], d["truth"]], [3, 2], Qt.Orientation.Vertical)

    # ------------------------------------------------------------------ wiring
    def wire(self) -> None:
        win, s, gt = self.win, self.state, self.gt
        self._menus()
        s.events.image.connect(self._image)
        s.events.trace.connect(self._trace)
        gt.events.object.connect(self._object)
        gt.events.options.connect(self._options)
        self.panel.object_selected.connect(gt.select)
        self.panel.threshold_changed.connect(lambda v: s.set_param("box_score_thresh", v))
        self.panel.open_annotations.connect(self.annotations_dialog)
        page = win.inspector.training
        page.show_seed(gt.seed)
        page.seed_changed.connect(self._seed)
        page.resample.connect(gt.resample)
        page.fetch.connect(lambda source, path: win.session.fetch(source, path))
        s.events.part.connect(lambda path: page.waiting is not None and tuple(path) == tuple(page.waiting)
                              and page.show_training(s.trace, gt.object))
        self.browser.chosen.connect(self.open_from_analysis)
        self.browser.open_folder.connect(self.analysis_dialog)
        from .compare_side import CompareSide

        self.compare = CompareSide(win, self)  # compare folders: the same dock, B flips between runs

    def _menus(self) -> None:
        win = self.win

        def act(menu, text, slot, shortcut=None, name="", before=None):
            return add_action(win, menu, text, slot, shortcut, name, before)

        bar = win.menuBar()
        file_menu = next(a.menu() for a in bar.actions() if a.menu() is not None and a.text() == "&File")
        export = next((a for a in file_menu.actions() if a.objectName() == "export"), None)
        act(file_menu, "Open &annotations…", self.annotations_dialog, "Ctrl+Shift+O", "open_annotations", export)
        act(file_menu, "Open a&nalysis folder…", self.analysis_dialog, "Ctrl+Shift+A", "open_analysis", export)
        file_menu.insertSeparator(export)
        m = bar.addMenu("&Truth")
        bar.insertMenu(win.view_menu.menuAction(), m)
        act(m, "&Resample training minibatches", self.gt.resample, "Ctrl+R", "resample")
        act(m, "&Next lost object", lambda: self.step_lost(1), "N", "next_lost")
        act(m, "&Previous lost object", lambda: self.step_lost(-1), "Shift+N", "previous_lost")
        m.addSeparator()
        act(m, "Annotations &beside each image", lambda: self.set_annotations(None), None, "annotations_beside")
        m.addSeparator()
        self.toggles = {}
        for name in ("truth", *TRAINING_ROWS):  # the rows drawn with ground truth (no digit key: 1-7 are inference)
            a = act(m, f"Show {SHOW[name]}", lambda on, n=name: self.state.set_visible(n, on), None, f"show_{name}")
            a.setCheckable(True)
            a.setChecked(bool(self.state.visible.get(name)))
            self.toggles[name] = a
        self.state.events.visible.connect(lambda st, on: st in self.toggles and self.toggles[st].setChecked(on))

    # ------------------------------------------------------------------ state -> panels and view
    def _image(self, path: str) -> None:
        self.panel.show_trace(None, None)
        self.panel.source.setText(f"{Path(path).name}: tracing…")
        self.browser.mark(path)

    def _trace(self, tr) -> None:
        gt = self.gt
        sentence = gt.explain()
        self.panel.show_trace(tr, gt.object, sentence)
        self.win.inspector.training.show_training(tr, gt.object)
        self.win.inspector.training.show_seed(tr.training.seed if tr.training is not None else gt.seed)
        if gt.object is not None:
            self.win.inspector.show_object(tr, gt.object, sentence)
        self.draw_object()

    def _object(self, index) -> None:
        tr, gt = self.state.trace, self.gt
        sentence = gt.explain()
        self.panel.show_selected(index, sentence)
        self.win.inspector.training.show_training(tr, index)
        if index is not None:
            self.win.inspector.show_object(tr, index, sentence)
            if tr is not None and tr.training is not None and any(self.state.visible.get(st) for st in TRAINING_ROWS):
                self.win.inspector.tabs.setCurrentWidget(self.win.inspector.training)  # its anchors, RoIs, losses
        elif self.state.selection is None:
            self.win.inspector.show_selection(tr, None)
        self.draw_object()

    def draw_object(self) -> None:
        """The selected object's path through the stages, on top of every stage; its sentence in
        the legend (nothing written over the photo)."""
        tr, i, view, legend = self.state.trace, self.gt.object, self.win.view, self.win.legend
        if tr is None or i is None or tr.diagnosis is None:
            view.set_stage(OBJECT, None)
            legend.set_stage(OBJECT, None, False)
            return
        try:
            sl = object_path(tr, i)  # as the export draws it (core.overlays.paths)
        except LensError as err:
            self.win.say(str(err), 10000)
            return
        view.set_stage(OBJECT, sl)
        view.set_visible(OBJECT, True)
        legend.set_stage(OBJECT, sl, True)

    def _options(self, key: str) -> None:
        q = self.win.persist.q
        if key == "annotations":
            q.setValue("annotations", self.gt.annotations or "")
            if self.state.image_path:
                self.panel.source.setText("reading the annotations…")
        else:
            q.setValue("seed", self.gt.seed)
            self.win.inspector.training.show_seed(self.gt.seed)

    def _seed(self, seed: int) -> None:
        try:
            self.gt.set_seed(seed)
        except LensError as err:
            self.win.say(str(err), 10000)

    # ------------------------------------------------------------------ clicks, keys, drops
    def clicked(self, sel) -> bool:
        """A click on the image: a truth box selects its object (True: handled); anything else
        deselects it (and the window selects the box, if any)."""
        if sel is not None and sel.kind == "truth":
            self.gt.select(sel.index)
            return True
        self.gt.select(None)
        return False

    def step_lost(self, step: int) -> None:
        """Select the next (or previous) object that was not detected."""
        tr = self.state.trace
        if tr is None or tr.diagnosis is None:
            return
        lost = [o.index for o in tr.diagnosis.objects if o.verdict not in (None, "detected")]
        if not lost:
            self.win.say("no lost objects in this image", 5000)
            return
        cur = self.gt.object
        after = [i for i in lost if (i > cur if step > 0 else i < cur)] if cur is not None else []
        self.gt.select((after[0] if step > 0 else after[-1]) if after else (lost[0] if step > 0 else lost[-1]))

    def dropped(self, paths: list[str]) -> bool:
        """An annotation file or an analysis folder dropped on the window (True: taken)."""
        p = Path(paths[0])
        if p.is_dir() and browse.is_browsable(p):
            self.open_analysis(str(p))
            return True
        if p.is_file() and p.suffix.lower() in (".json", ".xml", ".txt", ".yaml", ".yml"):
            self.set_annotations(str(p))
            return True
        return False

    # ------------------------------------------------------------------ annotations
    def set_annotations(self, path: str | None) -> None:
        self.gt.set_annotations(path)
        self.win.say(f"truth from {Path(path).name}" if path else "truth from the annotations beside each image", 5000)

    def annotations_dialog(self) -> None:
        p = self.win.persist
        start = p.last_dir("annotations") or p.last_dir("open")
        path, _ = QFileDialog.getOpenFileName(self.win, "Open annotations (COCO .json, VOC .xml, YOLO .txt)", start,
                                              ANNOTATION_FILES)
        if path:
            p.set_last_dir("annotations", str(Path(path).parent))
            self.set_annotations(path)

    # ------------------------------------------------------------------ analysis folders
    def analysis_dialog(self) -> None:
        p = self.win.persist
        folder = QFileDialog.getExistingDirectory(self.win, "Open an analysis or compare folder (rcnn-lens analyze|compare -o OUT)",
                                                  p.last_dir("analysis") or p.last_dir("open"))
        if folder:
            p.set_last_dir("analysis", str(Path(folder).parent))
            self.open_analysis(folder)

    def start(self) -> bool:
        """Open the analysis named on the command line (True), with its most missed image."""
        if self.pending is None:
            return False
        folder, self.pending = self.pending, None
        self.open_analysis(folder, model=False)
        return True

    def open_analysis(self, folder: str, model: bool = True) -> None:
        """Open an analysis folder: its images in the Analysis dock, the model, thresholds and
        annotations it used, and the image with the most missed objects. The folder is read off
        the GUI thread (a dataset's results can be tens of MB). A compare folder: gui.compare_side."""
        if browse.is_compare(folder):
            self.compare.open(folder, model)
            return
        self.reading += 1
        self.win.say(f"reading the analysis {Path(folder).name}…")
        read_folder(folder, browse.open_folder, self._bridge.read, model, "analysis-reader")

    def _analysis_read(self, a, error: str, model: bool) -> None:
        self.reading -= 1
        if a is None:
            self.win.show_error(error)
            return
        self.analysis, self.compare.comparison = a, None
        self.compare.note()
        self.browser.show_analysis(a)
        dock = self.win.docks["analysis"]
        dock.setVisible(True)
        dock.raise_()
        s = self.state
        notes = []
        want = (a.settings.get("model"), a.settings.get("weights"))
        have = (s.loaded.get("name"), s.loaded.get("weights")) if s.loaded else (s.choice.name, s.choice.weights)
        if model and want[0] and want != have:
            s.choose_model(*want)
            notes.append(f"model {want[0]} ({want[1]}), as the analysis used")
        params = a.settings.get("params")
        if isinstance(params, dict) and params:
            s.params = {k: v for k, v in params.items() if isinstance(k, str)}
            s.events.params.emit(None)
        if a.annotations_missing:
            notes.append(f"its annotations {a.settings.get('annotations')} are not there: truth from beside each image")
        self.gt.set_annotations(a.annotations, now=False)
        self.win.say(f"analysis {a.folder.name}: {a.headline()}" + ("; " + "; ".join(notes) if notes else ""), 15000)
        first = next((r["path"] for r in a.rows if r["path"]), None)
        if first is None:
            self.win.show_error(f"{a.folder}: none of its {len(a.rows)} images is where the analysis found it")
            return
        self.open_from_analysis(first)

    def open_from_analysis(self, path: str) -> None:
        if self.analysis is not None:
            self.gt.set_annotations(self.analysis.annotations, now=False)
        if path != self.state.image_path:
            self.win.open_image(path)

    # ------------------------------------------------------------------ layout
    def small_screen(self) -> None:
        """One tabbed dock column (with the inspector, as the window does on a small screen)."""
        d = self.win.docks
        self.win.tabifyDockWidget(d["inspector"], d["truth"])
        d["stages"].raise_()
