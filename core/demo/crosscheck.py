"""Cross-check the demo detector on scenes from an independent generator (PIL, no antialiasing,
its own backgrounds, colour, placement and triangle rules): an estimate of how it does on shapes
drawn by other code.

    python -m core.demo.crosscheck [--images 150]
"""

from __future__ import annotations

import argparse
import math
import random

import numpy as np
from PIL import Image, ImageDraw


def _colour(rnd: random.Random) -> np.ndarray:
    return np.array([rnd.randint(0, 255) for _ in range(3)], float)


def background(rnd: random.Random, w: int, h: int) -> Image.Image:
    kind = rnd.choice(["flat", "grad", "noise", "stripes", "texture"])
    c1, c2 = _colour(rnd), _colour(rnd)
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "flat":
        a = np.zeros((h, w))
    elif kind == "grad":
        a = xx * rnd.uniform(-1, 1) + yy * rnd.uniform(-1, 1)
        a = (a - a.min()) / max(np.ptp(a), 1)
    elif kind == "noise":
        a = np.clip(np.random.default_rng(rnd.randint(0, 9999)).normal(0.5, 0.2, (h, w)), 0, 1)
    elif kind == "stripes":
        period = rnd.randint(8, 40)
        a = ((xx + yy * rnd.choice([0, 1])) // period % 2).astype(float)
    else:
        small = np.random.default_rng(rnd.randint(0, 9999)).random((h // 8 + 1, w // 8 + 1))
        a = np.array(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)) / 255.0
    img = c1 * (1 - a[..., None]) + c2 * a[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _shape(rnd: random.Random, w: int, h: int):
    s = rnd.uniform(24, min(w, h) / 2)
    label = rnd.randint(1, 3)
    cx, cy = rnd.uniform(s / 2 + 1, w - s / 2 - 1), rnd.uniform(s / 2 + 1, h - s / 2 - 1)
    pts = None
    if label == 1:
        box = [cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2]
    elif label == 2:
        ar = math.exp(rnd.uniform(math.log(0.4), math.log(2.5)))
        bw, bh = (s, s / ar) if ar > 1 else (s * ar, s)
        box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
    else:
        t, r = rnd.uniform(0, 2 * math.pi), s / 2
        pts = [(cx + r * math.cos(t + k * 2 * math.pi / 3 + rnd.uniform(-0.3, 0.3)),
                cy + r * math.sin(t + k * 2 * math.pi / 3 + rnd.uniform(-0.3, 0.3))) for k in range(3)]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        box = [min(xs), min(ys), max(xs), max(ys)]
    return label, box, pts


def _overlap(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def scene(rnd: random.Random):
    w, h = rnd.randint(256, 640), rnd.randint(256, 640)
    im = background(rnd, w, h)
    draw = ImageDraw.Draw(im)
    arr = np.asarray(im).astype(float)
    boxes, labels = [], []
    for _ in range(rnd.randint(1, 8)):
        for _try in range(50):
            label, box, pts = _shape(rnd, w, h)
            if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h or any(_overlap(box, b) > 0.1 for b in boxes):
                continue
            x0, y0, x1, y1 = (int(v) for v in box)
            mean = arr[max(y0, 0):y1, max(x0, 0):x1].reshape(-1, 3).mean(0)
            col = _colour(rnd)
            while np.linalg.norm(col - mean) <= 100:
                col = _colour(rnd)
            fill = tuple(int(c) for c in col)
            if label == 1:
                draw.ellipse(box, fill=fill)
            elif label == 2:
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon(pts, fill=fill)
            boxes.append(box)
            labels.append(label)
            break
    return np.asarray(im.convert("RGB")), np.array(boxes, np.float32).reshape(-1, 4), np.array(labels)


def main(argv=None) -> int:
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    from core.demo.shapes import CLASSES
    from core.models.load import load_model

    ap = argparse.ArgumentParser(prog="python -m core.demo.crosscheck", description=__doc__)
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--weights", default="demo")
    args = ap.parse_args(argv)
    rnd = random.Random(99)
    model = load_model("demo", weights=args.weights, box_score_thresh=0.01)
    metric = MeanAveragePrecision(iou_thresholds=[0.5], class_metrics=True)
    torch.set_num_threads(2)
    with torch.inference_mode():
        for _ in range(args.images):
            img, boxes, labels = scene(rnd)
            out = model.module([torch.from_numpy(img).permute(2, 0, 1).float() / 255])[0]
            metric.update([{k: out[k] for k in ("boxes", "scores", "labels")}],
                          [{"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)}])
    r = metric.compute()
    print(f"independent (PIL-drawn) scenes: mAP@0.5 = {float(r['map_50']):.3f} on {args.images} images")
    for c, v in zip(r["classes"], r["map_per_class"]):
        print(f"  {CLASSES[int(c) - 1]:<10} {float(v):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
