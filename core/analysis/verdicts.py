"""Why was it missed: the vocabulary of per-object verdicts and per-detection error types, the
result types of ``core.analysis.diagnose`` and the one-sentence explanation of each verdict.

Torch-free (the GUI unpickles these types and builds overlays from them); ``core.analysis.diagnose``
computes them from a trace.

An object's verdict is the first stage that lost it. The stages are walked in torchvision's order;
"covering" means IoU >= 0.5 with the object (``COVER_IOU``):

RPN (no proposal after NMS covers the object):
  ``rpn_missed``      no anchor's decoded RPN box covers it
  ``rpn_cut``         covering boxes existed, and the last of them was dropped by the per-level
                      pre-NMS top-n, the size or the score filter, or the post-NMS top-n
  ``rpn_suppressed``  the last covering candidates were removed by the RPN's NMS (the suppressor,
                      a proposal that does not cover the object, is named)
box head (a proposal after NMS covers it):
  ``box_misclassified`` no covering RoI scores its class over the score threshold, its class wins
                      (softmax argmax) on none of them and another class wins on one
  ``box_low_score``   no covering RoI scores its class over the score threshold, and its class or
                      background wins on them
  ``box_mislocalized`` its class scored over the threshold on a covering RoI, but no refined box
                      of its class reaches IoU 0.5
  ``box_suppressed``  boxes of its class with IoU >= 0.5 existed, box NMS removed them all, by a
                      detection that does not match it
  ``box_cut``         such a box survived NMS but fell past ``box_detections_per_img``
  ``box_taken``       a final detection of its class covers it, but COCO's matching gave every such
                      detection to another object
``detected``          a final detection matches it (COCO's rule: greedy by descending score,
                      IoU >= 0.5, same class, one detection per object)

So a verdict other than ``detected`` starts with ``rpn_`` exactly when no proposal after NMS has
IoU >= 0.5 with the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

VERDICTS = ("detected", "rpn_missed", "rpn_suppressed", "rpn_cut", "box_misclassified", "box_low_score",
            "box_mislocalized", "box_suppressed", "box_cut", "box_taken")
LOST = VERDICTS[1:]

RULES = {
    "detected": "a final detection matches it (greedy by descending score, IoU >= 0.5, same class, "
                "one detection per object: COCO's rule)",
    "rpn_missed": "no anchor's decoded RPN box has IoU >= 0.5 with it",
    "rpn_suppressed": "RPN boxes with IoU >= 0.5 existed; the RPN's NMS removed the last of them, "
                      "suppressed by a proposal that does not cover it",
    "rpn_cut": "RPN boxes with IoU >= 0.5 existed; the last of them fell to the per-level pre-NMS top-n, "
               "the minimum size, the objectness threshold or the post-NMS top-n",
    "box_misclassified": "a proposal covers it, but no covering RoI scores its class over the box score "
                         "threshold, its class wins on none of them and another class wins on one",
    "box_low_score": "a proposal covers it, but no covering RoI scores its class over the box score "
                     "threshold; on them its class or background wins",
    "box_mislocalized": "its class scored over the threshold on a covering RoI, but no refined box of its "
                        "class has IoU >= 0.5",
    "box_suppressed": "boxes of its class with IoU >= 0.5 existed; box NMS removed them all, suppressed by "
                      "a detection that does not match it",
    "box_cut": "a box of its class with IoU >= 0.5 survived NMS but fell past the detections per image",
    "box_taken": "final detections of its class cover it, but COCO's matching gave each to another object",
}

# each verdict in a few words, for charts and lists (the code name stays the key everywhere)
TITLES = {
    "detected": "detected", "rpn_missed": "RPN never proposed it", "rpn_suppressed": "RPN NMS suppressed it",
    "rpn_cut": "RPN filters cut it (top-n, size, score)", "box_misclassified": "box head: another class won",
    "box_low_score": "box head: its score under the threshold", "box_mislocalized": "box head: its box is off",
    "box_suppressed": "box NMS suppressed it", "box_cut": "past the detections per image",
    "box_taken": "its detection went to another object",
}

# Per detection, TIDE's error types (Bolya et al. 2020), with TIDE's thresholds.
ERRORS = ("tp", "cls", "loc", "both", "dupe", "bkg")
ERROR_RULES = {
    "tp": "matched to an object (the same greedy matching as the verdicts, IoU >= 0.5)",
    "cls": "IoU >= 0.5 with an object of another class",
    "loc": "its class, 0.1 <= IoU <= 0.5 with an object of its class (matched or not)",
    "both": "none of the others: 0.1 < IoU with some object, wrong class and under 0.5",
    "dupe": "its class, IoU >= 0.5 with an object that a higher-scoring detection already matched",
    "bkg": "IoU <= 0.1 with every object (or the image has none)",
}
# one colour per verdict (RGB): green detected, warm RPN losses, cool box-head losses
VERDICT_COLOURS = {
    "detected": (44, 160, 44), "rpn_missed": (120, 20, 20), "rpn_suppressed": (214, 39, 40),
    "rpn_cut": (255, 127, 14), "box_misclassified": (148, 103, 189), "box_low_score": (31, 119, 180),
    "box_mislocalized": (23, 190, 207), "box_suppressed": (227, 119, 194), "box_cut": (188, 189, 34),
    "box_taken": (127, 127, 127), None: (200, 200, 200),
}
COVER_IOU = 0.5
TIDE_FG = 0.5
TIDE_BG = 0.1

# analysis.jsonl's ``covering_rois`` keys -> ObjectPath's per-RoI fields
COVERING_KEYS = {"roi": "rois", "iou": "roi_ious", "class_prob": "roi_class_probs", "winner": "roi_winners",
                 "winner_prob": "roi_winner_probs"}

# the filter that removed the last covering box, for ``rpn_cut`` / ``box_cut``
CUTS = ("pre_nms_top_n", "size", "score", "post_nms_top_n", "detections_per_img")


@dataclass(frozen=True)
class ObjectPath:
    """One truth object's path through the stages. Indices: ``anchor`` into the concatenated
    anchors, ``candidate``/``suppressor`` into ``trace.proposals`` (pre-NMS set), ``roi`` into
    ``trace.box_head.rois`` (= proposals after NMS), ``det_candidate``/``det_suppressor`` into
    ``trace.detections`` (pre-NMS set), ``detection`` into the final detections."""

    index: int
    box: tuple  # xyxy, original pixels
    label: int  # the model's class index; -1: not a class of this model
    name: str
    difficult: bool = False
    verdict: str | None = None  # None only for classes the model lacks, crowd regions and VOC 'difficult' objects
    cut: str | None = None  # for rpn_cut / box_cut: one of CUTS
    # anchors (model frame, truth resized like the image)
    best_anchor_iou: float | None = None
    anchor: int = -1
    anchor_level: str | None = None
    anchor_positives: int | None = None  # anchors the RPN's Matcher labels positive for it
    positive_anchors: tuple = ()  # their indices (at most POSITIVES_KEPT)
    # RPN: decoded boxes of all anchors, then the pre-NMS candidates
    best_decoded_iou: float | None = None
    decoded_anchor: int = -1  # the anchor whose decoded box reached furthest (covering) or best IoU
    decoded_level: str | None = None
    decoded_iou: float | None = None
    decoded_rank: int | None = None  # its objectness rank on its level (1 = highest)
    decoded_score: float | None = None
    candidate: int = -1
    candidate_iou: float | None = None
    candidate_score: float | None = None  # objectness probability
    candidate_rank: int | None = None  # objectness rank on its level (1 = highest)
    candidate_status: str | None = None  # kept, suppressed, over_top_n, low_score, small
    candidate_nms_rank: int | None = None  # position among the proposals that survived NMS (1-based)
    suppressor: int = -1
    suppress_iou: float | None = None
    suppressor_score: float | None = None
    suppressor_object_iou: float | None = None
    covering_candidates: int = 0
    # proposals after NMS = RoIs
    best_proposal_iou: float = 0.0
    best_proposal: int = -1
    rois: tuple = ()  # covering RoIs, by IoU descending
    # per covering RoI, aligned with ``rois``: its IoU with the object, the softmax probability of the
    # object's class (None: not a class of this model) and the class that wins there (0 = background)
    # with its probability -- from ``trace.box_head.probs``, softmax of the box predictor's class
    # logits, as torchvision's postprocess_detections scores them
    roi_ious: tuple = ()
    roi_class_probs: tuple | None = ()
    roi_winners: tuple = ()
    roi_winner_probs: tuple = ()
    roi_proposal: int = -1  # that RoI's proposal (its index among the candidates): one numbering with the picture
    roi: int = -1  # the covering RoI that scores its class highest (detected, box_mislocalized: the RoI
    # its box came from; box_misclassified: the covering RoI of highest IoU where another class wins)
    roi_iou: float | None = None
    class_prob: float | None = None
    winner: int | None = None  # the class that wins on that RoI (0 = background)
    winner_prob: float | None = None
    # detections before NMS
    det_candidate: int = -1
    det_candidate_iou: float | None = None
    det_candidate_score: float | None = None
    det_candidate_status: str | None = None
    det_candidate_rank: int | None = None  # position after NMS (1-based), for box_cut
    det_suppressor: int = -1
    det_suppress_iou: float | None = None
    det_suppressor_score: float | None = None
    det_suppressor_object_iou: float | None = None
    det_suppressor_final: int | None = None  # the suppressor's index among the final detections
    best_refined_iou: float | None = None  # best refined box of its class from covering RoIs
    # final
    detection: int | None = None
    detection_iou: float | None = None
    detection_score: float | None = None
    taken_by: int | None = None  # box_taken: the object that got its detection
    taken_detection: int | None = None
    crowd: bool = False  # COCO iscrowd: a region, not one object; no verdict, matches nothing

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # flat values: no deep copy (asdict)
        d["box"] = [round(float(v), 3) for v in self.box]
        d["rois"] = list(self.rois)
        d["positive_anchors"] = list(self.positive_anchors)
        for k in ("roi_ious", "roi_class_probs", "roi_winners", "roi_winner_probs"):
            del d[k]
        d["label"] = self.label if self.label >= 0 else None  # JSON null: not a class of this model
        d = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()}
        d["covering_rois"] = self.covering_json()
        return d

    def covering_json(self, digits: int = 4) -> dict:
        """The covering RoIs as parallel lists, ``roi`` by IoU descending (floats rounded);
        ``class_prob`` is None for an object whose class the model lacks."""
        out = {}
        for key, name in COVERING_KEYS.items():
            v = getattr(self, name)
            out[key] = None if v is None else [round(x, digits) if isinstance(x, float) else x for x in v]
        return out


@dataclass(frozen=True)
class DetectionError:
    """One final detection in TIDE's terms; ``truth`` is the object it matched (tp) or the one its
    error refers to (cls, loc, dupe: that object; both: the object of highest IoU; bkg: None)."""

    index: int
    box: tuple
    label: int
    name: str
    score: float
    error: str
    truth: int | None
    iou: float  # with ``truth`` (0 if None)

    def to_json(self) -> dict:
        return {"box": [round(float(v), 3) for v in self.box], "label": self.label, "name": self.name,
                "score": round(self.score, 5), "error": self.error, "truth": self.truth,
                "iou": round(self.iou, 5)}


@dataclass(frozen=True)
class Diagnosis:
    objects: tuple  # ObjectPath per truth object
    detections: tuple  # DetectionError per final detection
    params: dict = field(default_factory=dict)
    class_names: tuple = ()
    anchors_known: bool = True  # False: no anchor evidence (decoded boxes, matcher) was given

    def counts(self) -> dict:
        out = {v: 0 for v in VERDICTS}
        for o in self.objects:
            if o.verdict is not None:
                out[o.verdict] += 1
        return out

    def error_counts(self) -> dict:
        out = {e: 0 for e in ERRORS}
        for d in self.detections:
            out[d.error] += 1
        return out

    def explain(self, i: int) -> str:
        return explain(self.objects[i], self.class_names, self.params)

    def where(self, verdicts=None, classes=None) -> list[int]:
        """Indices of the objects with one of ``verdicts`` (names; ``lost`` = any but detected; None
        for objects without a verdict) and one of ``classes`` (names); None: no filter."""
        want = None if verdicts is None else set(verdicts)
        if want is not None and "lost" in want:
            want |= set(LOST)
        names = None if classes is None else set(classes)
        return [o.index for o in self.objects
                if (want is None or o.verdict in want) and (names is None or o.name in names)]


# ---------------------------------------------------------------- sentences

def _f(v, digits: int = 2) -> str:
    return "?" if v is None else f"{v:.{digits}f}"


def _cls(names, label) -> str:
    if label is None:
        return "?"
    if label == 0:
        return "background"
    return names[label] if 0 <= label < len(names) else f"class {label}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _roi(o: ObjectPath) -> str:
    """A RoI as the picture labels it: its index among the RoIs and the proposal it is."""
    return f"RoI {o.roi} (proposal {o.roi_proposal})" if o.roi_proposal >= 0 else f"RoI {o.roi}"


def explain(o: ObjectPath, class_names=(), params: dict | None = None) -> str:
    """One sentence with the evidence for ``o.verdict``."""
    p = params or {}
    names = tuple(class_names)
    v = o.verdict
    if v is None:
        if o.crowd:
            return f"a crowd region of '{o.name}' (COCO iscrowd), not one object: no verdict"
        if o.difficult and o.label >= 1:
            return (f"'{o.name}' is marked difficult (VOC): ignored, as COCO ignores a crowd region (never missed, "
                    "takes no detection from another object): no verdict")
        return f"'{o.name}' is not a class of this model: no verdict"
    if v == "detected":
        return (f"detected as detection {o.detection} ({o.name} {_f(o.detection_score)}, IoU "
                f"{_f(o.detection_iou)}), refined from {_roi(o)} (IoU {_f(o.roi_iou)})")
    anchor = (f"best anchor IoU {_f(o.best_anchor_iou)}, {o.anchor_positives} positive anchors"
              if o.best_anchor_iou is not None else "no anchor evidence")
    if v == "rpn_missed":
        best = max((x for x in (o.best_decoded_iou, o.candidate_iou) if x is not None), default=None)
        return (f"no RPN box reached IoU 0.5 (best {_f(best)}; {anchor}): the RPN never proposed it")
    if v == "rpn_cut":
        if o.cut == "pre_nms_top_n":
            return (f"the RPN box decoded from anchor {o.decoded_anchor} covers it (IoU {_f(o.decoded_iou)}) but "
                    f"its objectness {_f(o.decoded_score, 3)} ranks {_ordinal(o.decoded_rank or 0)} on level "
                    f"{o.decoded_level}, past the pre-NMS top {p.get('rpn_pre_nms_top_n_test', '?')}")
        if o.cut == "size":
            return (f"its covering proposal {o.candidate} (IoU {_f(o.candidate_iou)}) was removed as too small "
                    f"(under the RPN's minimum size)")
        if o.cut == "score":
            return (f"its covering proposal {o.candidate} (IoU {_f(o.candidate_iou)}) has objectness "
                    f"{_f(o.candidate_score, 3)}, under the RPN score threshold {p.get('rpn_score_thresh', '?')}")
        return (f"its covering proposal {o.candidate} (IoU {_f(o.candidate_iou)}, objectness "
                f"{_f(o.candidate_score)}) survived NMS {_ordinal(o.candidate_nms_rank or 0)}, past the "
                f"post-NMS top {p.get('rpn_post_nms_top_n_test', '?')}")
    if v == "rpn_suppressed":
        return (f"suppressed at RPN NMS by proposal {o.suppressor}, IoU {_f(o.suppress_iou)}, objectness "
                f"{_f(o.suppressor_score)} vs {_f(o.candidate_score)} (the suppressor covers the object "
                f"only at IoU {_f(o.suppressor_object_iou)})")
    thresh = p.get("box_score_thresh", "?")
    if v == "box_misclassified":
        return (f"{_roi(o)} (IoU {_f(o.roi_iou)}) calls it {_cls(names, o.winner)} {_f(o.winner_prob)}; "
                f"{o.name} gets {_f(o.class_prob, 3)}, under the score threshold {thresh}")
    if v == "box_low_score":
        return (f"{_roi(o)} (IoU {_f(o.roi_iou)}) gives {o.name} {_f(o.class_prob, 3)}, under the score "
                f"threshold {thresh}; {_cls(names, o.winner)} wins with {_f(o.winner_prob)}")
    if v == "box_mislocalized":
        return (f"{o.name} scores {_f(o.class_prob)} on {_roi(o)} (IoU {_f(o.roi_iou)}), but its refined box "
                f"reaches only IoU {_f(o.best_refined_iou)}")
    if v == "box_suppressed":
        fin = (f"detection {o.det_suppressor_final}" if o.det_suppressor_final is not None
               else f"box {o.det_suppressor}")
        return (f"its {o.name} box (IoU {_f(o.det_candidate_iou)}, score {_f(o.det_candidate_score)}) was "
                f"suppressed at box NMS by {fin}, IoU {_f(o.det_suppress_iou)}, score "
                f"{_f(o.det_suppressor_score)} vs {_f(o.det_candidate_score)} (which covers the object only at "
                f"IoU {_f(o.det_suppressor_object_iou)})")
    if v == "box_cut":
        if o.cut == "size":
            return f"its {o.name} box (IoU {_f(o.det_candidate_iou)}) was removed as smaller than 0.01 px"
        return (f"its {o.name} box (IoU {_f(o.det_candidate_iou)}, score {_f(o.det_candidate_score)}) survived "
                f"NMS {_ordinal(o.det_candidate_rank or 0)}, past the {p.get('box_detections_per_img', '?')} "
                f"detections per image")
    if v == "box_taken":
        return (f"its matching detection {o.taken_detection} ({o.name} {_f(o.det_candidate_score)}, IoU "
                f"{_f(o.det_candidate_iou)}) went to object {o.taken_by} under COCO's greedy matching")
    return v
