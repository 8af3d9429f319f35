"""A suggested anchor configuration: a seeded search that fits on half the images and is judged on
the other half.

``suggest`` keeps the number of anchors per location on every level (the same number of sizes and
of aspect ratios per level, so the trained ``RPNHead``, whose convolutions have one channel per
anchor of a location, still loads) and maximizes the share of ``strong`` objects, then the mean
number of positive anchors, each candidate judged by torchvision's own generator and the RPN's
Matcher (core.analysis.anchor_coverage.Judge). Seeds: the model's configuration and a k-means of
the fitting half's object sizes (log sqrt(w*h)) and aspect ratios (log h/w); then a (1+1)
evolution, as YOLOv5's ``kmean_anchors`` evolves its anchors: each step multiplies some values by
exp(N(0, sigma)), sizes rounded to integers and ratios to two decimals (what is printed is what
was judged), and keeps the candidate when it is better. ``free`` does the same for the nearby
numbers of sizes and ratios per location (one more or one fewer): the RPN head then needs training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.analysis.anchor_config import AnchorConfig
from core.analysis.anchor_coverage import Judge, box_shapes

SIGMA = 0.15  # log-normal step of a mutation
MUTATE_P = 0.5  # chance that a value moves in a step
MIN_SIZE, MAX_RATIO = 2, 8.0


def split(n: int, seed: int, fit_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(fit, held-out) image indices: a seeded permutation, the first ``fit_share`` to fit."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(np.ceil(n * fit_share)) if n > 1 else n
    return np.sort(perm[:k]), np.sort(perm[k:])


@dataclass(frozen=True)
class Found:
    config: AnchorConfig
    fit_key: tuple  # (strong share, mean positives) on the fitting half


def _round(cfg_sizes, cfg_ratios, shared: bool) -> AnchorConfig | None:
    sizes = tuple(tuple(sorted(max(MIN_SIZE, int(round(s))) for s in lvl)) for lvl in cfg_sizes)
    ratios = tuple(tuple(sorted(min(MAX_RATIO, max(1 / MAX_RATIO, round(float(r), 2))) for r in lvl))
                   for lvl in cfg_ratios)
    if shared:
        ratios = (ratios[0],) * len(sizes)
    if any(len(set(lvl)) != len(lvl) for lvl in sizes + ratios):
        return None  # two equal anchors on a level: the same channel twice
    return AnchorConfig(sizes, ratios)


def _kmeans_1d(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 50) -> np.ndarray:
    """k centres of 1-d data (k-means, seeded at quantiles plus jitter), sorted."""
    if len(x) == 0:
        return np.zeros(k)
    c = np.quantile(x, (np.arange(k) + 0.5) / k) + rng.normal(0, 1e-3, k)
    for _ in range(iters):
        lab = np.argmin(np.abs(x[:, None] - c[None]), 1)
        c = np.array([x[lab == j].mean() if np.any(lab == j) else c[j] for j in range(k)])
    return np.sort(c)


def kmeans_seed(structure, shared: bool, wh: np.ndarray, rng) -> AnchorConfig | None:
    """Sizes from k-means of log sqrt(w*h), the smallest to the first level (its finest grid);
    ratios from k-means of log(h/w)."""
    if len(wh) == 0:
        return None
    ks = [k for k, _ in structure]
    size = np.log(np.sqrt(np.maximum(wh[:, 0] * wh[:, 1], 1.0)))
    centres = np.exp(_kmeans_1d(size, sum(ks), rng))
    sizes, at = [], 0
    for k in ks:
        sizes.append(tuple(centres[at:at + k]))
        at += k
    ratio = np.log(np.maximum(wh[:, 1], 1e-3) / np.maximum(wh[:, 0], 1e-3))
    ratios = [tuple(np.exp(_kmeans_1d(ratio, m, rng))) for _, m in structure]
    return _round(sizes, ratios, shared)


def _mutate(cfg: AnchorConfig, rng: np.random.Generator, shared: bool) -> AnchorConfig | None:
    def step(values):
        v = np.asarray(values, np.float64)
        mask = rng.random(v.shape) < MUTATE_P
        return v * np.exp(mask * rng.normal(0, SIGMA, v.shape))

    sizes = [step(lvl) for lvl in cfg.sizes]
    if shared:
        r = step(cfg.aspect_ratios[0])
        ratios = [r] * cfg.levels
    else:
        ratios = [step(lvl) for lvl in cfg.aspect_ratios]
    return _round(sizes, ratios, shared)


def evolve(judge: Judge, seeds, trials: int, rng: np.random.Generator, shared: bool,
           progress: Callable[[int], None] | None = None) -> Found | None:
    """The best of ``seeds``, then ``trials`` (1+1) mutation steps from it; ties keep the earlier
    (None when no seed was usable)."""
    best, best_key = None, None
    seen: dict = {}

    def score(cfg):
        if cfg not in seen:
            seen[cfg] = judge(cfg).key()
        return seen[cfg]

    for cfg in seeds:
        if cfg is not None:
            k = score(cfg)
            if best_key is None or k > best_key:
                best, best_key = cfg, k
    if best is None:
        return None
    for t in range(trials):
        cand = _mutate(best, rng, shared)
        if cand is not None:
            k = score(cand)
            if k > best_key:
                best, best_key = cand, k
        if progress is not None:
            progress(t + 1)
    return Found(best, best_key)


def structure_of(cfg: AnchorConfig) -> tuple:
    return tuple((len(s), len(r)) for s, r in zip(cfg.sizes, cfg.aspect_ratios))


def _reshape(cfg: AnchorConfig, structure) -> AnchorConfig | None:
    """The configuration stretched to another number of sizes and ratios per level (geometric
    spacing over the same span): a seed for the free search."""
    sizes, ratios = [], []
    for (k, m), s, r in zip(structure, cfg.sizes, cfg.aspect_ratios):
        lo, hi = np.log(min(s)), np.log(max(s))
        if k > 1 and hi == lo:
            lo, hi = lo - np.log(1.5) / 2, hi + np.log(1.5) / 2
        sizes.append(tuple(np.exp(np.linspace(lo, hi, k))) if k > 1 else (float(np.exp((lo + hi) / 2)),))
        lo, hi = np.log(min(r)), np.log(max(r))
        if m > 1 and hi == lo:
            lo, hi = lo - np.log(2), hi + np.log(2)
        ratios.append(tuple(np.exp(np.linspace(lo, hi, m))) if m > 1 else (1.0,))
    return _round(sizes, ratios, cfg.shared_ratios())


def suggest(judge: Judge, current: AnchorConfig, seed: int = 0, trials: int = 200, progress=None) -> Found:
    """The best configuration with ``current``'s anchors per location, fitted on ``judge``'s images."""
    rng = np.random.default_rng(seed)
    shared = current.shared_ratios()
    seeds = [current, kmeans_seed(structure_of(current), shared, box_shapes(judge.geometries), rng)]
    return evolve(judge, seeds, trials, rng, shared, progress)


def neighbours(current: AnchorConfig) -> list[tuple]:
    """Structures with one more or one fewer size, or ratio, on every level."""
    st = structure_of(current)
    out = []
    for dk, dm in ((1, 0), (0, 1), (-1, 0), (0, -1)):
        new = tuple((k + dk, m + dm) for k, m in st)
        if all(k >= 1 and m >= 1 for k, m in new):
            out.append(new)
    return out


def free(judge: Judge, current: AnchorConfig, seed: int = 0, trials: int = 100, progress=None,
         tie: float = 0.005) -> tuple[Found, list[Found]]:
    """The free search: each neighbouring structure searched as ``suggest`` does (``trials``
    steps each). -> (the chosen one, all of them). Chosen: the best strong share on the fitting
    half; within ``tie`` of it, the fewest anchors per location."""
    found = []
    for i, st in enumerate(neighbours(current)):
        rng = np.random.default_rng([seed, i + 1])
        shared = current.shared_ratios()
        seeds = [_reshape(current, st), kmeans_seed(st, shared, box_shapes(judge.geometries), rng)]
        f = evolve(judge, seeds, trials, rng, shared, None if progress is None else (lambda t, i=i: progress(i * trials + t)))
        if f is not None:
            found.append(f)
    if not found:
        return None, []
    top = max(f.fit_key[0] for f in found)
    close = [f for f in found if f.fit_key[0] >= top - tie]
    return min(close, key=lambda f: (sum(f.config.per_location()), -f.fit_key[0], -f.fit_key[1])), found
