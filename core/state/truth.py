"""The app's ground-truth side, Qt-free (part of core.state.app_state's LensState as ``state.gt``): which
annotations the truth comes from (None: found beside each image), the training view's seed, the
selected truth object, and the rules: a new image drops the selection; a trace keeps it while the
object exists (a threshold change keeps it, its verdict follows); selecting an object filters the
anchor and RoI targets to it and drops the selected detection; selecting a detection drops the
object. Also the rows the Truth panel and the inspector show (``object_rows``, ``object_detail``).

Events (``gt.events.<name>.connect(fn)``): ``options`` (key: "annotations" or "seed"; the engine
is asked for the current image's truth again) and ``object`` (the selected index or None).
"""

from __future__ import annotations

import numpy as np

from core.errors import LensError
from core.overlays.selection import anchor_name
from core.state.events import Events

EVENTS = ("options", "object")
GT_STAGES = ("anchor_targets", "roi_targets")  # their "gt" setting follows the selected object
MAX_SEED = 2**63 - 1


class GroundTruth:
    def __init__(self, state, annotations: str | None = None, seed: int = 0):
        self.state = state
        self.events = Events(EVENTS)
        self.annotations = str(annotations) if annotations else None
        self.seed = check_seed(seed)
        self.object: int | None = None
        state.events.image.connect(lambda _path: self.select(None))
        state.events.trace.connect(self._trace)
        state.events.selection.connect(lambda sel: sel is not None and self.select(None))

    # ---------------------------------------------------------------- options (sent to the engine)
    def options(self) -> dict:
        return {"annotations": self.annotations, "seed": self.seed, "enabled": True}

    def set_annotations(self, path: str | None, now: bool = True) -> None:
        """Read the truth from ``path`` (a COCO json, VOC xml/folder, YOLO txt/folder; None: beside
        each image). ``now``: ask for the current image's truth again."""
        path = str(path) if path else None
        if path != self.annotations:
            self.annotations = path
            if now:
                self.events.options.emit("annotations")

    def set_seed(self, seed: int) -> None:
        seed = check_seed(seed)
        if seed != self.seed:
            self.seed = seed
            self.events.options.emit("seed")

    def resample(self) -> None:
        """A new minibatch: the next seed."""
        self.set_seed(self.seed + 1 if self.seed < MAX_SEED else 0)

    # ---------------------------------------------------------------- the selected object
    @property
    def trace(self):
        return self.state.trace

    def count(self) -> int:
        tr = self.trace
        return len(tr.truth) if tr is not None and tr.truth is not None else 0

    def select(self, index: int | None) -> None:
        """Select truth object ``index`` (None: none). Refused quietly (None) past the truth."""
        if index is not None and not 0 <= int(index) < self.count():
            index = None
        index = None if index is None else int(index)
        self._filter(index)
        if index is not None and self.state.selection is not None:
            self.state.select(None)
        if index != self.object:
            self.object = index
            self.events.object.emit(index)

    def _filter(self, index: int | None) -> None:
        for stage in GT_STAGES:
            if stage in self.state.settings and self.state.settings[stage].get("gt") != index:
                self.state.set_setting(stage, "gt", index)

    def _trace(self, tr) -> None:
        if self.object is not None and (tr.truth is None or self.object >= len(tr.truth)):
            self.select(None)
        elif self.object is not None:
            self._filter(self.object)  # the trace's bounds may have reset the filter

    def at(self, x: float, y: float) -> int:
        """The truth object under original pixel (x, y), or -1."""
        tr = self.trace
        return tr.truth.at(x, y) if tr is not None and tr.truth is not None and len(tr.truth) else -1

    def explain(self, index: int | None = None) -> str:
        """One sentence about the object (its verdict and the evidence), or ""."""
        i = self.object if index is None else index
        tr = self.trace
        if i is None or tr is None or tr.truth is None or not 0 <= i < len(tr.truth):
            return ""
        head = f"object {i} ({tr.truth.names[i]})"
        if tr.diagnosis is None:
            return f"{head}: no verdict (no diagnosis for this trace)"
        o = tr.diagnosis.objects[i]
        return f"{head}: {o.verdict or 'no verdict'}: {tr.diagnosis.explain(i)}"


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise LensError("seed", f"{seed!r}: must be an integer from 0 to {MAX_SEED}")
    return int(seed)


def object_rows(tr) -> list[dict]:
    """The Truth panel's rows: per object its index, class, verdict (None: no verdict), best
    anchor IoU, best proposal IoU, its detection (index and score) or None."""
    if tr is None or tr.truth is None:
        return []
    t, dg = tr.truth, tr.diagnosis
    rows = []
    for i in range(len(t)):
        o = dg.objects[i] if dg is not None and i < len(dg.objects) else None
        rows.append({"index": i, "name": t.names[i], "known": bool(t.known[i]),
                     "verdict": o.verdict if o is not None else None,
                     "best_anchor_iou": o.best_anchor_iou if o is not None else None,
                     "best_proposal_iou": o.best_proposal_iou if o is not None else None,
                     "detection": o.detection if o is not None else None,
                     "detection_score": o.detection_score if o is not None else None})
    return rows


def object_detail(tr, index: int) -> dict:
    """What the training step does with one truth object: its share of the four losses, its
    positive anchors (IoU, in the minibatch or not, their loss shares) and its sampled positive
    RoIs (IoU, classifier and box-regression shares) - Training.for_gt unrolled per row."""
    T = tr.training
    if T is None:
        return {"losses": {}, "anchors": [], "rois": [], "trained": False}
    part = T.for_gt(index)
    if part["gt"] < 0:
        return {"losses": part["losses"], "anchors": [], "rois": [], "trained": False}
    a, r = T.rpn, T.roi
    anchors = []
    for k, i in enumerate(part["anchors"]):
        row = int(np.searchsorted(a.positive, i))
        anchors.append({"anchor": int(i), "where": anchor_name(T, i), "iou": float(part["anchor_iou"][k]),
                        "sampled": bool(part["anchors_sampled"][k]), "lq": bool(a.promoted[i]),
                        "loss_objectness": float(a.loss_objectness[i]), "loss_rpn_box_reg": float(a.loss_box_reg[row])})
    g = part["gt"]
    s_rows = np.nonzero((r.sampled_label > 0) & (r.matched[r.sampled] == g))[0]
    rois = [{"roi": int(r.sampled[s]), "gt_box": bool(r.sampled[s] >= r.num_proposals),
             "iou": float(r.iou[r.sampled[s]]), "loss_classifier": float(r.loss_classifier[s]),
             "loss_box_reg": float(r.loss_box_reg[s])} for s in s_rows]
    return {"losses": part["losses"], "anchors": anchors, "rois": rois, "trained": True}


def filtered(tr, verdict: str | None = None, cls: str | None = None) -> list[int]:
    """The objects a filter keeps (Diagnosis.where): ``verdict`` None (all), "lost" (any but
    detected), "none" (no verdict) or a verdict; ``cls`` None (all) or a class name."""
    if tr is None or tr.truth is None:
        return []
    classes = None if cls is None else [cls]
    if tr.diagnosis is None:
        names = tr.truth.names
        return [i for i in range(len(names)) if classes is None or names[i] in classes] if verdict is None else []
    verdicts = None if verdict is None else [None] if verdict == "none" else [verdict]
    return tr.diagnosis.where(verdicts, classes)
