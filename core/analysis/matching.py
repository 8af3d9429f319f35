"""Matching detections to truth objects: COCO's greedy rule, and TIDE's error type of each detection."""

from __future__ import annotations

import numpy as np

from core.analysis.verdicts import COVER_IOU, TIDE_BG, TIDE_FG


def match(iou: np.ndarray, gt_labels: np.ndarray, det_labels: np.ndarray, det_scores: np.ndarray,
          thresh: float = COVER_IOU) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching: detections by descending score, each to the unmatched object of its
    class with the highest IoU >= ``thresh``; among objects of equal IoU (two identical truth boxes)
    the later one, as pycocotools' ``evaluateImg`` takes it. ``iou`` is [objects, detections].
    Returns (gt_det [N], det_gt [D]), -1 where unmatched."""
    n, d = iou.shape
    gt_det = np.full(n, -1, np.int64)
    det_gt = np.full(d, -1, np.int64)
    if n == 0 or d == 0:
        return gt_det, det_gt
    for j in np.argsort(-np.asarray(det_scores), kind="stable"):
        ok = (gt_labels == det_labels[j]) & (gt_det < 0) & (iou[:, j] >= thresh)
        if ok.any():
            g = n - 1 - int(np.argmax(np.where(ok, iou[:, j], -1.0)[::-1]))  # the last of the best
            gt_det[g] = j
            det_gt[j] = g
    return gt_det, det_gt


def tide_errors(iou: np.ndarray, gt_labels: np.ndarray, det_labels: np.ndarray, det_gt: np.ndarray,
                fg: float = TIDE_FG, bg: float = TIDE_BG) -> list[tuple[str, int | None]]:
    """TIDE's error type of each detection (``tidecv``'s rules and order, box mode): matched = tp;
    else loc (same-class max IoU in [bg, fg]), cls (other-class IoU >= fg), dupe (same-class IoU >=
    fg with a matched object), bkg (max IoU <= bg), else both. Returns (type, object index)."""
    n, d = iou.shape
    out: list[tuple[str, int | None]] = []
    used = np.zeros(n, bool)
    used[det_gt[det_gt >= 0]] = True
    for j in range(d):
        if det_gt[j] >= 0:
            out.append(("tp", int(det_gt[j])))
            continue
        if n == 0:
            out.append(("bkg", None))
            continue
        same = gt_labels == det_labels[j]
        col = iou[:, j]
        cls_iou = np.where(same, col, 0.0)
        g = int(np.argmax(cls_iou))
        if bg <= cls_iou[g] <= fg:
            out.append(("loc", g))
            continue
        other = np.where(~same, col, 0.0)
        g = int(np.argmax(other))
        if other[g] >= fg:
            out.append(("cls", g))
            continue
        dup = np.where(same & used, col, 0.0)
        g = int(np.argmax(dup))
        if dup[g] >= fg:
            out.append(("dupe", g))
            continue
        g = int(np.argmax(col))
        if col[g] <= bg:
            out.append(("bkg", None))
            continue
        out.append(("both", g))
    return out
