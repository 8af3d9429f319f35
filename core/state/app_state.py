"""The app's state, Qt-free (like napari's ViewerModel): the model chosen and the one loaded, the
image, the threshold overrides, the trace (with the parts fetched so far), the selection, and the
stages' visibility and settings, with the rules that tie them together: a new image drops the old
trace, a trace from an image no longer shown is refused, settings are fitted to each trace's
bounds, the RoI and anchor controls follow the selection, and a model that fails to load falls
back (to the model loaded before it, or else to the demo model).

The window observes it: ``state.events.<name>.connect(fn)``; the events are ``model`` (a model
was chosen), ``loaded``, ``image``, ``trace``, ``part`` (a fetched part arrived; path), ``params``
(key or None), ``selection``, ``visible`` (stage, on) and ``settings`` (stage). Ground truth and
its selected object join the same way: ``state.gt`` (core.state.truth: the annotations, the
training view's seed, the selected truth object, with events of their own).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from core.errors import LensError
from core.overlays import REGISTRY, available
from core.overlays.selection import Selection, anchor_of, normalized, proposal_of, roi_of, valid
from core.overlays.settings import check, defaults, fit
from core.state.events import Events
from core.state.truth import GroundTruth
from core.tracing.parts import fill, leaves

EVENTS = ("model", "loaded", "image", "trace", "part", "params", "selection", "visible", "settings")
DEMO = ("demo", None)


@dataclass(frozen=True)
class ModelChoice:
    name: str = "demo"
    weights: str | None = None  # None: the preset's default
    device: str = "cpu"
    trust: bool = False  # load a whole pickled model (runs code in the file): for this session only, never saved


class LensState:
    def __init__(self, model: str | None = None, weights: str | None = None, device: str = "cpu",
                 settings: dict | None = None, visible: dict | None = None, trust: bool = False):
        self.events = Events(EVENTS)
        self.choice = ModelChoice(model or "demo", weights, device, bool(trust))
        self.loaded: dict | None = None  # what the engine loaded: name, weights, class_names, params
        self.image_path: str | None = None
        self.image = None  # HxWx3 uint8 RGB
        self.params: dict = {}  # overrides of the model's own thresholds
        self.trace = None
        self.selection: Selection | None = None
        self.settings = restored_settings(settings)
        self.visible = {name: st.shown for name, st in REGISTRY.items()}
        self.visible.update({k: bool(v) for k, v in (visible or {}).items() if k in self.visible})
        self._parts: dict = {}  # (source, path) -> fetched array
        self.gt = GroundTruth(self)  # ground truth: annotations, seed, the selected object

    # ---------------------------------------------------------------- model
    def choose_model(self, name: str, weights: str | None, trust: bool = False, params: dict | None = None) -> None:
        """Another model; ``params``: its threshold overrides (a run of a comparison), else none."""
        self.choice = ModelChoice(name, weights, self.choice.device, bool(trust))
        self.params = dict(params or {})
        self.events.model.emit(self.choice)

    def model_loaded(self, info: dict) -> None:
        self.loaded = dict(info)
        self.events.loaded.emit(self.loaded)

    def model_failed(self) -> ModelChoice | None:
        """The fall-back policy when the chosen model cannot load: back to the model that was
        loaded (nothing to reload), or, when none was, to the demo model (returned: load it)."""
        if self.loaded is not None:
            self.choice = ModelChoice(self.loaded["name"], self.loaded.get("weights"), self.choice.device,
                                      bool(self.loaded.get("trusted")))
            return None
        if (self.choice.name, self.choice.weights) not in (DEMO, ("demo", "demo")):
            self.choice = ModelChoice("demo", None, self.choice.device)
            return self.choice
        return None

    @property
    def random_weights(self) -> bool:
        w = (self.trace.weights if self.trace is not None else (self.loaded or {}).get("weights")) or ""
        return str(w).startswith("random")

    # ---------------------------------------------------------------- image and trace
    def set_image(self, path: str, rgb) -> None:
        self.image_path, self.image = str(path), rgb
        if self.trace is not None and self.trace.meta.name != self.image_path:
            self.trace = None
            self._parts = {}
        self.selection = None
        self.events.image.emit(self.image_path)

    def accept_trace(self, tr) -> bool:
        """Take a (lean) trace from the engine; False for one of an image no longer shown."""
        if self.image_path is not None and tr.meta.name != self.image_path:
            return False
        sources = {w.source for _, w in leaves(tr)}
        self._parts = {k: v for k, v in self._parts.items() if k[0] in sources}
        self.trace = fill(tr, self._parts)
        changed = self._replace_settings(fit(self.settings, self.trace))
        self.selection = None
        self.events.trace.emit(self.trace)
        self._emit_settings(changed)
        return True

    def add_part(self, source: int, path: tuple, value) -> None:
        self._parts[(int(source), tuple(path))] = value
        if self.trace is not None:
            filled = fill(self.trace, self._parts)
            if filled is not self.trace:
                self.trace = filled
                self.events.part.emit(tuple(path))

    def available_stages(self) -> list[str]:
        return available(self.trace)

    # ---------------------------------------------------------------- thresholds
    def model_params(self) -> dict:
        if self.loaded and isinstance(self.loaded.get("params"), dict):
            return dict(self.loaded["params"])
        return dict(self.trace.params) if self.trace is not None else {}

    def effective_params(self) -> dict:
        return {**self.model_params(), **self.params}

    def set_param(self, key: str, value) -> None:
        """One threshold, at full precision; the same as the model's own removes the override."""
        if self.model_params().get(key) == value:
            self.params.pop(key, None)
        else:
            self.params[key] = value
        self.events.params.emit(key)

    def reset_params(self) -> None:
        self.params = {}
        self.events.params.emit(None)

    # ---------------------------------------------------------------- stages
    def set_visible(self, stage: str, on: bool) -> None:
        if stage in self.visible and self.visible[stage] != bool(on):
            self.visible[stage] = bool(on)
            self.events.visible.emit(stage, bool(on))

    def set_setting(self, stage: str, key: str, value) -> None:
        """Change one setting; refused (LensError) when invalid, fitted to the trace's bounds."""
        new = copy.deepcopy(self.settings)
        if stage not in new or key not in new[stage]:
            raise LensError(f"{stage}.{key}", "unknown setting")
        new[stage][key] = value
        check(new)
        if self.trace is not None:
            new = fit(new, self.trace)
        self._emit_settings(self._replace_settings(new))

    def _replace_settings(self, new: dict) -> list[str]:
        """Take ``new`` settings; -> the stages whose settings changed (their events still to emit)."""
        changed = [st for st in new if new[st] != self.settings.get(st)]
        self.settings = new
        return changed

    def _emit_settings(self, changed: list[str]) -> None:
        for st in changed:
            self.events.settings.emit(st)

    # ---------------------------------------------------------------- selection
    def select(self, sel: Selection | None) -> None:
        """Select a box (None: nothing). The RoI and anchor controls follow it."""
        if sel is not None and not valid(self.trace, sel):
            sel = None
        if sel is not None:
            sel = normalized(self.trace, sel)
        if sel == self.selection:
            return
        self.selection = sel
        if sel is not None:
            roi = roi_of(self.trace, sel)
            anc = anchor_of(self.trace, proposal_of(self.trace, sel))
            new = copy.deepcopy(self.settings)
            if roi is not None:
                new["rois"]["roi"] = roi
            new["anchors"]["level"], new["anchors"]["cell"] = anc["level"], [int(v) for v in anc["cell"]]
            self._emit_settings(self._replace_settings(new))
        self.events.selection.emit(sel)


def restored_settings(saved: dict | None) -> dict:
    """Defaults with the saved values that are still valid (a stale or hand-edited file falls
    back to the defaults)."""
    base = defaults()
    for st, vals in (saved or {}).items():
        if st in base and isinstance(vals, dict):
            for k, v in vals.items():
                if k in base[st]:
                    base[st][k] = v
    try:
        check(base)
    except LensError:
        base = defaults()
    return base
