"""Seeded generator of synthetic shape scenes with ground truth.

Classes are exactly ``circle``, ``rectangle`` and ``triangle``. A scene is 256..640 px a side,
on a flat, gradient, noise, stripe or texture background, with 1..8 filled objects of colours that
stand out from what is under them. Boxes are the tight bounds of the drawn pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CLASSES = ("circle", "rectangle", "triangle")
BACKGROUNDS = ("flat", "gradient", "noise", "stripes", "texture")


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # HxWx3 uint8 RGB
    boxes: np.ndarray  # [N,4] float32 xyxy, pixel edges (x2 = last column + 1)
    labels: np.ndarray  # [N] int64, 1-based index into CLASSES


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def make_scene(rng: np.random.Generator, size: tuple[int, int] | None = None,
               n_objects: int | None = None) -> Scene:
    if size is None:
        if rng.random() < 0.4:
            h = w = int(rng.integers(256, 641))
        else:
            h, w = (int(v) for v in rng.integers(256, 641, size=2))
    else:
        h, w = size
    image = background(rng, h, w)
    n = int(rng.integers(1, 9)) if n_objects is None else n_objects
    boxes: list[list[float]] = []
    labels: list[int] = []
    for _ in range(n):
        for _attempt in range(30):
            label = int(rng.integers(1, len(CLASSES) + 1))
            mask = draw_mask(rng, label, h, w)
            if mask is None:
                continue
            box = mask_box(mask)
            if any(_overlap(box, b) > 0.15 for b in boxes):
                continue
            colour = contrasting_colour(rng, image, mask)
            x1, y1, x2, y2 = (int(v) for v in box)
            x1, y1, x2, y2 = max(x1 - 2, 0), max(y1 - 2, 0), min(x2 + 2, w), min(y2 + 2, h)
            alpha = mask[y1:y2, x1:x2].astype(np.float32)[..., None] / 255.0
            patch = image[y1:y2, x1:x2]
            image[y1:y2, x1:x2] = (patch * (1 - alpha) + colour * alpha).round().astype(np.uint8)
            boxes.append(box)
            labels.append(label)
            break
    if rng.random() < 0.15:
        noise = rng.normal(0, rng.uniform(3, 10), image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.1:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    if rng.random() < 0.1:  # compression artefacts, as in images saved by other tools
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 90))])
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else image
    return Scene(image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


def _overlap(a, b) -> float:
    """Intersection over the smaller box: catches one object hidden inside another."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 0.0


def mask_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask >= 128)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


# ---------------------------------------------------------------- objects

