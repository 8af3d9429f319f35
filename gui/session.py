"""The app's side of the engine: it follows the state (a model chosen -> load it and trace the
image again; an image shown -> trace it; a threshold changed -> retrace) and feeds the engine's
replies back into the state. A model that does not load falls back by the state's policy; if the
engine process dies, the user is told and offered a restart that reloads the model and retraces."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.models.choice import for_app


class Session(QObject):
    busy_changed = Signal(bool)
    download_offered = Signal(str)  # a preset whose COCO weights a load found missing: the user may fetch them

    def __init__(self, state, say, error, engine_factory=None, parent=None):
        super().__init__(parent)
        self.state, self.say, self.error = state, say, error
        self.factory = engine_factory
        self.engine = None
        self._offer: dict = {}  # request kind -> (button text, slot) for the next error of that kind
        ev = state.events
        ev.model.connect(self.load)
        ev.image.connect(self._trace_image)
        ev.params.connect(lambda key: self.engine and state.trace is not None
                          and self.engine.retrace(state.effective_params()))
        state.gt.events.options.connect(self.retruth)

    def start(self) -> None:
        from .worker import EngineClient

        self.engine = e = (self.factory or EngineClient)(self)
        s = self.state
        e.loaded.connect(s.model_loaded)
        e.traced.connect(s.accept_trace)
        e.part.connect(s.add_part)
        e.failed.connect(self._failed)
        e.status.connect(lambda t: self.say(t, 5000))
        e.busy_changed.connect(self.busy_changed.emit)
        e.died.connect(self._died)
        e.replied.connect(self._replied)  # before ``failed``: an error's offer is known when it is shown
        self.load(s.choice)

    def _died(self, why: str, lost: bool) -> None:
        more = ("; the trace in progress is lost" if lost else "") + ": Restart engine loads the model and traces " \
                                                                   "the image again"
        self.error(why + more, "Restart engine", self.restart)

    @property
    def busy(self) -> bool:
        return self.engine is not None and self.engine.busy

    def restart(self) -> None:
        """A fresh engine process: the model loaded again, the image traced again."""
        self.engine.restart()
        self.load(self.state.choice)

    def load(self, choice) -> None:
        if self.engine is None:
            return
        self.say(f"loading {choice.name}…")
        self.engine.load(choice.name, choice.weights, choice.device, trust=choice.trust)
        if self.state.image_path:
            self.engine.trace(self.state.image_path, self.state.params, self.state.gt.options())

    def _trace_image(self, path: str) -> None:
        if self.engine is not None:
            self.engine.trace(path, self.state.params, self.state.gt.options())
            self.say(f"tracing {Path(path).name}…")

    def retruth(self, _key=None) -> None:
        """Other annotations or another seed: the current trace's truth, training view and verdicts
        again (the backbone does not rerun; a trace still on its way gets them after it)."""
        s = self.state
        if self.engine is not None and s.image_path:
            self.engine.truth(s.image_path, s.gt.options())

    def fetch(self, source: int, path: tuple) -> None:
        if self.engine is not None:
            self.engine.fetch(source, path)

    def _failed(self, kind: str, message: str) -> None:
        if kind == "load":
            fallback = self.state.model_failed()
            if fallback is not None:
                message += " - falling back to the demo model"
                self.load(fallback)
        self.error(for_app(message), *self._offer.pop(kind, (None, None)))

    def _replied(self, kind: str, seq: int, body) -> None:
        if kind == "error" and isinstance(body, dict) and body.get("download"):
            preset = str(body["download"])
            self._offer[str(body.get("kind"))] = ("Download…", lambda: self.download_offered.emit(preset))

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
