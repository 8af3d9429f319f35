"""Anchor coverage over a set of images for one configuration: each object's match (strong /
rescued / starved, core.analysis.anchor_match), its positives and the expected number of them in
the RPN's minibatch, and totals by object size (sqrt(w*h) in the model's frame) and by aspect
ratio (h / w, torchvision's convention) -- with what two peer tools would say on the same boxes:
YOLOv5's best possible recall (``check_anchors``: a box is covered when some anchor's width and
height are both within a factor ``anchor_t`` = 4 of its own; position, stride and the Matcher
ignored) and MMDetection's mean best IoU (``optimize_anchors.py``: box and anchors centred at
zero)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_match import (
    MATCHES,
    Geometry,
    Match,
    anchors_for,
    describe,
    expected_sampled,
    generator,
    level_counts,
    match,
)

SIZE_EDGES = (0, 16, 32, 64, 128, 256, 512, float("inf"))  # sqrt(w*h), model frame
RATIO_EDGES = (0, 1 / 3, 2 / 3, 3 / 2, 3, float("inf"))  # h / w
ANCHOR_T = 4.0  # YOLOv5's hyp['anchor_t']


@dataclass(frozen=True, eq=False)
class Coverage:
    """One configuration judged on a list of images."""

    config: AnchorConfig
    geometries: tuple  # Geometry per image
    matches: tuple  # Match per image
    counts: tuple  # per image: anchors per level

    @property
    def outcomes(self) -> np.ndarray:
        return np.concatenate([m.outcome() for m in self.matches]) if self.matches else np.zeros(0, np.int64)

    @property
    def positives(self) -> np.ndarray:
        return np.concatenate([m.positives for m in self.matches]) if self.matches else np.zeros(0, np.int64)

    def summary(self) -> dict:
        o, p = self.outcomes, self.positives
        n = len(o)
        return {"objects": n, "images": len(self.matches),
                **{m: int((o == i).sum()) for i, m in enumerate(MATCHES)},
                "strong_share": round(float((o == 0).mean()), 6) if n else None,
                "mean_positives": round(float(p.mean()), 4) if n else None}

    def subset(self, rows) -> Coverage:
        """The same configuration judged on these images only (a match is per image)."""
        return Coverage(self.config, *(tuple(v[i] for i in rows) for v in (self.geometries, self.matches, self.counts)))

    def key(self) -> tuple:
        """What the search maximizes: the share of strong objects, then the mean positives."""
        o, p = self.outcomes, self.positives
        return (float((o == 0).mean()), float(p.mean())) if len(o) else (0.0, 0.0)


class Judge:
    """Judges configurations on fixed images with the model's RPN (its Matcher and sampler),
    reusing each generator's anchors across images of the same sizes."""

    def __init__(self, rpn, geometries):
        self.rpn = rpn
        self.geometries = tuple(geometries)

    def __call__(self, cfg: AnchorConfig, gen=None) -> Coverage:
        gen = gen if gen is not None else generator(cfg)
        cache: dict = {}
        matches, counts = [], []
        for g in self.geometries:
            key = (tuple(g.batch_size), tuple(g.grids))
            if key not in cache:
                cache[key] = anchors_for(gen, g)
            matches.append(match(self.rpn, g.boxes, cache[key], per_anchor=False))
            counts.append(level_counts(gen, g))
        return Coverage(cfg, self.geometries, tuple(matches), tuple(counts))


def objects(cov: Coverage, cap: int) -> list[dict]:
    """``anchors.json``'s ``objects``: one per object, in image order."""
    out = []
    for g, m, counts in zip(cov.geometries, cov.matches, cov.counts):
        exp = expected_sampled(m.positives, cap)
        outcome = m.outcome()
        for j in range(len(g)):
            lvl, size, ratio = describe(cov.config, counts, int(m.best[j])) if m.best[j] >= 0 else (None, None, None)
            out.append({"image": g.image, "truth": int(g.truth[j]), "name": g.names[j], "match": MATCHES[outcome[j]],
                        "positives": int(m.positives[j]), "best_iou": round(float(m.best_iou[j]), 4),
                        "best_level": lvl, "best_size": size, "best_ratio": ratio,
                        "expected_sampled": round(float(exp[j]), 4)})
    return out


def box_shapes(geometries) -> np.ndarray:
    """[N, 2] (w, h) of every object, model frame."""
    b = np.concatenate([g.boxes for g in geometries]) if geometries else np.zeros((0, 4), np.float32)
    return np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1).astype(np.float64)