def draw_mask(rng: np.random.Generator, label: int, h: int, w: int) -> np.ndarray | None:
    """An 8-bit coverage mask of one object placed fully inside the image, or None."""
    smax = min(h, w) / 2
    side = float(np.exp(rng.uniform(np.log(24), np.log(smax))))
    name = CLASSES[label - 1]
    if name == "circle":
        pts = None
        bw = bh = side
    elif name == "rectangle":
        ar = float(np.exp(rng.uniform(np.log(0.4), np.log(2.5))))
        bw, bh = (side, side / ar) if ar >= 1 else (side * ar, side)
        if min(bw, bh) < 12:
            return None
        pts = np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], np.float64)
    else:
        pts = _triangle(rng)
        span = (pts.max(0) - pts.min(0)).max()
        pts = (pts - pts.min(0)) * (side / span)
        bw, bh = pts.max(0)
        if min(bw, bh) < 12:
            return None
    if bw > w - 2 or bh > h - 2:
        return None
    x0 = rng.uniform(0, w - bw)
    y0 = rng.uniform(0, h - bh)
    mask = np.zeros((h, w), np.uint8)
    aa = cv2.LINE_AA if rng.random() < 0.7 else cv2.LINE_8
    shift = 4
    if name == "circle":
        c = (int(round((x0 + bw / 2) * 16)), int(round((y0 + bh / 2) * 16)))
        cv2.circle(mask, c, int(round(side / 2 * 16)), 255, -1, aa, shift)
    else:
        p = np.round((pts + [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(mask, [p], 255, aa, shift)
    if not (mask >= 128).any():
        return None
    return mask


def _triangle(rng: np.random.Generator) -> np.ndarray:
    kind = rng.random()
    if kind < 0.35:  # equilateral
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
        pts = np.stack([np.cos(angles), np.sin(angles)], 1)
    elif kind < 0.6:  # isosceles / right
        base = rng.uniform(0.6, 1.6)
        height = rng.uniform(0.6, 1.6)
        apex = 0.0 if rng.random() < 0.3 else base / 2
        pts = np.array([[0, 0], [base, 0], [apex, height]])
    else:  # general, with no sliver angle
        while True:
            pts = rng.uniform(0, 1, (3, 2))
            if _min_angle(pts) > math.radians(15):
                break
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return pts @ rot.T


def _min_angle(p: np.ndarray) -> float:
    out = []
    for i in range(3):
        a, b, c = p[i], p[(i + 1) % 3], p[(i + 2) % 3]
        u, v = b - a, c - a
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if nu < 1e-6 or nv < 1e-6:
            return 0.0
        out.append(math.acos(np.clip(u @ v / (nu * nv), -1, 1)))
    return min(out)


def contrasting_colour(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A colour at least a clear distance from the mean and most pixels under the mask."""
    under = image[mask >= 128].astype(np.float32)
    mean = under.mean(0)
    spread = under.std(0).mean()
    best, best_d = None, -1.0
    for _ in range(40):
        c = rng.integers(0, 256, 3).astype(np.float32)
        d = float(np.linalg.norm(c - mean)) - spread
        if d > 110:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


# ---------------------------------------------------------------- backgrounds

def _rand_colour(rng) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int, kind: str | None = None) -> np.ndarray:
    kind = kind or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if kind == "flat":
        img = np.broadcast_to(_rand_colour(rng), (h, w, 3)).copy()
    elif kind == "gradient":
        t = _ramp(rng, h, w)
        a, b = _rand_colour(rng), _rand_colour(rng)
        img = a * (1 - t[..., None]) + b * t[..., None]
    elif kind == "noise":
        img = _rand_colour(rng) + rng.normal(0, rng.uniform(8, 45), (h, w, 3))
    elif kind == "stripes":
        period = rng.uniform(6, 48)
        t = _ramp(rng, h, w, scale=max(h, w) / period)
        if rng.random() < 0.5:
            s = (np.floor(t * 2) % 2).astype(np.float32)
        else:
            s = 0.5 + 0.5 * np.sin(t * 2 * np.pi)
        a, b = _rand_colour(rng), _rand_colour(rng)
        img = a * (1 - s[..., None]) + b * s[..., None]
    else:
        img = _texture(rng, h, w)
    return np.clip(img, 0, 255).astype(np.uint8)


def _ramp(rng, h, w, scale: float = 1.0) -> np.ndarray:
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = xx * np.cos(theta) + yy * np.sin(theta)
    proj = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
    return proj * scale


def _texture(rng, h, w) -> np.ndarray:
    a, b = _rand_colour(rng), _rand_colour(rng)
    kind = int(rng.integers(4))
    if kind == 0:  # checkerboard
        cell = int(rng.integers(6, 40))
        yy, xx = np.mgrid[0:h, 0:w]
        t = (((yy // cell) + (xx // cell)) % 2).astype(np.float32)
    elif kind == 1:  # smooth clouds
        small = rng.random((max(2, h // 16), max(2, w // 16))).astype(np.float32)
        t = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        t = cv2.GaussianBlur(t, (0, 0), rng.uniform(2, 10))
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    elif kind == 2:  # random thin lines
        t = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(10, 60))):
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(t, p1, p2, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
    else:  # grain: blurred fine noise
        t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), rng.uniform(0.7, 2.5))
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = a * (1 - t[..., None]) + b * t[..., None]
    return img + rng.normal(0, 4, (h, w, 3))
