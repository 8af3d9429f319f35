"""``rcnn-lens anchors IMAGES|FOLDER --annotations A -o OUT``: do the model's anchors fit the data,
and which configuration would fit it better.

Per image: the model's own transform (the resized and padded sizes), the feature-map sizes its
backbone produces for that padded size (the backbone runs once per distinct size, on zeros: a
feature map's size depends only on its input's), the objects in the model's frame. Then
core.analysis.anchor_coverage judges the model's configuration (and ``--sizes/--ratios``, a
what-if) and core.analysis.anchor_search fits a suggestion on a seeded half of the images and
judges it on the other half. Writes ``OUT/anchors.json`` and ``OUT/anchors.png``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_coverage import Judge, image_counts, objects, totals
from core.analysis.anchor_match import Geometry, config_of, generator_of, geometry_of, sampler_cap
from core.analysis.anchor_search import free, split, suggest

JSON, CHART = "anchors.json", "anchors.png"


class Shapes:
    """Padded batch size -> the feature maps' sizes, from the model's own backbone (run once per
    size on a zero tensor: a convolutional backbone's output size depends only on its input's)."""

    def __init__(self, module):
        self.module = module
        self._cache: dict = {}

    @torch.inference_mode()
    def __call__(self, batch_size: tuple) -> tuple:
        key = tuple(int(v) for v in batch_size)
        if key not in self._cache:
            p = next(self.module.parameters(), None)
            x = torch.zeros((1, 3, *key), device=p.device if p is not None else "cpu")
            feats = self.module.backbone(x)
            feats = feats.values() if isinstance(feats, dict) else [feats]
            self._cache[key] = tuple((int(f.shape[-2]), int(f.shape[-1])) for f in feats)
        return self._cache[key]


@torch.inference_mode()
def geometry(module, shapes: Shapes, rgb: np.ndarray, truth, name: str) -> Geometry:
    """One image as the RPN sees it (the transform in eval mode, as the trace runs it)."""
    p = next(module.parameters(), None)
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
    images, _ = module.transform([t.to(p.device if p is not None else "cpu")])
    size = tuple(int(v) for v in images.image_sizes[0])
    batch = (int(images.tensors.shape[-2]), int(images.tensors.shape[-1]))
    return geometry_of(name, tuple(int(v) for v in rgb.shape[:2]), size, batch, shapes(batch), truth)


@dataclass
class Fit:
    """What ``fit`` found (also written to anchors.json)."""

    report: dict
    current: object = None  # Coverage of the model's configuration on every image
    suggested_all: object = None  # of the suggestion on every image
    current_held: object = None  # of the model's configuration on the held-out half (None: nothing held out)
    suggested_held: object = None  # of the suggestion on the held-out half


def _judged(cov, held_i) -> dict:
    """A configuration's entry in anchors.json: on every image, and on the held-out ones."""
    s = cov.summary()
    held = cov.subset(held_i).summary() if len(held_i) else None
    return {**cov.config.to_json(), "paste": cov.config.paste(), "per_location": list(cov.config.per_location()),
            "strong_share": s["strong_share"], "mean_positives": s["mean_positives"],
            "held_out": None if held is None else {k: held[k] for k in ("images", "objects", "strong_share", "starved",
                                                                      "rescued", "mean_positives")}}


