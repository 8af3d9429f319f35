"""Write an annotated folder of generated shape scenes: PNG images + a COCO ``annotations.json``
beside them (what ``core.truth`` finds without ``--annotations``).

    python -m core.demo.dataset OUT [--n 100] [--seed 5000011]

The default seed is one the demo detector's training never uses (training uses seed 0), so the
folder is held-out data for ``rcnn-lens analyze OUT -o RESULTS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from core.atomic import write_bytes, write_text
from core.demo.assets import coco_annotations
from core.demo.shapes import CLASSES, make_scene, scene_rng

DEFAULT_SEED = 5_000_011


def write_dataset(out, n: int = 100, seed: int = DEFAULT_SEED, progress: bool = False) -> Path:
    """Scenes ``scene_0000.png``... and ``annotations.json`` in ``out``; returns the json's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    it = range(n)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="scenes", unit="img", file=sys.stderr)
    for i in it:
        s = make_scene(scene_rng(seed, i))
        name = f"scene_{i:04d}.png"
        ok, buf = cv2.imencode(".png", s.image[..., ::-1])
        if not ok:
            raise RuntimeError(f"cannot encode {name}")
        write_bytes(out / name, buf.tobytes())
        index.append({"file": name, "seed": seed, "index": i, "size": list(s.image.shape[:2]),
                      "objects": [{"class": CLASSES[int(k) - 1], "box": [float(v) for v in b]}
                                  for b, k in zip(s.boxes, s.labels)]})
    data = coco_annotations(index)
    data["info"] = {"description": f"R-CNN Lens generated shape scenes (core.demo.dataset, seed {seed})"}
    path = out / "annotations.json"
    write_text(path, json.dumps(data) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.demo.dataset", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder to write (created if missing)")
    ap.add_argument("--n", type=int, default=100, help="number of scenes (default 100)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be >= 1")
    path = write_dataset(args.out, args.n, args.seed, progress=True)
    print(f"{args.n} scenes and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
