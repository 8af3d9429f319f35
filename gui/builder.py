"""From the state to the view: each stage's layers built into items one stage per event-loop turn
(visible stages first), so a new trace never blocks the window for the sum of all stages. A
visible stage whose arrays the engine kept (core.parts) asks for them and is built again when they
come; a hidden one waits until it is shown. Also the legend rows and the selection's path."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from core.errors import LensError
from core.overlays import layers_for
from core.overlays import selection as selection_overlay
from core.parts import Missing

from .view.canvas import SELECTION


class StageBuilder(QObject):
    built = Signal(str)  # a stage's items are on the view
    settled_changed = Signal(bool)

    def __init__(self, state, view, legend, fetch, error, parent=None):
        super().__init__(parent)
        self.state, self.view, self.legend = state, view, legend
        self.fetch, self.error = fetch, error
        self.queue: list[str] = []
        self.waiting: dict[str, tuple] = {}  # stage -> (source, path) it waits for
        self.stopped = False
        self.last_build_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    @property
    def settled(self) -> bool:
        return not self.queue and not any(self.state.visible.get(s) for s in self.waiting)

    def rebuild_all(self) -> None:
        st = self.state
        self.waiting = {}
        have = st.available_stages()
        self.view.clear_stages()
        self.legend.clear()
        self.legend.set_order(have)
        self.queue = [s for s in have if st.visible.get(s)] + [s for s in have if not st.visible.get(s)]
        self.show_selection()
        self._timer.start()

    def rebuild(self, stage: str) -> None:
        if stage not in self.queue:
            self.queue.insert(0, stage)
        self._timer.start()

    def _next(self) -> None:
        if self.stopped or not self.queue:
            return
        self.build(self.queue.pop(0))
        if self.queue:
            self._timer.start()
        elif self.settled:
            self.settled_changed.emit(True)

    def build(self, stage: str) -> None:
        st = self.state
        if st.trace is None or stage not in st.available_stages():
            return
        t = time.perf_counter()
        self.waiting.pop(stage, None)
        visible = bool(st.visible.get(stage))
        try:
            sl = layers_for(st.trace, stage, st.settings[stage])
        except Missing as m:
            self.waiting[stage] = (m.source, m.path)
            self.view.set_stage(stage, None)
            self.legend.set_stage(stage, None, visible, note=f"{stage}: fetching {'.'.join(map(str, m.path))} "
                                                               "from the engine…")
            if visible:
                self.fetch(m.source, m.path)
            return
        except LensError as err:
            self.view.set_stage(stage, None)
            self.legend.set_stage(stage, None, visible, note=f"{stage}: {err}")
            self.error(str(err))
            return
        self.view.set_stage(stage, sl)
        self.view.set_visible(stage, visible)
        self.legend.set_stage(stage, sl, visible)
        self.last_build_ms = (time.perf_counter() - t) * 1000
        self.built.emit(stage)

    def part_arrived(self, path: tuple) -> None:
        for stage, (_, want) in list(self.waiting.items()):
            if tuple(want) == tuple(path):
                self.rebuild(stage)

    def set_visible(self, stage: str, on: bool) -> None:
        self.view.set_visible(stage, on)
        self.legend.set_visible(stage, on)
        if on and stage in self.waiting:
            self.fetch(*self.waiting[stage])

    def show_selection(self) -> None:
        st = self.state
        sel = st.selection
        if st.trace is None or sel is None:
            self.view.set_stage(SELECTION, None)
            return
        self.view.set_stage(SELECTION, selection_overlay.layers(st.trace, sel))
        self.view.set_visible(SELECTION, True)