def fit(loaded, geometries: list, *, config: AnchorConfig | None = None, seed: int = 0, trials: int = 200,
        free_trials: int | None = None, fit_share: float = 0.5, progress=None) -> Fit:
    """Judge the model's configuration (or ``config``, a what-if) on every image, fit a suggestion on
    a seeded half and judge both on the other half; the free search when ``free_trials``."""
    module = loaded.module
    rpn = module.rpn
    gen = generator_of(module, loaded.name)
    model_cfg = config_of(gen)
    levels = len(geometries[0].grids) if geometries else model_cfg.levels
    model_cfg.check(levels, "the model's anchor generator")
    if config is not None:
        config.check(levels, "--sizes/--ratios")
    judged_cfg = config or model_cfg
    cap = sampler_cap(rpn)
    everything = Judge(rpn, geometries)
    judged = everything(judged_cfg, gen if config is None else None)
    fit_i, held_i = split(len(geometries), seed, fit_share)
    fitting = Judge(rpn, [geometries[i] for i in fit_i])
    bar = progress(trials + (4 * free_trials if free_trials else 0)) if progress else None
    found = suggest(fitting, model_cfg, seed, trials, bar)
    current_all = judged if config is None else everything(model_cfg, gen)
    sug_all = everything(found.config)
    cur_held, sug_held = (current_all.subset(held_i), sug_all.subset(held_i)) if len(held_i) else (None, None)
    report = {
        "images": len(geometries), "object_count": sum(len(g) for g in geometries),
        "model": loaded.name, "weights": loaded.weights,
        "matcher": {"fg_iou_thresh": float(rpn.proposal_matcher.high_threshold),
                    "bg_iou_thresh": float(rpn.proposal_matcher.low_threshold),
                    "allow_low_quality_matches": bool(rpn.proposal_matcher.allow_low_quality_matches),
                    "batch_size_per_image": int(rpn.fg_bg_sampler.batch_size_per_image),
                    "positive_fraction": float(rpn.fg_bg_sampler.positive_fraction)},
        "seed": int(seed), "trials": int(trials), "fit_images": [geometries[i].image for i in fit_i],
        "judged": {**judged_cfg.to_json(), "what_if": config is not None, **judged.summary()},
        "objects": objects(judged, cap), "totals": totals(judged),
        "totals_suggested": totals(sug_all),
        "per_image": image_counts(judged),
        "current": _judged(current_all, held_i), "suggested": _judged(sug_all, held_i),
    }
    report["suggested"]["fit"] = {"strong_share": round(found.fit_key[0], 6), "mean_positives": round(found.fit_key[1], 4)}
    out = Fit(report, current=current_all, suggested_all=sug_all, current_held=cur_held, suggested_held=sug_held)
    chosen = None
    if free_trials:
        chosen, tried = free(fitting, model_cfg, seed, free_trials,
                             None if bar is None else (lambda t: bar(trials + t)))
    if chosen is not None:
        f_all = everything(chosen.config)
        report["free"] = {**_judged(f_all, held_i),
                          "note": "another number of anchors per location: the RPN head's convolutions change "
                                  "shape, so the RPN head needs training",
                          "tried": [{**f.config.to_json(), "per_location": list(f.config.per_location()),
                                     "fit_strong_share": round(f.fit_key[0], 6)} for f in tried]}
    return out


def read(loaded, paths, annotations=None, report=None, progress=None) -> tuple[list, list]:
    """(geometries, unreadable lines): each image with its truth (``annotations``, an opened
    core.truth.sources.open_annotations, or beside it), read as ``analyze`` reads it; an image that
    cannot be read, or has no truth, is one line and left out."""
    from core.analysis.analyze import ImageSet

    images = ImageSet(list(paths), annotations, loaded.class_names)
    shapes = Shapes(loaded.module)
    geoms, bad = [], []
    for k in (progress(range(len(images))) if progress else range(len(images))):
        _, rgb, truth, err = images[k]
        if err is not None:
            bad.append(err)
            if report:
                report(err)
            continue
        geoms.append(geometry(loaded.module, shapes, rgb.numpy(), truth, str(images.paths[k])))
    return geoms, bad

def write(out: Path, result: Fit, chart: bool = True) -> None:
    from core.atomic import write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / JSON, json.dumps(result.report, indent=1) + "\n")
    if chart:
        from core.analysis.anchor_chart import draw

        draw(result, out / CHART)


def log(line: str) -> None:
    print(f"rcnn-lens: {line}", file=sys.stderr)
