"""Why was it missed: a trace + its truth -> a verdict per object and a TIDE error type per detection.

Two steps, so that a threshold change (``core.retrace``) re-derives the verdicts without the
backbone or the anchor work:

    ev = anchor_evidence(trace, truth)        # once per image: anchors, the RPN's Matcher, decoded boxes
    dg = diagnose(trace, truth, ev)           # pure function of (trace, truth, ev): milliseconds
    dg = diagnose(core.retrace(trace, box_nms_thresh=0.3), truth, ev)

The vocabulary and its rules are in ``core.analysis.verdicts``. IoUs are torchvision's ``box_iou``;
anchors, proposals and RoIs are compared in the model frame with the truth resized like the image
(torchvision's ``resize_boxes``), detections in original pixels (what torchvision returns).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torchvision.ops import box_iou, clip_boxes_to_image

from core.analysis.anchor_evidence import AnchorEvidence, anchor_evidence, trace_state, truth_in_model_frame
from core.analysis.matching import match, tide_errors
from core.analysis.verdicts import COVER_IOU, DetectionError, Diagnosis, ObjectPath
from core.tracing.types import KEPT, LOW_SCORE, OVER_TOP_N, SMALL, STATUS_NAMES, SUPPRESSED

# how far a box got: a higher value survived more of torchvision's filters, in their order
_RPN_PROGRESS = {SMALL: 1, LOW_SCORE: 2, SUPPRESSED: 3, OVER_TOP_N: 4, KEPT: 5}
_RPN_VERDICT = {-1: ("rpn_missed", None), 0: ("rpn_cut", "pre_nms_top_n"), 1: ("rpn_cut", "size"),
                2: ("rpn_cut", "score"), 3: ("rpn_suppressed", None), 4: ("rpn_cut", "post_nms_top_n")}
_BOX_PROGRESS = {SMALL: 1, SUPPRESSED: 2, OVER_TOP_N: 3, KEPT: 4}
_BOX_VERDICT = {1: ("box_cut", "size"), 2: ("box_suppressed", None), 3: ("box_cut", "detections_per_img")}
# the same as lookup tables indexed by status code (0 where a status cannot occur)
_RPN_LUT = np.array([_RPN_PROGRESS.get(c, 0) for c in range(len(STATUS_NAMES))], np.int64)
_BOX_LUT = np.array([_BOX_PROGRESS.get(c, 0) for c in range(len(STATUS_NAMES))], np.int64)


# ---------------------------------------------------------------- the verdicts

def _iou(a, b) -> np.ndarray:
    a = torch.as_tensor(np.asarray(a, np.float32).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4))
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float32)
    return np.nan_to_num(box_iou(a, b).numpy())  # 0/0 for empty boxes: no overlap


class _Ranks:
    """Objectness rank of an anchor on its level (1 = highest), from the trace's RPN logits."""

    def __init__(self, tr):
        self.tr = tr
        self.offsets = np.array([a.offset for a in tr.anchors] + [sum(a.count for a in tr.anchors)])

    def level(self, anchor: int) -> int:
        return int(np.searchsorted(self.offsets, anchor, side="right") - 1)

    def logits(self, lvl: int) -> np.ndarray:
        # torchvision's order: (row, col, anchor) = objectness [A, H, W] transposed to [H, W, A]
        return self.tr.rpn[lvl].objectness.transpose(1, 2, 0).reshape(-1)

    def logit(self, anchor: int) -> float:
        lvl = self.level(anchor)
        return float(self.logits(lvl)[anchor - self.tr.anchors[lvl].offset])

    def rank(self, anchor: int) -> tuple[int, float, str]:
        """(rank on its level, objectness probability, level name)."""
        lvl = self.level(anchor)
        logits = self.logits(lvl)
        logit = float(logits[anchor - self.tr.anchors[lvl].offset])
        rank = int(np.count_nonzero(logits > logit)) + 1  # a count: cheaper than sorting the level
        return rank, float(1.0 / (1.0 + np.exp(-logit))), self.tr.anchors[lvl].name


def _best(mask: np.ndarray, *keys) -> int:
    """Index of the best True entry by lexicographic keys (each an array, higher is better)."""
    idx = np.nonzero(mask)[0]
    if idx.size == 0:
        return -1
    order = np.lexsort(tuple(k[idx] for k in reversed(keys)))
    return int(idx[order[-1]])


