"""A paired bootstrap over images for differences of mAP between runs on the same images.

pycocotools' ``COCOeval.evaluate`` runs once per run (per image and class: its matches at every
IoU threshold); each resample draws images with replacement, the same draw for every run (paired),
and pycocotools' own ``accumulate`` computes the precision of that multiset of images (an image
drawn twice counts twice). mAP@0.5, mAP@[.5:.95] and AP@0.5 per class are read from its precision
array as ``COCOeval.summarize`` reads them (area 'all', the most detections). The identity draw (each
image once) gives summary.json's numbers exactly (tests/core/test_compare.py)."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from core.analysis.summary import coco_evaluated

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


class RunEval:
    """One run's COCOeval, evaluated once, re-accumulated on any multiset of its images."""

    def __init__(self, records: list[dict], class_names):
        self.n = len(records)
        self.ev = coco_evaluated(records, class_names, all_areas=False)
        if self.ev is not None:
            self.cats = list(self.ev.params.catIds)
            self.img_ids = list(self.ev.params.imgIds)
            self.eval_imgs = list(self.ev.evalImgs)
            for params in (self.ev.params, self.ev._paramsEval):  # mAP reads the most detections only
                params.maxDets = [params.maxDets[-1]]

    def scores(self, idx) -> tuple[float, float, dict]:
        """(mAP@0.5, mAP@[.5:.95], {category id: AP@0.5}) over the images ``idx`` (positions, repeats
        allowed); NaN where nothing can be scored."""
        if self.ev is None:
            return np.nan, np.nan, {}
        ev, n0 = self.ev, len(self.img_ids)
        idx = np.asarray(idx, np.int64)
        ev.evalImgs = [self.eval_imgs[k * n0 + int(i)] for k in range(len(self.cats)) for i in idx]
        ids = [self.img_ids[int(i)] for i in idx]
        ev.params.imgIds = ids
        ev._paramsEval.imgIds = ids
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
        prec = ev.eval["precision"][:, :, :, 0, -1]  # [IoU thresholds, recall thresholds, categories]
        m = _mean(prec)
        m50 = _mean(prec[0])
        per = {int(c): _mean(prec[0, :, k]) for k, c in enumerate(self.cats)}
        return m50, m, per


def _mean(a: np.ndarray) -> float:
    v = a[a > -1]
    return float(np.mean(v)) if v.size else np.nan


def paired(runs: list[RunEval], resamples: int = RESAMPLES, seed: int = SEED, progress=None) -> list[list[tuple]]:
    """Per resample, each run's ``scores`` on the same draw of images: [resample][run]."""
    n = runs[0].n
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        out.append([r.scores(idx) for r in runs])
        if progress is not None:
            progress()
    return out


def interval(diffs, level: float = LEVEL) -> tuple[float | None, float | None]:
    """The percentile interval of the finite ``diffs``."""
    d = np.asarray([x for x in diffs if x is not None and np.isfinite(x)], np.float64)
    if not d.size:
        return None, None
    lo, hi = np.percentile(d, [50 * (1 - level), 100 - 50 * (1 - level)])
    return round(float(lo), 5), round(float(hi), 5)
