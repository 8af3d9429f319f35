"""Evaluate the demo detector on a held-out generated split: mAP@0.5, overall and per class,
computed by torchmetrics (pycocotools backend).

    python -m core.demo.evaluate [--weights assets/demo_shapes.pt] [--images 300]

The held-out split uses a seed the training never sees (training uses seed 0 and its indices).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from tqdm import tqdm

from core.demo.shapes import CLASSES, make_scene, scene_rng

HELD_OUT_SEED = 2_000_003


def evaluate(weights: str = "demo", images: int = 300, seed: int = HELD_OUT_SEED, threads: int = 2,
             progress: bool = True) -> dict:
    from torchmetrics.detection import MeanAveragePrecision

    from core.demo.train import to_tensor
    from core.models.load import load_model
    from core.threads import torch_threads

    with torch_threads(threads):
        model = load_model("demo", weights=weights, box_score_thresh=0.01)
        metric = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True,
                                      backend="pycocotools")
        with torch.inference_mode():
            for i in tqdm(range(images), desc="evaluate", unit="img", disable=not progress or None):
                s = make_scene(scene_rng(seed, i))
                out = model.module([to_tensor(s.image)])[0]
                metric.update([{k: out[k] for k in ("boxes", "scores", "labels")}],
                              [{"boxes": torch.from_numpy(s.boxes), "labels": torch.from_numpy(s.labels)}])
        r = metric.compute()
    per_class = {CLASSES[int(c) - 1]: float(v) for c, v in zip(r["classes"], r["map_per_class"])}
    return {"map_50": float(r["map_50"]), "per_class": per_class, "images": images, "seed": seed,
            "weights": weights}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.demo.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="demo")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    res = evaluate(args.weights, args.images, args.seed)
    if args.out:
        from core.atomic import write_text

        write_text(args.out, json.dumps(res, indent=1) + "\n")
    if args.json:
        print(json.dumps(res))
    else:
        print(f"mAP@0.5 = {res['map_50']:.3f} on {res['images']} held-out scenes (seed {res['seed']})")
        for name, v in res["per_class"].items():
            print(f"  {name:<10} {v:.3f}")
    return 0 if res["map_50"] >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