def diagnose(tr, truth, evidence: AnchorEvidence | None = None) -> Diagnosis:
    """The verdict of every truth object and TIDE's error type of every final detection.

    A pure function of the trace (its thresholds included), the truth and the anchor evidence
    (``anchor_evidence``: without it, an object no pre-NMS candidate covers is ``rpn_missed``,
    not told apart from one cut by the pre-NMS top-n, and anchor fields stay empty)."""
    names = tuple(tr.class_names)
    n = len(truth)
    if evidence is not None and len(evidence) != n:
        raise ValueError(f"anchor evidence is for {len(evidence)} objects, truth has {n}")
    crowd = np.asarray(getattr(truth, "crowd", np.zeros(n, bool)), bool).reshape(n)
    # ignored as COCO ignores a crowd region (one rule for verdicts, TIDE and mAP): crowd regions and
    # VOC 'difficult' objects; with the classes the model lacks they get no verdict and match nothing
    ignored = crowd | np.asarray(truth.difficult, bool).reshape(n)
    labels = np.where((truth.labels >= 1) & (truth.labels < len(names)) & ~ignored, truth.labels, -1)
    P, H, D = tr.proposals, tr.box_head, tr.detections
    gt_model = evidence.boxes_model if evidence is not None else truth_in_model_frame(tr, truth.boxes).numpy()
    cand_iou = _iou(gt_model, P.boxes)  # [N, candidates]
    roi_iou = cand_iou[:, P.keep] if n else np.zeros((0, len(P.keep)), np.float32)  # RoIs = proposals.keep
    det_iou = _iou(truth.boxes, D.boxes_image)  # [N, detection candidates], original pixels
    final = np.asarray(D.final_boxes_image, np.float32).reshape(-1, 4)
    f_labels, f_scores = D.label[D.keep], D.scores[D.keep]
    fin_iou = _iou(truth.boxes, final)
    gt_det, det_gt = match(fin_iou, labels, f_labels, f_scores)
    final_of = {int(c): j for j, c in enumerate(D.keep)}  # candidate index -> final index
    ranks = _Ranks(tr)
    rpn_prog = _RPN_LUT[np.asarray(P.status, np.int64).reshape(-1)]
    box_prog = _BOX_LUT[np.asarray(D.status, np.int64).reshape(-1)]
    in_set = None
    # survivors of NMS in output order, for positions after NMS
    rpn_after_nms = np.nonzero((P.status == KEPT) | (P.status == OVER_TOP_N))[0]
    rpn_after_nms = rpn_after_nms[np.argsort(-P.scores[rpn_after_nms], kind="stable")]
    det_after_nms = np.nonzero((D.status == KEPT) | (D.status == OVER_TOP_N))[0]
    det_after_nms = det_after_nms[np.argsort(-D.scores[det_after_nms], kind="stable")]

    objects = []
    for i in range(n):
        c = int(labels[i])
        f: dict = {}
        if evidence is not None:
            f.update(best_anchor_iou=float(evidence.best_anchor_iou[i]), anchor=int(evidence.best_anchor[i]))
            if f["anchor"] >= 0:
                f["anchor_level"] = tr.anchors[ranks.level(f["anchor"])].name
            if evidence.positives is not None:
                f["anchor_positives"] = int(evidence.positives[i])
                f["positive_anchors"] = tuple(int(a) for a in evidence.positive_anchors[i])
            if evidence.decoded_best_iou is not None:
                f["best_decoded_iou"] = float(evidence.decoded_best_iou[i])
        # ---- RPN: how far did its covering boxes get?
        cov = cand_iou[i] >= COVER_IOU if len(P) else np.zeros(0, bool)
        f["covering_candidates"] = int(cov.sum())
        progress = int(rpn_prog[cov].max()) if cov.any() else -1
        if progress < 0 and evidence is not None and evidence.covering is not None:
            anchors_cov = evidence.covering[i]
            if in_set is None:
                in_set = np.asarray(P.anchor, np.int64)
            outside = anchors_cov[~np.isin(anchors_cov, in_set)]
            if outside.size:  # covering decoded boxes that the per-level pre-NMS top-n left out
                progress = 0
                a = int(outside[np.argmax([ranks.logit(int(x)) for x in outside])])
                rank, score, lvl = ranks.rank(a)
                f.update(decoded_anchor=a, decoded_rank=rank, decoded_score=score, decoded_level=lvl,
                         decoded_iou=float(_iou(gt_model[i], _decoded_box(tr, a))[0, 0]))
        if progress < 0 and evidence is not None and evidence.decoded_best is not None \
                and evidence.decoded_best[i] >= 0:
            a = int(evidence.decoded_best[i])
            rank, score, lvl = ranks.rank(a)
            f.update(decoded_anchor=a, decoded_rank=rank, decoded_score=score, decoded_level=lvl,
                     decoded_iou=float(evidence.decoded_best_iou[i]))
        if len(P):
            if cov.any():
                k = _best(cov & (rpn_prog == progress), cand_iou[i])
            else:
                k = int(np.argmax(cand_iou[i]))
            f.update(_candidate_fields(tr, P, k, cand_iou[i], ranks, rpn_after_nms))
        if len(P.keep):
            r = int(np.argmax(roi_iou[i]))
            f.update(best_proposal_iou=float(roi_iou[i, r]), best_proposal=r)
        rois = np.nonzero(roi_iou[i] >= COVER_IOU)[0] if len(P.keep) else np.zeros(0, np.int64)
        rois = rois[np.argsort(-roi_iou[i, rois], kind="stable")]
        f.update(_covering_fields(H.probs, rois, roi_iou[i], c))
        verdict, cut = None, None
        if c < 0:
            objects.append(ObjectPath(i, _box(truth.boxes[i]), int(truth.labels[i]), truth.names[i],
                                      bool(truth.difficult[i]), None, None, crowd=bool(crowd[i]), **f))
            continue
        if rois.size:
            _roi_fields(f, H.probs, rois, roi_iou[i], c, pick="class")
        if gt_det[i] >= 0:
            j = int(gt_det[i])
            k = int(D.keep[j])
            verdict = "detected"
            f.update(detection=j, detection_iou=float(fin_iou[i, j]), detection_score=float(f_scores[j]))
            f.update(_det_fields(D, k, det_iou[i], det_after_nms))
            r = int(D.proposal[k])
            f.update(roi=r, roi_iou=float(roi_iou[i, r]), class_prob=float(H.probs[r, c]),
                     winner=int(np.argmax(H.probs[r])), winner_prob=float(H.probs[r].max()))
        elif not rois.size:
            verdict, cut = _RPN_VERDICT[progress]
            if verdict == "rpn_suppressed":
                k = f["candidate"]
                sup = int(P.suppressed_by[k])
                f.update(suppressor=sup, suppress_iou=float(P.suppress_iou[k]))
                if sup >= 0:
                    f.update(suppressor_score=float(P.scores[sup]), suppressor_object_iou=float(cand_iou[i, sup]))
        else:
            of_class = (D.label == c) if len(D) else np.zeros(0, bool)
            good = of_class & (det_iou[i] >= COVER_IOU)
            if not good.any():
                on_cover = of_class & np.isin(D.proposal, rois)
                if on_cover.any():
                    verdict = "box_mislocalized"
                    k = _best(on_cover, det_iou[i], D.scores)
                    f.update(_det_fields(D, k, det_iou[i], det_after_nms), best_refined_iou=float(det_iou[i, k]))
                    r = int(D.proposal[k])
                    f.update(roi=r, roi_iou=float(roi_iou[i, r]), class_prob=float(H.probs[r, c]),
                             winner=int(np.argmax(H.probs[r])), winner_prob=float(H.probs[r].max()))
                else:
                    win = H.probs[rois].argmax(1)
                    wrong = (win != c) & (win != 0)
                    if wrong.any() and not (win == c).any():
                        verdict = "box_misclassified"
                        _roi_fields(f, H.probs, rois[wrong], roi_iou[i], c, pick="iou")
                    else:
                        verdict = "box_low_score"
            else:
                progress = int(box_prog[good].max())
                k = _best(good & (box_prog == progress), D.scores, det_iou[i])
                f.update(_det_fields(D, k, det_iou[i], det_after_nms))
                if progress == _BOX_PROGRESS[KEPT]:
                    verdict = "box_taken"
                    j = final_of[k]
                    f.update(taken_detection=j, taken_by=int(det_gt[j]) if det_gt[j] >= 0 else None)
                else:
                    verdict, cut = _BOX_VERDICT[progress]
                    if verdict == "box_suppressed":
                        sup = int(D.suppressed_by[k])
                        f.update(det_suppressor=sup, det_suppress_iou=float(D.suppress_iou[k]))
                        if sup >= 0:
                            f.update(det_suppressor_score=float(D.scores[sup]),
                                     det_suppressor_object_iou=float(det_iou[i, sup]),
                                     det_suppressor_final=final_of.get(sup))
        if f.get("roi", -1) >= 0:
            f["roi_proposal"] = int(P.keep[f["roi"]])
        objects.append(ObjectPath(i, _box(truth.boxes[i]), c, truth.names[i], bool(truth.difficult[i]),
                                  verdict, cut, **f))

    dets = []
    solid = np.nonzero(~ignored)[0]  # TIDE: ignored regions are not objects (classes the model lacks are)
    errors = tide_errors(fin_iou[solid], labels[solid], f_labels, np.where(det_gt >= 0, np.searchsorted(solid, det_gt), -1))
    for j, (etype, g) in enumerate(errors):
        g = None if g is None else int(solid[g])
        lab = int(f_labels[j])
        dets.append(DetectionError(j, _box(final[j]), lab, tr.class_name(lab), float(f_scores[j]), etype, g,
                                   float(fin_iou[g, j]) if g is not None else 0.0))
    return Diagnosis(tuple(objects), tuple(dets), dict(tr.params), names,
                     anchors_known=evidence is not None and evidence.covering is not None)


