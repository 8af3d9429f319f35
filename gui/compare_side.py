"""A compare folder (``rcnn-lens compare -o OUT``) in the app, wired: its objects in the Analysis dock
(the changed first, with their verdict in each run); choosing one opens its image with run A's model,
thresholds and annotations and selects the object; **B** flips to the next run's model and
thresholds (the engine keeps both models loaded, each with its newest trace, so a flip back is a
retrace, not a new trace). The legend says which run is shown; the object's path is drawn in each
(gui.truth_side). The folder is read by core.analysis.browse (Qt-free), off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.analysis import browse

from .layout import add_action
from .reading import read_folder

LEGEND_ROW = "compare"


class _Bridge(QObject):
    read = Signal(object, str, bool)  # Comparison or None, the error, switch to run A's model


class CompareSide(QObject):
    def __init__(self, win, truth_side):
        super().__init__(win)
        self.win, self.ts, self.state = win, truth_side, win.state
        self.comparison = None
        self.row: int | None = None  # the chosen object's row
        self.run = 0  # the run shown
        self.pending: tuple | None = None  # (image path, truth index) to select when its trace comes
        self._bridge = _Bridge()
        self._bridge.read.connect(self._read)
        truth_side.browser.object_chosen.connect(self.choose)
        self.state.events.trace.connect(self._trace)
        menu = next(a.menu() for a in win.menuBar().actions() if a.menu() is not None and a.text() == "&Truth")
        menu.addSeparator()
        add_action(win, menu, "Flip to the next compared run", self.flip, "B", "flip_run")

    # ------------------------------------------------------------------ opening
    def open(self, folder: str, model: bool = True) -> None:
        self.ts.reading += 1
        self.win.say(f"reading the comparison {Path(folder).name}…")
        read_folder(folder, browse.open_compare, self._bridge.read, model, "compare-reader")

    def _read(self, c, error: str, model: bool) -> None:
        self.ts.reading -= 1
        if c is None:
            self.win.show_error(error)
            return
        self.comparison, self.ts.analysis = c, None
        self.ts.browser.show_compare(c)
        dock = self.win.docks["analysis"]
        dock.setVisible(True)
        dock.raise_()
        self.win.say(f"comparison {c.folder.name}: {c.headline()}", 15000)
        first = next((i for i, r in enumerate(c.rows) if r["path"]), None)
        if first is None:
            self.win.show_error(f"{c.folder}: none of its images is where the analyses found them")
            return
        self.choose(first)

    # ------------------------------------------------------------------ choosing and flipping
    def choose(self, i: int) -> None:
        """Show row ``i``'s object with run A."""
        c = self.comparison
        if c is None or not 0 <= i < len(c.rows):
            return
        r = c.rows[i]
        if r["path"] is None:
            self.win.show_error(f"{r['image']}: not found (moved since the analysis?)")
            return
        self.row, self.run = i, 0
        self.pending = (r["path"], r["truth"])
        self._apply(0)
        if r["path"] != self.state.image_path:
            self.win.open_image(r["path"])
        elif self.state.trace is not None:
            self.ts.gt.select(r["truth"])
        self.note()

    def flip(self) -> None:
        """B: the next run's model, thresholds and annotations on the same image and object."""
        c = self.comparison
        if c is None or self.row is None:
            self.win.say("B flips between the runs of a comparison: open a compare folder (rcnn-lens compare -o) "
                         "and choose an object", 8000)
            return
        self.run = (self.run + 1) % len(c.runs)
        r = c.rows[self.row]
        self.pending = (r["path"], r["truth"])
        self._apply(self.run)
        self.note()
        self.win.say(f"showing {c.runs[self.run]['note']}", 8000)

    def _apply(self, k: int) -> None:
        run, s = self.comparison.runs[k], self.state
        self.ts.gt.set_annotations(run["annotations"], now=False)
        params = {n: v for n, v in (run.get("params") or {}).items() if isinstance(n, str)}
        want = (run.get("model"), run.get("weights"))
        have = (s.loaded.get("name"), s.loaded.get("weights")) if s.loaded else (s.choice.name, s.choice.weights)
        if want[0] and want != have:
            s.choose_model(want[0], want[1], params=params)  # the engine keeps the other model loaded
        elif params != s.params:
            s.params = params
            s.events.params.emit(None)  # the same model: a retrace with this run's thresholds

    # ------------------------------------------------------------------ state -> view
    def _trace(self, tr) -> None:
        if self.pending is not None and tr.meta.name == self.pending[0] and tr.truth is not None:
            index = self.pending[1]
            self.pending = None
            self.ts.gt.select(index)
        self.note()

    def note(self) -> None:
        """The legend's line: which run is shown, the object's verdict in it, what B shows next."""
        c, legend = self.comparison, self.win.legend
        if c is None or self.row is None:
            legend.set_stage(LEGEND_ROW, None, False)
            return
        r = c.rows[self.row]
        nxt = c.runs[(self.run + 1) % len(c.runs)]["label"]
        verdicts = ", ".join(f"{run['label']} {v or 'none'}" for run, v in zip(c.runs, r["verdicts"]))
        text = (f"Showing {c.runs[self.run]['note']}. Object {r['truth']} ({r['name']}) of {Path(r['image']).name}: "
                f"{verdicts}. Press B for run {nxt}.")
        if legend.order[:1] != [LEGEND_ROW]:  # the first line of the legend
            legend.set_order([LEGEND_ROW, *(st for st in legend.order if st != LEGEND_ROW)])
        legend.set_stage(LEGEND_ROW, None, True, note=text)
