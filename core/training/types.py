"""The training view's result types (numpy only: the GUI process imports them without torch).
Computed by core.training.targets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")
TRAIN_PARAMS = ("rpn_nms_thresh", "rpn_score_thresh")  # the test-time keywords torchvision applies in training too
POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True, eq=False)
class AnchorTargets:
    """Every anchor of the image (torchvision's concatenated order: level, row, col, anchor), as the
    RPN's training step labels it. Boxes are in the model frame, ``*_image`` in original pixels."""

    fg_iou_thresh: float
    bg_iou_thresh: float
    batch_size_per_image: int
    positive_fraction: float
    label: np.ndarray  # [A] int8: 1 positive, 0 negative, -1 ignored (between the thresholds)
    matched: np.ndarray  # [A] int64: the GT (row of Training.gt_boxes) of highest IoU; -1 without GT
    iou: np.ndarray  # [A] float32: that IoU
    promoted: np.ndarray  # [A] bool: positive only through allow_low_quality_matches
    sampled: np.ndarray  # [A] bool: in the minibatch
    objectness: np.ndarray  # [A] float32: the objectness logit the loss saw
    bce: np.ndarray  # [A] float32: binary cross-entropy vs the label (0 where ignored)
    loss_objectness: np.ndarray  # [A] float32: each sampled anchor's share of loss_objectness
    positive: np.ndarray  # [P] int64: the positive anchors (sampled or not), ascending
    anchor_boxes: np.ndarray  # [P, 4] those anchors, model (batch) frame
    target_deltas: np.ndarray  # [P, 4] box_coder.encode(matched GT, anchor)
    pred_deltas: np.ndarray  # [P, 4] the RPN's predicted deltas
    target_boxes: np.ndarray  # [P, 4] box_coder.decode of the target deltas (= the matched GT)
    pred_boxes: np.ndarray  # [P, 4] box_coder.decode of the predicted deltas
    pred_boxes_image: np.ndarray  # [P, 4]
    loss_box_reg: np.ndarray  # [P] float32: each positive's share of loss_rpn_box_reg (0 if not sampled)

    def counts(self) -> dict:
        return {"positive": int((self.label == POSITIVE).sum()), "negative": int((self.label == NEGATIVE).sum()),
                "ignored": int((self.label == IGNORED).sum()), "sampled": int(self.sampled.sum()),
                "sampled_positive": int((self.sampled & (self.label == POSITIVE)).sum()),
                "promoted": int(self.promoted.sum())}

    def caption(self) -> str:
        return (f"IoU >= {self.fg_iou_thresh:g} positive, < {self.bg_iou_thresh:g} negative, "
                f"{self.batch_size_per_image} sampled, {self.positive_fraction * 100:g}% positive")


@dataclass(frozen=True, eq=False)
class RoITargets:
    """The RoI heads' training step: the RPN's training proposals with the GT boxes appended,
    matched, labelled, and the sampled minibatch with its targets and losses."""

    fg_iou_thresh: float
    bg_iou_thresh: float
    batch_size_per_image: int
    positive_fraction: float
    bbox_reg_weights: tuple[float, ...]
    num_proposals: int  # boxes[:num_proposals] came from the RPN, the rest are the appended GT
    boxes: np.ndarray  # [R, 4] model frame
    boxes_image: np.ndarray  # [R, 4]
    matched: np.ndarray  # [R] int64 GT of highest IoU; -1 without GT
    iou: np.ndarray  # [R] float32
    label: np.ndarray  # [R] int64: class, 0 background, -1 ignored (between the thresholds)
    sampled: np.ndarray  # [S] int64 indices into boxes, in torchvision's order
    sampled_label: np.ndarray  # [S] int64 the classification target
    target_deltas: np.ndarray  # [S, 4] box_coder.encode(matched GT, RoI) (regressed for positives)
    pred_deltas: np.ndarray  # [S, 4] the predictor's deltas for the target class
    pred_boxes: np.ndarray  # [S, 4] decoded with the target class (positives); the RoI itself otherwise
    pred_boxes_image: np.ndarray  # [S, 4]
    class_logits: np.ndarray  # [S, C]
    target_prob: np.ndarray  # [S] softmax probability of the target class
    loss_classifier: np.ndarray  # [S] each sampled RoI's share of loss_classifier
    loss_box_reg: np.ndarray  # [S] its share of loss_box_reg (0 for background)

    @property
    def from_gt(self) -> np.ndarray:
        """[R] bool: the appended GT boxes."""
        out = np.zeros(len(self.boxes), bool)
        out[self.num_proposals:] = True
        return out

    def counts(self) -> dict:
        pos = int((self.sampled_label > 0).sum())
        return {"proposals": self.num_proposals, "gt_appended": int(len(self.boxes) - self.num_proposals),
                "sampled": int(len(self.sampled)), "positive": pos, "negative": int(len(self.sampled) - pos),
                "ignored": int((self.label == IGNORED).sum())}

    def caption(self) -> str:
        return (f"IoU >= {self.fg_iou_thresh:g} positive, < {self.bg_iou_thresh:g} background, "
                f"{self.batch_size_per_image} sampled, {self.positive_fraction * 100:g}% positive")


@dataclass(frozen=True, eq=False)
class Training:
    seed: int
    gt_boxes: np.ndarray  # [G, 4] model frame: the truth objects torchvision trains on (Truth.trainable)
    gt_boxes_image: np.ndarray  # [G, 4]
    gt_labels: np.ndarray  # [G] int64
    gt_truth: np.ndarray  # [G] int64: row of the Truth each GT comes from
    pre_nms_top_n: int  # the RPN's training top-n
    post_nms_top_n: int
    losses: dict  # loss_objectness, loss_rpn_box_reg, loss_classifier, loss_box_reg: torchvision's values
    rpn: AnchorTargets
    roi: RoITargets
    meta: object  # core.tracing.types.ImageMeta of the training step: the size its transform chose
    anchors: tuple  # core.tracing.types.AnchorLevel per level, on the training step's feature maps
    rpn_params: dict  # the trace's RPN NMS and score thresholds it ran with (TRAIN_PARAMS)
    note: str  # where its train-mode features differ from the eval trace's (BatchNorm, size); "" if not

    def counts(self) -> dict:
        """What ``trace --json`` prints under "training"."""
        a, r = self.rpn.counts(), self.roi.counts()
        return {"seed": self.seed, "losses": dict(self.losses),
                "rpn": {k: a[k] for k in ("positive", "negative", "ignored", "sampled")},
                "roi": {k: r[k] for k in ("sampled", "positive")}}

    def table(self) -> list[tuple[str, str]]:
        """Rows (label, value) for an inspector or a printed table."""
        a, r = self.rpn.counts(), self.roi.counts()
        return [
            ("seed", str(self.seed)),
            ("ground truth", f"{len(self.gt_boxes)} objects"),
            ("anchors", f"{a['positive']} positive ({a['promoted']} low-quality), {a['negative']} negative, "
                        f"{a['ignored']} ignored"),
            ("anchor minibatch", f"{a['sampled']} sampled, {a['sampled_positive']} positive"),
            ("anchor rule", self.rpn.caption()),
            ("rpn proposals", f"{r['proposals']} (training top-n {self.pre_nms_top_n}/{self.post_nms_top_n}) "
                              f"+ {r['gt_appended']} GT"),
            ("roi minibatch", f"{r['sampled']} sampled, {r['positive']} positive"),
            ("roi rule", self.roi.caption()),
            *((k, f"{v:.6g}") for k, v in self.losses.items()),
            ("loss total", f"{sum(self.losses.values()):.6g}"),
            *((("train-mode features", self.note.split(": ", 1)[-1]),) if self.note else ()),
        ]

    def for_gt(self, truth_index: int) -> dict:
        """One truth object's part: its positive anchors, its sampled positive RoIs, what they cost.
        Empty lists when the object is not trained on (a class the model lacks, a crowd region)."""
        rows = np.nonzero(self.gt_truth == truth_index)[0]
        if len(rows) == 0:
            return {"gt": -1, "anchors": [], "rois": [], "losses": {k: 0.0 for k in LOSSES}}
        g = int(rows[0])
        a, r = self.rpn, self.roi
        anchors = np.nonzero((a.label == POSITIVE) & (a.matched == g))[0]
        p_rows = np.searchsorted(a.positive, anchors)
        s_rows = np.nonzero((r.sampled_label > 0) & (r.matched[r.sampled] == g))[0]
        return {
            "gt": g, "anchors": anchors.tolist(), "anchor_iou": a.iou[anchors].tolist(),
            "anchors_sampled": a.sampled[anchors].tolist(), "rois": r.sampled[s_rows].tolist(),
            "roi_iou": r.iou[r.sampled[s_rows]].tolist(),
            "losses": {"loss_objectness": float(a.loss_objectness[anchors].sum()),
                       "loss_rpn_box_reg": float(a.loss_box_reg[p_rows].sum()),
                       "loss_classifier": float(r.loss_classifier[s_rows].sum()),
                       "loss_box_reg": float(r.loss_box_reg[s_rows].sum())},
        }