def _box(b) -> tuple:
    return tuple(float(v) for v in b)


def _decoded_box(tr, anchor: int):
    state = trace_state(tr)
    if state is None:
        return None
    box = clip_boxes_to_image(state.proposals[anchor:anchor + 1], state.image_sizes[0])
    return box.detach().cpu().numpy()


def _candidate_fields(tr, P, k: int, iou_row, ranks: _Ranks, after_nms) -> dict:
    rank, _, _ = ranks.rank(int(P.anchor[k]))
    st = int(P.status[k])
    pos = np.nonzero(after_nms == k)[0]
    return dict(candidate=k, candidate_iou=float(iou_row[k]), candidate_score=float(P.scores[k]),
                candidate_rank=rank, candidate_status=STATUS_NAMES[st],
                candidate_nms_rank=int(pos[0]) + 1 if pos.size else None)


def _det_fields(D, k: int, iou_row, after_nms) -> dict:
    pos = np.nonzero(after_nms == k)[0]
    return dict(det_candidate=k, det_candidate_iou=float(iou_row[k]), det_candidate_score=float(D.scores[k]),
                det_candidate_status=STATUS_NAMES[int(D.status[k])],
                det_candidate_rank=int(pos[0]) + 1 if pos.size else None)


def _covering_fields(probs, rois, iou_row, c: int) -> dict:
    """Per covering RoI (``rois``, by IoU descending): its IoU, the probability of class ``c``
    (None if c < 0: not a class of the model) and the winning class with its probability; one
    numpy gather per array, tuples of Python numbers (cheap to compare, pickle and write)."""
    p = probs[rois]  # [R, classes] softmax rows
    win = p.argmax(1) if rois.size else np.zeros(0, np.int64)
    return dict(rois=tuple(rois.tolist()), roi_ious=tuple(iou_row[rois].tolist()),
                roi_class_probs=tuple(p[:, c].tolist()) if c >= 0 else None,
                roi_winners=tuple(win.tolist()),
                roi_winner_probs=tuple(np.take_along_axis(p, win[:, None], 1)[:, 0].tolist()))


