"""The threshold-independent part of "why was it missed", per image: each truth object's best
anchor (the model's own anchor generator, in the model frame), the anchors the RPN's own Matcher
labels positive for it (``rpn.proposal_matcher`` as ``assign_targets_to_anchors`` calls it), and the
anchors whose decoded RPN box covers it. Computed once per image; ``core.analysis.diagnose`` reuses it for
every threshold change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou, clip_boxes_to_image

from core.analysis.verdicts import COVER_IOU

POSITIVES_KEPT = 64  # positive anchor indices kept per object, for drawing
_CHUNK = 16  # objects per IoU block against all anchors (memory: chunk x anchors floats)

@dataclass(frozen=True, eq=False)
class AnchorEvidence:
    """The threshold-independent part of a diagnosis, per object (computed once per image):
    the best anchor and its IoU, the anchors the RPN's own Matcher labels positive, and the anchors
    whose decoded RPN box (clipped, before any filter) covers the object (IoU >= 0.5)."""

    boxes_model: np.ndarray  # [N, 4] truth in the model frame
    best_anchor_iou: np.ndarray  # [N] float32
    best_anchor: np.ndarray  # [N] int64 index into the concatenated anchors
    positives: np.ndarray | None  # [N] int64, None without a model
    positive_anchors: tuple  # per object: int64 indices (by IoU, at most POSITIVES_KEPT)
    decoded_best_iou: np.ndarray | None  # [N] float32; None without the trace's tensors
    decoded_best: np.ndarray | None  # [N] int64
    covering: tuple | None  # per object: int64 anchor indices whose decoded box covers it

    def __len__(self) -> int:
        return int(self.best_anchor_iou.shape[0])


def truth_in_model_frame(tr, boxes: np.ndarray) -> torch.Tensor:
    """Original-pixel xyxy -> the model frame, as torchvision's transform resizes targets."""
    t = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))
    return resize_boxes(t, tuple(tr.meta.original_size), tuple(tr.meta.resized_size))


def trace_state(tr):
    st = tr._state
    if st is None:
        return None
    return st[0] if isinstance(st, tuple) else st


@torch.inference_mode()
def model_anchors(tr, model=None) -> torch.Tensor:
    """[A, 4] the trace's anchors in the batch frame: the model's own AnchorGenerator on the
    trace's feature maps when the trace holds them, else the trace's numpy anchors."""
    state = trace_state(tr)
    model = model or (state.model if state is not None else None)
    if state is not None and model is state.model and getattr(state, "anchors", None) is not None:
        return state.anchors  # the generator's own output, kept by the trace
    if state is not None and model is not None:
        feats = list(state.features.values())
        bh, bw = tr.meta.batch_size
        dev = feats[0].device
        tensors = torch.zeros((), device=dev, dtype=feats[0].dtype).expand(1, 3, bh, bw)
        return model.module.rpn.anchor_generator(ImageList(tensors, list(state.image_sizes)), feats)[0]
    return torch.from_numpy(np.concatenate([a.anchors() for a in tr.anchors]).astype(np.float32))


