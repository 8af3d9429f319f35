"""Frozen result types of a trace. Arrays are numpy; boxes are xyxy.

Frames: ``model`` = the resized image (proposals, RoIs, refined boxes; anchors live in the padded
batch frame, which shares the model frame's origin), ``image`` = original pixels. Every box set
carries both (``*_image`` is the original-pixel copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STAGES = ("input", "features", "anchors", "objectness", "proposals", "rois", "detections")
# drawn with ground truth (core.truth, core.training.targets); not among the seven keyed stages
TRAINING_STAGES = ("truth", "anchor_targets", "roi_targets", "loss")
# stages only models with those heads have (Mask R-CNN, Keypoint R-CNN); not among the keys 1-7 either
EXTRA_STAGES = ("masks", "keypoints")

# status codes of a box before NMS
KEPT, SUPPRESSED, OVER_TOP_N, LOW_SCORE, SMALL = 0, 1, 2, 3, 4
STATUS_NAMES = ("kept", "suppressed", "over_top_n", "low_score", "small")
# what the app and the sentences say for each status (the code names stay the keys in files)
STATUS_WORDS = {"kept": "kept", "suppressed": "suppressed by NMS", "over_top_n": "past the top-n",
                "low_score": "under the score threshold", "small": "too small"}


@dataclass(frozen=True, eq=False)
class ImageMeta:
    name: str
    original_size: tuple[int, int]  # H, W
    resized_size: tuple[int, int]  # h, w the network sees, before padding
    batch_size: tuple[int, int]  # padded batch H, W
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    input: np.ndarray  # [3, H, W] float32, normalized, padded: the tensor the backbone sees

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): model frame / original frame."""
        return (self.resized_size[0] / self.original_size[0], self.resized_size[1] / self.original_size[1])

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Model-frame xyxy -> original pixels (torchvision's resize_boxes ratios)."""
        sy, sx = self.scale
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        return b / np.array([sx, sy, sx, sy], np.float32)


@dataclass(frozen=True, eq=False)
class FeatureLevel:
    name: str  # "0", "1", ..., "pool" (FPN) or "body.0", ... (the body under an FPN)
    kind: str  # "fpn", "body" or "backbone"
    data: np.ndarray  # [C, H, W], right/bottom padding included
    stride: tuple[int, int]  # (sy, sx) batch pixels per cell, as torchvision's AnchorGenerator computes it
    valid: tuple[int, int]  # cells (rows, cols) whose centre lies on the resized image; the rest is padding

    def cell_rect(self, meta: ImageMeta) -> tuple[float, float, float, float]:
        """Original-pixel rectangle (x0, y0, x1, y1) covered by the valid cells, each cell (r, c)
        centred on (c*sx, r*sy) in the model frame, like the anchors of that cell."""
        return grid_rect(self.valid, self.stride, meta)


def grid_rect(cells: tuple[int, int], stride, meta: ImageMeta) -> tuple[float, float, float, float]:
    sy, sx = meta.scale
    h, w = cells
    return (-stride[1] / 2 / sx, -stride[0] / 2 / sy, (w - 0.5) * stride[1] / sx, (h - 0.5) * stride[0] / sy)


@dataclass(frozen=True, eq=False)
class AnchorLevel:
    name: str
    grid: tuple[int, int]  # H, W cells
    stride: tuple[int, int]  # (sy, sx) in batch pixels, as AnchorGenerator computes it
    sizes: tuple[float, ...]
    aspect_ratios: tuple[float, ...]
    cell_anchors: np.ndarray  # [A, 4] centred on (0, 0); a = ratio_index * len(sizes) + size_index
    offset: int  # index of this level's first anchor in the concatenated anchor list

    @property
    def per_cell(self) -> int:
        return int(self.cell_anchors.shape[0])

    @property
    def count(self) -> int:
        return self.grid[0] * self.grid[1] * self.per_cell

    def anchors(self) -> np.ndarray:
        """[H*W*A, 4] in the batch frame, in torchvision's order (row, col, anchor)."""
        sy, sx = self.stride
        ys = np.arange(self.grid[0], dtype=np.float32) * sy
        xs = np.arange(self.grid[1], dtype=np.float32) * sx
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        shifts = np.stack([xx, yy, xx, yy], -1).reshape(-1, 1, 4)
        return (shifts + self.cell_anchors[None]).reshape(-1, 4)

    def valid(self, meta: ImageMeta) -> tuple[int, int]:
        """Cells (rows, cols) whose centre lies on the resized image."""
        rh, rw = meta.resized_size
        return (min(self.grid[0], -(-rh // self.stride[0])), min(self.grid[1], -(-rw // self.stride[1])))

    def unravel(self, local_index) -> tuple:
        """Index within the level -> (row, col, anchor)."""
        i = np.asarray(local_index)
        a = self.per_cell
        return i // (self.grid[1] * a), (i // a) % self.grid[1], i % a

    def describe_anchor(self, a: int) -> tuple[float, float]:
        """(size, aspect ratio) of anchor a of a cell."""
        return self.sizes[a % len(self.sizes)], self.aspect_ratios[a // len(self.sizes)]


def anchor_boxes(levels, index) -> np.ndarray:
    """Global anchor indices (torchvision's concatenated order) of the AnchorLevels ``levels`` (a
    trace's or a training step's ``anchors``) -> [K, 4] boxes in that model frame."""
    idx = np.asarray(index, np.int64).reshape(-1)
    out = np.zeros((len(idx), 4), np.float32)
    offsets = np.array([a.offset for a in levels], np.int64)
    lvl = np.searchsorted(offsets, idx, side="right") - 1
    for i in np.unique(lvl):
        a = levels[int(i)]
        sel = lvl == i
        row, col, k = a.unravel(idx[sel] - a.offset)
        shift = np.stack([col * a.stride[1], row * a.stride[0], col * a.stride[1], row * a.stride[0]], 1)
        out[sel] = shift.astype(np.float32) + a.cell_anchors[k]
    return out


@dataclass(frozen=True, eq=False)
class RPNLevel:
    name: str
    objectness: np.ndarray  # [A, H, W] logits
    deltas: np.ndarray  # [A*4, H, W]


class Lazy:
    """A value computed once, on first ``get()``."""

    def __init__(self, fn):
        self._fn = fn
        self._value = None

    def get(self):
        if self._fn is not None:
            self._value = self._fn()
            self._fn = None
        return self._value


@dataclass(frozen=True, eq=False)
class BoxSet:
    """Boxes before NMS with their fate: ``status`` (KEPT...SMALL), and for SUPPRESSED ones the
    index (into this set) of the kept box that suppressed them and the IoU; ``keep`` lists the
    kept ones in output order (descending score)."""

    boxes: np.ndarray  # [N, 4] model frame
    boxes_image: np.ndarray  # [N, 4] original pixels
    scores: np.ndarray  # [N]
    status: np.ndarray  # [N] int8
    keep: np.ndarray  # [K] indices into this set, output order
    _suppression: Lazy = field(repr=False)  # -> (suppressed_by [N] int64, suppress_iou [N] float32)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def suppressed_by(self) -> np.ndarray:
        """[N] index (into this set) of the kept box that suppressed each box; -1 if none.
        Computed on first use (an IoU per dropped/kept pair of a group)."""
        return self._suppression.get()[0]

    @property
    def suppress_iou(self) -> np.ndarray:
        """[N] IoU with the box that suppressed it; 0 if not suppressed."""
        return self._suppression.get()[1]


@dataclass(frozen=True, eq=False)
class Proposals(BoxSet):
    """RPN proposals: the per-level top-n before NMS (``level``, ``anchor`` global index,
    ``logits``). ``keep`` = the proposals after NMS, exactly what the box head sees."""

    level: np.ndarray = field(default=None)  # [N] level index
    anchor: np.ndarray = field(default=None)  # [N] index into the concatenated anchors
    logits: np.ndarray = field(default=None)  # [N]


@dataclass(frozen=True, eq=False)
class Detections(BoxSet):
    """Class-specific boxes over the score threshold, before NMS (``label``, ``proposal`` = row of
    the RoI list). ``keep`` = final detections; ``final_boxes_image`` is what torchvision returns."""

    label: np.ndarray = field(default=None)
    proposal: np.ndarray = field(default=None)
    final_boxes_image: np.ndarray = field(default=None)


@dataclass(frozen=True, eq=False)
class BoxHead:
    rois: np.ndarray  # [K, 4] model frame: the proposals RoIAlign pooled (= proposals.keep order)
    rois_image: np.ndarray
    roi_level: np.ndarray  # [K] index into pooled levels, as MultiScaleRoIAlign's LevelMapper chose
    pooled_levels: tuple[str, ...]
    output_size: tuple[int, int]
    sampling_ratio: int
    pooled: np.ndarray  # [K, C, h, w] RoIAlign output
    features: np.ndarray  # [K, R] box head output
    class_logits: np.ndarray  # [K, classes]
    probs: np.ndarray  # [K, classes] softmax
    box_regression: np.ndarray  # [K, 4*classes]
    refined: np.ndarray  # [K, classes, 4] decoded and clipped, model frame
    scales: tuple = ()  # per pooled level, the spatial_scale MultiScaleRoIAlign's roi_align used


@dataclass(frozen=True, eq=False)
class MaskHead:
    """Mask R-CNN's mask branch for the final detections, as RoIHeads.forward (eval) runs it:
    ``mask_roi_pool`` on the detection boxes (model frame) -> ``mask_head`` -> ``mask_predictor``
    logits per class -> ``maskrcnn_inference`` (sigmoid of the detection's class) ->
    ``transform.postprocess`` (``paste_masks_in_image``) into original pixels.

    The pasted masks are stored cropped to where they are non-zero (lossless: torchvision's pasted
    mask is zero elsewhere): ``crop(j)`` / ``full(j)``."""

    rois: np.ndarray  # [K, 4] model frame: the final detection boxes the mask RoIAlign pooled
    rois_image: np.ndarray  # [K, 4] original pixels (the boxes torchvision returns)
    roi_level: np.ndarray  # [K] index into pooled_levels
    pooled_levels: tuple[str, ...]
    output_size: tuple[int, int]  # (14, 14) for torchvision's Mask R-CNN
    sampling_ratio: int
    pooled: np.ndarray  # [K, C, 14, 14] mask RoIAlign output
    logits: np.ndarray  # [K, classes, 28, 28] mask_predictor output, every class
    labels: np.ndarray  # [K] the class whose mask is used
    probs: np.ndarray  # [K, 28, 28] sigmoid of the label's logits (maskrcnn_inference)
    pasted_boxes: np.ndarray  # [K, 4] int64 x0, y0, x1, y1 (exclusive) of each pasted mask's non-zero area
    pasted: np.ndarray  # float32, the crops concatenated (row-major)
    pasted_offsets: np.ndarray  # [K + 1] int64 start of crop j in ``pasted``
    area: np.ndarray  # [K] int64 original pixels where the pasted mask > 0.5
    image_size: tuple[int, int]  # H, W of the original image
    scales: tuple = ()  # per pooled level, the spatial_scale the mask RoIAlign used (MultiScaleRoIAlign's)

    def __len__(self) -> int:
        return int(self.rois.shape[0])

    def crop(self, j: int) -> np.ndarray:
        """[h, w] float32 pasted mask of detection j over ``pasted_boxes[j]``."""
        x0, y0, x1, y1 = (int(v) for v in self.pasted_boxes[j])
        a, b = int(self.pasted_offsets[j]), int(self.pasted_offsets[j + 1])
        return self.pasted[a:b].reshape(max(y1 - y0, 0), max(x1 - x0, 0))

    def full(self, j: int) -> np.ndarray:
        """[H, W] float32: detection j's mask as torchvision's ``model(images)`` returns it."""
        out = np.zeros(self.image_size, np.float32)
        x0, y0, x1, y1 = (int(v) for v in self.pasted_boxes[j])
        out[y0:y1, x0:x1] = self.crop(j)
        return out


@dataclass(frozen=True, eq=False)
class KeypointHead:
    """Keypoint R-CNN's keypoint branch for the final detections: ``keypoint_roi_pool`` ->
    ``keypoint_head`` -> ``keypoint_predictor`` heatmaps -> ``keypointrcnn_inference`` (argmax of
    each heatmap upsampled over its box) -> ``transform.postprocess`` (``resize_keypoints``)."""

    rois: np.ndarray  # [K, 4] model frame
    rois_image: np.ndarray  # [K, 4] original pixels
    roi_level: np.ndarray
    pooled_levels: tuple[str, ...]
    output_size: tuple[int, int]  # (14, 14)
    sampling_ratio: int
    pooled: np.ndarray  # [K, C, 14, 14] keypoint RoIAlign output
    heatmaps: np.ndarray  # [K, N, 56, 56] keypoint_predictor logits, over each box
    keypoints: np.ndarray  # [K, N, 3] model frame (x, y, visibility), keypointrcnn_inference
    keypoints_image: np.ndarray  # [K, N, 3] original pixels, as torchvision returns them
    scores: np.ndarray  # [K, N] heatmap logit at each keypoint (torchvision's keypoints_scores)
    names: tuple[str, ...]  # N keypoint names
    skeleton: tuple[tuple[int, int], ...] = ()  # pairs of keypoint indices to connect (COCO person)
    scales: tuple = ()  # per pooled level, the spatial_scale the keypoint RoIAlign used

    def __len__(self) -> int:
        return int(self.rois.shape[0])


@dataclass(frozen=True)
class ModelCheck:
    """For a model that overrides a method the runner re-enacts (core.models.support): whether this trace
    was checked against ``model(images)`` and whether it was equal."""

    checked: bool
    equal: bool | None  # None when not checked
    overrides: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, eq=False)
class Trace:
    model: str
    weights: str
    class_names: tuple[str, ...]
    meta: ImageMeta
    image: np.ndarray  # original HxWx3 uint8 RGB
    features: dict  # name -> FeatureLevel (FPN/backbone levels first, then body levels)
    anchors: tuple  # AnchorLevel per RPN level
    rpn: tuple  # RPNLevel per RPN level
    proposals: Proposals
    box_head: BoxHead
    detections: Detections
    params: dict  # the thresholds this trace ran with (torchvision FasterRCNN keywords)
    timings_ms: dict
    _state: object = field(default=None, repr=False)  # torch tensors kept for retrace
    # optional stages; None where the model or the input has none
    masks: object = None  # Mask R-CNN's mask head (RoIAlign, logits, pasted masks)
    keypoints: object = None  # Keypoint R-CNN's keypoint head (RoIAlign, heatmaps, keypoints)
    truth: object = None  # core.truth.types.Truth of this image
    training: object = None  # core.training.targets: anchor/RoI targets and losses for the truth
    diagnosis: object = None  # core.analysis.verdicts.Diagnosis: each truth object's verdict (core.analysis.diagnose)
    check: object = None  # ModelCheck for a model core.models.support flagged; None for torchvision's own modules
    anchor_whatif: object = None  # core.analysis.anchor_types.AnchorWhatIf: a hypothetical anchor generator (the app's)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.anchors)

    def class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class {label}"

    def final(self) -> list[dict]:
        """The final detections in original pixels, as torchvision returns them."""
        d = self.detections
        out = []
        for j, i in enumerate(d.keep):
            lab = int(d.label[i])
            out.append({"box": [float(v) for v in d.final_boxes_image[j]], "label": lab,
                        "name": self.class_name(lab), "score": float(d.scores[i]),
                        "proposal": int(d.proposal[i])})
            if self.masks is not None:
                out[-1]["mask_area"] = int(self.masks.area[j])
            if self.keypoints is not None:
                out[-1]["keypoints"] = [[float(v) for v in p] for p in self.keypoints.keypoints_image[j]]
                out[-1]["keypoints_scores"] = [float(v) for v in self.keypoints.scores[j]]
        return out

    def lineage(self, detection: int) -> dict:
        """Final detection j -> its proposal, anchor (level, row, col, anchor, size, ratio) and
        objectness, its class scores, and what it suppressed."""
        d, p = self.detections, self.proposals
        i = int(d.keep[detection])
        roi = int(d.proposal[i])
        pi = int(p.keep[roi])
        lvl = int(p.level[pi])
        al = self.anchors[lvl]
        row, col, a = (int(v) for v in al.unravel(int(p.anchor[pi]) - al.offset))
        size, ratio = al.describe_anchor(a)
        return {
            "detection": detection, "candidate": i, "roi": roi, "proposal": pi,
            "proposal_score": float(p.scores[pi]), "level": al.name, "cell": (row, col), "anchor": a,
            "anchor_size": size, "aspect_ratio": ratio, "anchor_index": int(p.anchor[pi]),
            "objectness_logit": float(p.logits[pi]),
            "class_probs": self.box_head.probs[roi].tolist(),
            "suppressed": [int(k) for k in np.nonzero(d.suppressed_by == i)[0]],
        }
