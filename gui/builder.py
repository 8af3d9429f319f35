"""From the state to the view. Each stage's layer data is computed off the GUI thread (a worker
thread: numpy reductions and colour tables release the GIL), one stage at a time, visible stages
first; the GUI thread only turns finished layers into items. A result that a newer trace or a
newer setting made stale is dropped. A visible stage whose arrays the engine kept (core.tracing.parts)
asks for them and is built again when they come; a hidden one waits until it is shown. Also the
legend rows and the selection's path."""

from __future__ import annotations

import copy
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, QTimer, Signal

from core.errors import LensError
from core.overlays import layers_for
from core.overlays import selection as selection_overlay
from core.tracing.parts import Missing, holds

from .view.canvas import SELECTION


class _Bridge(QObject):
    done = Signal(object, str, object, object)  # token, stage, StageLayers, error


def _compute(trace, stage: str, settings: dict):
    try:
        return layers_for(trace, stage, settings), None
    except (Missing, LensError) as err:
        return None, err
    except Exception as err:  # noqa: BLE001 - shown as a message, the app goes on
        return None, LensError(stage, f"cannot draw ({type(err).__name__}: {err})")


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
        self.inflight: str | None = None
        self._inflight_of: tuple | None = None  # (trace, settings) the stage in flight is computed for
        self.last_build_ms = 0.0
        self._gen = 0
        self._version: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="layers")
        # the GUI thread must not queue behind this worker for the GIL: hand it over often (the
        # default 5 ms per hand-over adds up over the Qt calls of one event)
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self._bridge = _Bridge()
        self._bridge.done.connect(self._finished)
        self._results: list = []
        self._apply_timer = QTimer(self)  # one stage's items per event-loop turn: the loop breathes
        self._apply_timer.setSingleShot(True)
        self._apply_timer.setInterval(0)
        self._apply_timer.timeout.connect(self._apply_next)

    @property
    def settled(self) -> bool:
        return not self.queue and self.inflight is None and not self._results and not any(self.state.visible.get(s) for s in self.waiting)

    def rebuild_all(self) -> None:
        st = self.state
        self._gen += 1
        self.waiting = {}
        have = st.available_stages()
        self.view.clear_stages()
        self.legend.clear()
        self.legend.set_order(have)
        self.queue = [s for s in have if st.visible.get(s)] + [s for s in have if not st.visible.get(s)]
        self.show_selection()
        self._kick()

    def rebuild(self, stage: str) -> None:
        st = self.state
        of = self._inflight_of
        if stage == self.inflight and of is not None and of[0] is st.trace and of[1] == st.settings.get(stage):
            return  # already computing this very trace and settings (a trace's fitted settings)
        self._version[stage] = self._version.get(stage, 0) + 1
        if stage not in self.queue:
            self.queue.insert(0, stage)
        self._kick()

    def _token(self, stage: str):
        return self._gen, self._version.get(stage, 0)

    def _kick(self) -> None:
        st = self.state
        while self.inflight is None and self.queue and not self.stopped:
            stage = self.queue.pop(0)
            if st.trace is None or stage not in st.available_stages():
                continue
            self.inflight = stage
            token = self._token(stage)
            settings = copy.deepcopy(st.settings[stage])
            self._inflight_of = (st.trace, copy.deepcopy(settings))
            fut = self._pool.submit(_compute, st.trace, stage, settings)
            fut.add_done_callback(lambda f, t=token, s=stage: self._bridge.done.emit(t, s, *f.result()))

    def _finished(self, token, stage: str, sl, err) -> None:
        self.inflight = None
        self._results.append((token, stage, sl, err))
        self._apply_timer.start()
        self._kick()  # the next stage computes while this one's items are made

    def _apply_next(self) -> None:
        if not self._results:
            return
        token, stage, sl, err = self._results.pop(0)
        if not self.stopped and token == self._token(stage):
            self._apply(stage, sl, err)
        self._kick()
        if self._results:
            self._apply_timer.start()
        elif self.settled:
            self.settled_changed.emit(True)

    def _apply(self, stage: str, sl, err) -> None:
        t = time.perf_counter()
        self.waiting.pop(stage, None)
        visible = bool(self.state.visible.get(stage))
        if isinstance(err, Missing):
            if holds(self.state.trace, err.path):  # it came while this stage computed (another view fetched it)
                self.rebuild(stage)
                return
            self.waiting[stage] = (err.source, err.path)
            self.view.set_stage(stage, None)
            self.legend.set_stage(stage, None, visible, note=f"{stage}: fetching {'.'.join(map(str, err.path))} "
                                                               "from the engine…")
            if visible:
                self.fetch(err.source, err.path)
            return
        if err is not None:
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
        """A fetched part came: every stage whose wanted part the trace now holds builds again (a
        whole array also brings the row a stage waited for, fetched by another view)."""
        for stage, (_, want) in list(self.waiting.items()):
            if holds(self.state.trace, want):
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

    def stop(self) -> None:
        self.stopped = True
        self._pool.shutdown(wait=False, cancel_futures=True)