@torch.inference_mode()
def anchor_evidence(tr, truth, model=None) -> AnchorEvidence:
    """Best anchor IoU, the RPN Matcher's positive anchors (``model.rpn.proposal_matcher`` with its
    thresholds and ``allow_low_quality_matches``, as ``rpn.assign_targets_to_anchors`` calls it) and
    the covering decoded RPN boxes of every truth object. ``model`` defaults to the trace's own."""
    state = trace_state(tr)
    model = model or (state.model if state is not None else None)
    gt = truth_in_model_frame(tr, truth.boxes)
    n = int(gt.shape[0])
    anchors = model_anchors(tr, model)
    dev = anchors.device
    gt_d = gt.to(dev)
    empty = np.zeros(0, np.int64)
    best_iou = np.zeros(n, np.float32)
    best = np.full(n, -1, np.int64)
    positives = None
    pos_idx = tuple(empty for _ in range(n))
    if n and anchors.shape[0]:
        cols, quality = matcher_quality(gt_d, anchors)
        v, i = quality.max(1)
        best_iou, best = v.float().cpu().numpy(), cols[i].cpu().numpy().astype(np.int64)
        if model is not None:
            matched = model.module.rpn.proposal_matcher(quality)  # per column of ``quality``
            k = torch.nonzero(matched >= 0).flatten()  # positive anchors, ascending
            obj = matched[k]
            positives = torch.bincount(obj, minlength=n).cpu().numpy().astype(np.int64)
            # per object, its positives by IoU descending (ties: anchor order), in one sort
            q = quality[obj, k].cpu().numpy()
            idx_np, obj_np = cols[k].cpu().numpy().astype(np.int64), obj.cpu().numpy()
            order = np.lexsort((idx_np, -q, obj_np))
            starts = np.concatenate([[0], np.cumsum(positives)[:-1]])
            pos_idx = tuple(idx_np[order[s:s + min(c, POSITIVES_KEPT)]] for s, c in zip(starts, positives))
        del quality
    elif model is not None:
        positives = np.zeros(n, np.int64)
    dec_best_iou = dec_best = covering = None
    if state is not None:
        decoded = clip_boxes_to_image(state.proposals, state.image_sizes[0])
        dec_best_iou = np.zeros(n, np.float32)
        dec_best = np.full(n, -1, np.int64)
        cov = []
        for s in range(0, n, _CHUNK):
            cols, iou = overlap_iou(gt_d[s:s + _CHUNK], decoded)  # box_iou on the decoded boxes that overlap
            if decoded.shape[0]:
                if cols.numel():
                    v, i = iou.max(1)
                    # a row of zeros: box_iou over all boxes would name the first box
                    i = torch.where(v > 0, cols[i], torch.zeros_like(i))
                else:
                    v, i = torch.zeros(iou.shape[0]), torch.zeros(iou.shape[0], dtype=torch.int64)
                dec_best_iou[s:s + _CHUNK] = v.cpu().numpy()
                dec_best[s:s + _CHUNK] = i.cpu().numpy()
            rows, k = torch.nonzero(iou >= COVER_IOU, as_tuple=True)  # row-major: each row's columns ascending
            counts = torch.bincount(rows, minlength=iou.shape[0]).tolist()
            cov += [c.numpy() for c in cols[k].cpu().to(torch.int64).split(counts)]
        covering = tuple(cov)
    return AnchorEvidence(gt.numpy(), best_iou, best, positives, pos_idx, dec_best_iou, dec_best, covering)


def matcher_quality(gt: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cols, quality): the [N, A] quality matrix ``assign_targets_to_anchors`` gives the Matcher, on
    the columns of the anchors that overlap an object (every other column is 0). The Matcher decides
    a column from that column and each object's best IoU, so on these columns it matches as on all
    of them, and the zero columns stay unmatched -- as long as every object overlaps some anchor
    (else its best is 0, its low-quality matches are zero columns: the full matrix is made)."""
    cols, quality = overlap_iou(gt, anchors)
    if cols.numel() == 0 or bool((quality.max(1).values <= 0).any()):
        full = torch.zeros((gt.shape[0], anchors.shape[0]), dtype=quality.dtype, device=anchors.device)
        quality = full.index_copy_(1, cols, quality)
        cols = torch.arange(anchors.shape[0], device=anchors.device)
    return cols, quality


def overlap_iou(gt: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cols, iou): the indices of the ``boxes`` that overlap at least one of ``gt`` (ascending)
    and torchvision's ``box_iou(gt, boxes[cols])`` with 0/0 taken as 0. Every other pair has IoU
    exactly 0, so this is the full matrix's content at a fraction of its cost (most anchors and
    decoded boxes lie far from every object)."""
    hit = ((boxes[None, :, 0] < gt[:, None, 2]) & (boxes[None, :, 2] > gt[:, None, 0])
           & (boxes[None, :, 1] < gt[:, None, 3]) & (boxes[None, :, 3] > gt[:, None, 1])).any(0)
    cols = torch.nonzero(hit).flatten()
    return cols, box_iou(gt, boxes[cols]).nan_to_num_(0.0)
