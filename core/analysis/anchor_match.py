"""Anchors as the RPN's training step sees them, for one image and any anchor configuration:
torchvision's ``AnchorGenerator`` on the feature-map sizes the model's backbone produces for the
image its transform made, and the RPN's own ``Matcher`` (``rpn.proposal_matcher``: its
thresholds, ``allow_low_quality_matches``) on torchvision's ``box_iou`` -- the labels of
``rpn.assign_targets_to_anchors`` (tests/core/test_anchor_fit.py holds them equal, also for a
hypothetical generator).

Each object ends ``strong`` (a positive anchor at IoU >= the Matcher's high threshold),
``rescued`` (positive anchors only through the best-match rule) or ``starved`` (no positive
anchor: its best anchors went to objects they overlap more, or the rule is off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import box_iou

from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_evidence import matcher_quality
from core.analysis.anchor_types import MATCHES
from core.errors import LensError

_OWN = ("forward", "grid_anchors", "generate_anchors", "set_cell_anchors", "num_anchors_per_location")


def generator_of(module, subject: str = "model") -> AnchorGenerator:
    """The model's ``rpn.anchor_generator`` if it is torchvision's ``AnchorGenerator`` (a subclass
    that overrides none of its methods counts); else one line saying why it cannot be fitted."""
    rpn = getattr(module, "rpn", None)
    gen = getattr(rpn, "anchor_generator", None)
    if not isinstance(gen, AnchorGenerator):
        raise LensError(subject, f"its RPN's anchor generator is a {type(gen).__name__}, not torchvision's "
                                 "AnchorGenerator(sizes, aspect_ratios): its anchors cannot be fitted")
    own = [m for m in _OWN if getattr(type(gen), m) is not getattr(AnchorGenerator, m)]
    if own:
        raise LensError(subject, f"its anchor generator ({type(gen).__name__}) overrides AnchorGenerator."
                                 f"{', '.join(own)}: its anchors cannot be fitted as torchvision's")
    return gen


def config_of(gen: AnchorGenerator) -> AnchorConfig:
    return AnchorConfig(tuple(tuple(s) for s in gen.sizes), tuple(tuple(float(r) for r in a) for a in gen.aspect_ratios))


def generator(cfg: AnchorConfig) -> AnchorGenerator:
    """torchvision's own generator for a configuration."""
    return AnchorGenerator(tuple(tuple(lvl) for lvl in cfg.sizes), tuple(tuple(lvl) for lvl in cfg.aspect_ratios))


@dataclass(frozen=True, eq=False)
class Geometry:
    """One image as the RPN sees it: sizes from the model's transform and backbone, the objects
    (not crowd regions) in the model's frame."""

    image: str
    original_size: tuple  # H, W
    image_size: tuple  # h, w after the transform's resize
    batch_size: tuple  # H, W padded (the tensor the backbone and the anchor generator see)
    grids: tuple  # per level (h, w): the feature maps' sizes
    boxes: np.ndarray  # [N, 4] float32 xyxy, model frame
    truth: np.ndarray  # [N] int64: each object's index in the image's truth
    names: tuple  # [N] class names

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def geometry_of(name, original_size, image_size, batch_size, grids, truth) -> Geometry:
    """The objects RPN training sees: every annotated object but crowd regions (the RPN does not
    look at classes, so a class the model lacks counts), resized as the transform resizes targets."""
    keep = np.nonzero(~np.asarray(truth.crowd, bool))[0] if truth is not None else np.zeros(0, np.int64)
    boxes = truth.boxes[keep] if truth is not None else np.zeros((0, 4), np.float32)
    b = resize_boxes(torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4), list(original_size),
                     list(image_size)).numpy()
    names = tuple(truth.names[int(i)] for i in keep) if truth is not None else ()
    return Geometry(str(name), tuple(original_size), tuple(image_size), tuple(batch_size), tuple(grids),
                    b.astype(np.float32), keep.astype(np.int64), names)


@torch.inference_mode()
def anchors_for(gen: AnchorGenerator, g: Geometry) -> torch.Tensor:
    """[A, 4] ``gen``'s anchors for the image (batch frame, torchvision's order), from feature maps
    of the real sizes (no values: the generator reads only their shapes)."""
    if len(g.grids) != len(gen.cell_anchors):
        raise LensError("anchors", f"{len(gen.cell_anchors)} levels of sizes, but the model has {len(g.grids)} "
                                   "feature maps (one tuple of sizes per level)")
    bh, bw = g.batch_size
    images = ImageList(torch.zeros(()).expand(1, 3, bh, bw), [tuple(g.image_size)])
    return gen(images, [torch.empty((1, 0, int(h), int(w))) for h, w in g.grids])[0]


def level_counts(gen: AnchorGenerator, g: Geometry) -> list[int]:
    return [int(h) * int(w) * n for (h, w), n in zip(g.grids, gen.num_anchors_per_location())]


