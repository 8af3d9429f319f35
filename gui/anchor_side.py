"""The anchor what-if, wired: the Anchor what-if dock (gui.panels.anchors), its Qt-free state
(core.state.anchors: the configuration, checked before it leaves), the request to the engine
(core.engine.anchor_handlers), and the line in the Truth dock (this image's strong / rescued /
starved before -> after, and the selected object's). A bad configuration is one line in the
message bar; the app goes on with the anchors it had."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel

from core.errors import LensError
from core.state.anchors import AnchorWhatIfState

from .layout import add_dock
from .panels.anchors import MEANING, AnchorPanel


class AnchorSide(QObject):
    def __init__(self, win):
        """The dock (before the window restores its layout); ``wire`` after the truth side's."""
        super().__init__(win)
        self.win = win
        self.state = AnchorWhatIfState(win.state)
        self.panel = AnchorPanel()
        add_dock(win, "Anchor what-if", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        d = win.docks
        win.tabifyDockWidget(d["stages"], d["anchor what-if"])
        d["stages"].raise_()
        self.truth_line = QLabel("")  # in the Truth dock, under its source line
        self.truth_line.setObjectName("truth_anchor_whatif")
        self.truth_line.setWordWrap(True)
        self.truth_line.setToolTip(MEANING)
        self.truth_line.setVisible(False)

    def wire(self) -> None:
        win, st = self.win, self.state
        win.truth_side.panel.layout().insertWidget(1, self.truth_line)
        self.panel.applied.connect(self.apply)
        self.panel.reset.connect(st.reset)
        self.panel.reset.connect(self.panel.mark)
        st.events.request.connect(self._request)
        st.events.changed.connect(self.show)
        win.state.gt.events.object.connect(lambda _i: self.show())
        self.show()

    def apply(self, sizes: str, ratios: str) -> None:
        bad = self.state.bad_fields([w.text() for w in self.panel.sizes], self.panel.ratios.text())
        self.panel.mark(*bad)
        try:
            cfg = self.state.apply(sizes, ratios)
        except LensError as err:
            kept = "the what-if shown stays" if self.state.config is not None else "the model's anchors stay"
            self.win.show_error(f"{err} ({kept})")
            return
        if (self.win.last_error or "").startswith("anchor what-if"):  # our own earlier complaint: answered
            self.win.messages.dismiss()
            self.win.last_error = None
        if cfg is not None:  # show what changed: the anchors, and where there is truth the positive anchors
            s = self.win.state
            s.set_visible("anchors", True)
            if s.trace is not None and s.trace.training is not None and not s.visible.get("anchor_targets"):
                s.set_setting("anchor_targets", "show", "positive")
                s.set_visible("anchor_targets", True)

    def _request(self, cfg) -> None:
        engine = self.win.session.engine
        if engine is None:
            return
        body = {"sizes": None, "aspect_ratios": None} if cfg is None else \
            {"sizes": [list(v) for v in cfg.sizes], "aspect_ratios": [list(v) for v in cfg.aspect_ratios]}
        engine.anchors(body)
        self.win.say("anchor what-if: " + (cfg.paste() if cfg is not None else "back to the model's generator"), 5000)

    def show(self) -> None:
        st, tr = self.state, self.state.trace
        levels = tuple((a.name, f"{a.stride[1]}" if a.stride[0] == a.stride[1] else f"{a.stride[1]}x{a.stride[0]}")
                       for a in tr.anchors) if tr is not None else ()
        sizes, ratios = st.fields()
        w = getattr(tr, "anchor_whatif", None) if tr is not None else None
        summary = st.summary()
        self.panel.show_state(levels, sizes, ratios, summary, w.paste if w is not None else "", w is not None,
                              st.object_lines())
        obj = st.object_line(self.win.state.gt.object)
        self.truth_line.setText(f"anchor what-if: {summary}" + (f"; {obj}" if obj else ""))
        self.truth_line.setVisible(w is not None)
