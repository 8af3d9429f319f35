"""Pick the demo scenes shipped in assets/demo/ (generated, then committed), with their truth.

    python -m core.demo.assets                 # scenes, scenes.json and annotations.json
    python -m core.demo.assets --annotations   # annotations.json again from scenes.json

The truth ships as a COCO file, ``assets/demo/annotations.json`` (what ``core.truth`` finds beside
the scenes): boxes are the generator's pixel-edge boxes as ``[x, y, w, h]``.

Each scene is chosen to show something at every stage: objects of several scales (so different
FPN levels light up) and a pair of same-class objects close enough that NMS has to separate them.
"""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np

from core.demo.shapes import CLASSES, make_scene, scene_rng
from core.paths import DEMO_IMAGES

SEED = 4242


def _gap(a, b) -> float:
    dx = max(a[0] - b[2], b[0] - a[2], 0.0)
    dy = max(a[1] - b[3], b[1] - a[3], 0.0)
    return max(dx, dy)


def good(scene) -> bool:
    b, lab = scene.boxes, scene.labels
    if len(b) < 4 or len(set(lab.tolist())) < 3:
        return False
    side = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    if side.max() / side.min() < 4:
        return False
    return any(lab[i] == lab[j] and _gap(b[i], b[j]) < 6
               for i in range(len(b)) for j in range(i + 1, len(b)))


def pick(n: int = 4) -> list:
    out, i = [], 0
    while len(out) < n:
        s = make_scene(scene_rng(SEED, i))
        if good(s) and (len(out) > 0 or s.image.shape[0] != s.image.shape[1]):
            out.append((i, s))
        i += 1
    return out


def coco_annotations(index: list[dict]) -> dict:
    """The COCO form of scenes.json (category ids 1..3 in CLASSES order)."""
    cats = [{"id": i, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASSES, start=1)]
    cat_id = {c["name"]: c["id"] for c in cats}
    images, anns = [], []
    for image_id, scene in enumerate(index, start=1):
        h, w = scene["size"]
        images.append({"id": image_id, "file_name": scene["file"], "height": h, "width": w})
        for obj in scene["objects"]:
            x1, y1, x2, y2 = obj["box"]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat_id[obj["class"]],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    return {"info": {"description": "R-CNN Lens demo scenes (core.demo.assets)"},
            "images": images, "annotations": anns, "categories": cats}


def write_annotations(index: list[dict]) -> None:
    from core.atomic import write_text

    write_text(DEMO_IMAGES / "annotations.json", json.dumps(coco_annotations(index), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--annotations"]:
        write_annotations(json.loads((DEMO_IMAGES / "scenes.json").read_text()))
        return 0
    DEMO_IMAGES.mkdir(parents=True, exist_ok=True)
    for old in DEMO_IMAGES.glob("*.png"):
        old.unlink()
    index = []
    for k, (i, s) in enumerate(pick(), start=1):
        name = f"scene_{k}.png"
        cv2.imwrite(str(DEMO_IMAGES / name), s.image[..., ::-1])
        index.append({"file": name, "seed": SEED, "index": i, "size": list(s.image.shape[:2]),
                      "objects": [{"class": CLASSES[int(label) - 1], "box": [float(v) for v in box]}
                                  for box, label in zip(s.boxes, s.labels)]})
        print(name, s.image.shape[:2], len(s.boxes), "objects")
    (DEMO_IMAGES / "scenes.json").write_text(json.dumps(index, indent=1))
    write_annotations(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