@dataclass(frozen=True, eq=False)
class Match:
    """The Matcher's decision for every anchor of one image, and what it means per object."""

    matched: np.ndarray | None  # [A] int64 (None: not kept, match(per_anchor=False)): the Matcher's output (object >= 0, -1 below the low threshold, -2 between)
    positives: np.ndarray  # [N] int64 positive anchors per object
    strong: np.ndarray  # [N] int64 of those, at IoU >= the high threshold
    best_iou: np.ndarray  # [N] float32 the object's best IoU with any anchor
    best: np.ndarray  # [N] int64 that anchor
    best_object: np.ndarray | None  # [A] int64 the object of highest IoU per anchor (0 where none overlaps), box_iou's max
    best_object_iou: np.ndarray | None  # [A] float32 that IoU

    @property
    def labels(self) -> np.ndarray:
        """[A] float32 as ``assign_targets_to_anchors``: 1 positive, 0 negative, -1 between the thresholds."""
        out = (self.matched >= 0).astype(np.float32)
        out[self.matched == -2] = -1.0
        return out

    def outcome(self) -> np.ndarray:
        """[N] index into MATCHES."""
        return np.where(self.strong > 0, 0, np.where(self.positives > 0, 1, 2)).astype(np.int64)

    def counts(self) -> dict:
        o = self.outcome()
        return {m: int((o == i).sum()) for i, m in enumerate(MATCHES)}


@torch.inference_mode()
def match(rpn, boxes, anchors: torch.Tensor, per_anchor: bool = True) -> Match:
    """``rpn.proposal_matcher(rpn.box_similarity(boxes, anchors))`` as ``assign_targets_to_anchors``
    computes it, on the anchors that overlap an object (every other column is 0, which the Matcher
    labels below the low threshold: core.analysis.anchor_evidence.matcher_quality). Without
    ``per_anchor`` only the per-object figures are kept (the search judges thousands of images)."""
    gt = torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4).to(anchors.device)
    n, a = int(gt.shape[0]), int(anchors.shape[0])
    positives, strong, best = np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, -1, np.int64)
    best_iou = np.zeros(n, np.float32)
    if n and a:
        if rpn.box_similarity is not box_iou:
            raise LensError("rpn", "its box_similarity is not torchvision's box_iou: its anchors cannot be matched here")
        cols, q = matcher_quality(gt, anchors)
        m = rpn.proposal_matcher(q)
        bv, bi = q.max(1)
        k = torch.nonzero(m >= 0).flatten()
        obj = m[k]
        high = float(rpn.proposal_matcher.high_threshold)
        positives = torch.bincount(obj, minlength=n).cpu().numpy().astype(np.int64)
        strong = torch.bincount(obj[q[obj, k] >= high], minlength=n).cpu().numpy().astype(np.int64)
        best_iou, best = bv.float().cpu().numpy(), cols[bi].cpu().numpy().astype(np.int64)
    matched = best_obj = best_obj_iou = None
    if per_anchor:
        matched = torch.full((a,), -1, dtype=torch.int64)
        best_obj, best_obj_iou = torch.zeros(a, dtype=torch.int64), torch.zeros(a)
        if n and a:
            matched[cols.cpu()] = m.cpu()
            v, i = q.max(0)
            best_obj[cols.cpu()], best_obj_iou[cols.cpu()] = i.cpu(), v.float().cpu()
        matched, best_obj, best_obj_iou = matched.numpy(), best_obj.numpy(), best_obj_iou.numpy()
    return Match(matched, positives, strong, best_iou, best, best_obj, best_obj_iou)

def describe(cfg: AnchorConfig, counts: list[int], index: int) -> tuple[int, float, float]:
    """Global anchor index -> (level, size, aspect ratio), torchvision's order within a cell:
    ratio-major (``generate_anchors``: a = ratio_index * len(sizes) + size_index)."""
    lvl = int(np.searchsorted(np.cumsum(counts), index, side="right"))
    local = index - int(sum(counts[:lvl]))
    sizes, ratios = cfg.sizes[lvl], cfg.aspect_ratios[lvl]
    k = local % (len(sizes) * len(ratios))
    return lvl, float(sizes[k % len(sizes)]), float(ratios[k // len(sizes)])


def sampler_cap(rpn) -> int:
    """At most this many positives in the RPN's minibatch (``BalancedPositiveNegativeSampler``)."""
    s = rpn.fg_bg_sampler
    return int(s.batch_size_per_image * s.positive_fraction)


def expected_sampled(positives: np.ndarray, cap: int) -> np.ndarray:
    """Per object, the expected number of its positive anchors in the minibatch: the sampler draws
    min(P, cap) of the image's P positives uniformly (``torch.randperm``), so each is drawn with
    probability min(1, cap / P)."""
    p = int(np.sum(positives))
    return np.asarray(positives, np.float64) * (min(1.0, cap / p) if p else 0.0)