def anchor_shapes(cfg: AnchorConfig) -> np.ndarray:
    """[K, 2] (w, h) of every distinct anchor of the configuration (torchvision's rounded cell anchors)."""
    cells = generator(cfg).cell_anchors
    wh = torch.cat([c[:, 2:] - c[:, :2] for c in cells]).double().numpy()
    return np.unique(wh, axis=0)


def yolov5_bpr(wh: np.ndarray, anchors_wh: np.ndarray, thr: float = ANCHOR_T) -> np.ndarray:
    """[N] bool: YOLOv5's ``check_anchors`` metric per box: r = wh / anchor, x = min(r, 1/r) worst
    of w and h, covered if the best anchor's x > 1 / thr. BPR is its mean."""
    wh_t, k = torch.as_tensor(wh, dtype=torch.float32), torch.as_tensor(anchors_wh, dtype=torch.float32)
    r = wh_t[:, None] / k[None]
    x = torch.min(r, 1 / r).min(2)[0]
    best = x.max(1)[0]
    return (best > 1 / thr).numpy()


def centred_best_iou(wh: np.ndarray, anchors_wh: np.ndarray) -> np.ndarray:
    """[N] MMDetection's ``optimize_anchors`` view: the best IoU of each box with the anchors, all
    centred at (0, 0) (``bbox_overlaps`` of cxcywh boxes at the origin)."""
    def xyxy(a):
        a = torch.as_tensor(a, dtype=torch.float32)
        return torch.cat([-a / 2, a / 2], 1)

    if len(wh) == 0:
        return np.zeros(0, np.float32)
    return box_iou(xyxy(wh), xyxy(anchors_wh)).max(1)[0].numpy()


def _bins(values: np.ndarray, edges) -> np.ndarray:
    return np.clip(np.searchsorted(np.asarray(edges[1:-1]), values, side="right"), 0, len(edges) - 2)


def _label(lo, hi, fmt) -> str:
    if hi == float("inf"):
        return f">= {fmt(lo)}"
    return f"< {fmt(hi)}" if lo == 0 else f"{fmt(lo)}-{fmt(hi)}"


def totals(cov: Coverage) -> dict:
    """By object size and by aspect ratio: objects, strong / rescued / starved, the strong share,
    the mean positives, and YOLOv5's BPR and MMDetection's mean best IoU on the same boxes."""
    wh = box_shapes(cov.geometries)
    o, p = cov.outcomes, cov.positives
    awh = anchor_shapes(cov.config)
    bpr = yolov5_bpr(wh, awh) if len(wh) else np.zeros(0, bool)
    miou = centred_best_iou(wh, awh)
    size = np.sqrt(np.maximum(wh[:, 0] * wh[:, 1], 0))
    ratio = wh[:, 1] / np.maximum(wh[:, 0], 1e-9)

    def rows(values, edges, fmt):
        b = _bins(values, edges) if len(values) else np.zeros(0, np.int64)
        out = []
        for i in range(len(edges) - 1):
            sel = b == i
            out.append({"bin": _label(edges[i], edges[i + 1], fmt), "low": edges[i],
                        "high": None if edges[i + 1] == float("inf") else edges[i + 1], **_row(sel, o, p, bpr, miou)})
        return out

    return {"all": _row(np.ones(len(o), bool), o, p, bpr, miou),
            "by_size": rows(size, SIZE_EDGES, lambda v: f"{v:g}"),
            "by_ratio": rows(ratio, RATIO_EDGES, lambda v: f"{v:.2g}")}


def _row(sel, o, p, bpr, miou) -> dict:
    n = int(sel.sum())
    row = {"objects": n, **{m: int(((o == i) & sel).sum()) for i, m in enumerate(MATCHES)}}
    row.update({"strong_share": round(float((o[sel] == 0).mean()), 4) if n else None,
                "mean_positives": round(float(p[sel].mean()), 3) if n else None,
                "yolov5_bpr": round(float(bpr[sel].mean()), 4) if n else None,
                "mean_best_iou": round(float(miou[sel].mean()), 4) if n else None})
    return row


def image_counts(cov: Coverage) -> dict:
    """image -> {strong, rescued, starved}: what the app's what-if shows for that image."""
    return {g.image: m.counts() for g, m in zip(cov.geometries, cov.matches)}


__all__ = ["Coverage", "Judge", "objects", "totals", "image_counts", "yolov5_bpr", "centred_best_iou",
           "anchor_shapes", "box_shapes", "Geometry", "Match"]
