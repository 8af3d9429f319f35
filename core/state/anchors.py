"""The anchor what-if's state, Qt-free: the configuration the Anchor what-if panel edits (starting
at the model's generator), checked before it goes to the engine, and what the panel, the caption
and the Truth dock say about it. The engine computes it on the current trace
(core.engine.anchor_handlers); the trace comes back with ``anchor_whatif``.

Events (``anchors.events.<name>.connect(fn)``): ``request`` (an AnchorConfig, or None for the
model's own: send it to the engine) and ``changed`` (the fields to show again).
"""

from __future__ import annotations

from core.analysis.anchor_config import AnchorConfig
from core.errors import LensError
from core.state.events import Events

EVENTS = ("request", "changed")
HINT = ("Showing the model's own anchors. Apply other sizes or ratios to see how this image's objects end up: "
        "strong, rescued or starved, with the model's anchors and with yours. Sizes to try: `rcnn-lens anchors "
        "FOLDER -o OUT` suggests some fitted to your data")
MAX_OBJECTS = 12  # objects listed one per line in the panel; the changed first


def model_config(tr) -> AnchorConfig | None:
    """The model's own configuration, as the trace's anchor levels have it."""
    if tr is None or not tr.anchors:
        return None
    return AnchorConfig(tuple(tuple(a.sizes) for a in tr.anchors), tuple(tuple(a.aspect_ratios) for a in tr.anchors))


class AnchorWhatIfState:
    def __init__(self, state):
        self.state = state
        self.events = Events(EVENTS)
        self.config: AnchorConfig | None = None  # None: the model's own generator
        state.events.loaded.connect(lambda _info: self._forget())
        state.events.trace.connect(lambda _tr: self.events.changed.emit())

    @property
    def trace(self):
        return self.state.trace

    def fields(self) -> tuple[str, str]:
        """(sizes, ratios) text to show: the what-if's, else the model's."""
        cfg = self.config or model_config(self.trace)
        return cfg.text() if cfg is not None else ("", "")

    def apply(self, sizes: str, ratios: str) -> AnchorConfig | None:
        """Check the typed configuration against the trace (LensError, one line) and ask for it;
        the model's own configuration is the same as Reset."""
        tr = self.trace
        cfg = AnchorConfig.parse(sizes, ratios, len(tr.anchors) if tr is not None else None, "anchor what-if")
        if cfg == model_config(tr):
            cfg = None
        if cfg != self.config or (tr is not None and (tr.anchor_whatif is None) != (cfg is None)):
            self.config = cfg
            self.events.request.emit(cfg)
        self.events.changed.emit()
        return cfg

    def reset(self) -> None:
        """Back to the model's generator."""
        had = self.config is not None or (self.trace is not None and self.trace.anchor_whatif is not None)
        self.config = None
        if had:
            self.events.request.emit(None)
        self.events.changed.emit()

    def _forget(self) -> None:
        """A model loaded: it starts on its own generator (the engine forgets the what-if too)."""
        self.config = None
        self.events.changed.emit()

    def summary(self) -> str:
        """For the panel and the Truth dock: this image's strong / rescued / starved before -> after."""
        tr = self.trace
        w = getattr(tr, "anchor_whatif", None) if tr is not None else None
        if w is None:
            return (HINT if self.config is None else "computing the what-if…")
        line = w.line()
        return f"this image, model's anchors -> these: {line}" if line else "no truth for this image: no counts"

    def _name(self, i: int) -> str:
        truth = getattr(self.trace, "truth", None)
        return truth.names[i] if truth is not None and i < len(truth.names) else ""

    def object_line(self, index: int | None) -> str:
        """One object's match and best anchor IoU before -> after (""  without a what-if or for an
        object left out)."""
        tr = self.trace
        w = getattr(tr, "anchor_whatif", None) if tr is not None else None
        if w is None or index is None:
            return ""
        line = w.object_line(index, self._name(index))
        return f"object {line}" if line else ""

    def object_lines(self) -> str:
        """Every object's before -> after, one per line, those whose match changed first (at most
        MAX_OBJECTS, then how many more)."""
        tr = self.trace
        w = getattr(tr, "anchor_whatif", None) if tr is not None else None
        if w is None or w.targets is None:
            return ""
        rows = [i for i in range(len(w.after)) if w.after[i] >= 0]
        rows.sort(key=lambda i: (w.before[i] == w.after[i], i))
        lines = [w.object_line(i, self._name(i)) for i in rows[:MAX_OBJECTS]]
        more = len(rows) - len(lines)
        return "\n".join(lines + ([f"+{more} more"] if more > 0 else []))

    @staticmethod
    def bad_fields(sizes: list[str], ratios: str) -> tuple[list[int], bool]:
        """The size fields (by level) and whether the ratios field that cannot be read as they are."""
        bad = []
        for k, text in enumerate(sizes):
            try:
                AnchorConfig.parse(text, "1", 1)
            except LensError:
                bad.append(k)
        try:
            AnchorConfig.parse(" / ".join(["1"] * max(len(sizes), 1)), ratios, None)
        except LensError:
            return bad, True
        return bad, False