def _roi_fields(f: dict, probs, rois, iou_row, c: int, pick: str) -> None:
    """The covering RoI that scores class c highest (``class``) or the covering one of highest IoU."""
    r = int(rois[np.argmax(probs[rois, c])]) if pick == "class" else int(rois[np.argmax(iou_row[rois])])
    f.update(roi=r, roi_iou=float(iou_row[r]), class_prob=float(probs[r, c]), winner=int(np.argmax(probs[r])),
             winner_prob=float(probs[r].max()))


def attach(tr, truth, evidence: AnchorEvidence | None = None):
    """The trace with its truth and diagnosis (``trace.truth``, ``trace.diagnosis``)."""
    return replace(tr, truth=truth, diagnosis=diagnose(tr, truth, evidence))


class LiveDiagnosis:
    """Verdicts that follow the thresholds: the anchor evidence once per image and truth, then
    ``diagnose`` on every retrace of that image (a retrace keeps its trace's tensors). The evidence
    of the last ``keep`` traces is kept (the app flips between two runs' traces of one image)."""

    def __init__(self, keep: int = 2):
        self._kept: dict = {}  # (id of the trace's tensors, the truth's boxes) -> (tensors, truth, evidence)
        self.keep = keep

    def __call__(self, tr, truth):
        """The trace with ``truth`` and its ``diagnosis`` attached."""
        state = trace_state(tr)
        # the truth by content: the engine reads an image's truth afresh for every trace request
        key = (id(state), truth.boxes.tobytes(), truth.labels.tobytes(), np.asarray(truth.crowd).tobytes())
        hit = self._kept.pop(key, None)
        if hit is None or hit[0] is not state:
            hit = (state, truth, anchor_evidence(tr, truth))
        self._kept[key] = hit  # the newest last; holding the tensors keeps their id unique
        for old in list(self._kept)[:-self.keep]:
            del self._kept[old]
        return attach(tr, truth, hit[2])
