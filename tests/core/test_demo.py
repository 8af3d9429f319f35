"""The demo detector: the generator's promises, and the shipped weights really detect."""

import numpy as np
import pytest
import torch

import core
from core.demo.shapes import CLASSES, make_scene, scene_rng
from core.paths import DEMO_IMAGES, DEMO_WEIGHTS


def test_generator_is_seeded_and_keeps_its_description():
    a, b = make_scene(scene_rng(5, 3)), make_scene(scene_rng(5, 3))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert CLASSES == ("circle", "rectangle", "triangle")
    sizes, counts, labels = [], [], set()
    for i in range(40):
        s = make_scene(scene_rng(11, i))
        h, w = s.image.shape[:2]
        assert 256 <= h <= 640 and 256 <= w <= 640 and s.image.dtype == np.uint8
        assert 1 <= len(s.boxes) <= 8
        assert (s.boxes[:, 0] >= 0).all() and (s.boxes[:, 2] <= w).all() and (s.boxes[:, 3] <= h).all()
        side = np.maximum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])
        assert (side >= 20).all() and (side <= min(h, w) / 2 + 2).all()
        sizes += side.tolist()
        counts.append(len(s.boxes))
        labels |= set(s.labels.tolist())
    assert labels == {1, 2, 3} and max(sizes) / min(sizes) > 5 and len(set(counts)) > 3


def test_boxes_are_tight_bounds_of_the_drawing():
    from core.demo.shapes import background, draw_mask, mask_box

    rng = scene_rng(3, 0)
    for label in (1, 2, 3):
        mask = None
        while mask is None:
            mask = draw_mask(rng, label, 300, 400)
        x0, y0, x1, y1 = (int(v) for v in mask_box(mask))
        drawn = mask >= 128
        assert drawn[y0:y1, x0:x1].sum() == drawn.sum()
        assert drawn[y0, x0:x1].any() and drawn[y1 - 1, x0:x1].any()
        assert drawn[y0:y1, x0].any() and drawn[y0:y1, x1 - 1].any()
    assert background(rng, 40, 50, "stripes").shape == (40, 50, 3)


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.skipif(not DEMO_WEIGHTS.is_file(), reason="run `make train` first")
def test_shipped_weights_detect_generated_scenes():
    model = core.load_model()  # the default: demo preset, demo weights
    assert model.name == "demo" and model.class_names == ["__background__", *CLASSES]
    assert DEMO_WEIGHTS.stat().st_size <= 15 * 1024 * 1024
    ck = torch.load(DEMO_WEIGHTS, weights_only=True)
    assert ck["classes"] == ["__background__", *CLASSES] and ck["config"]["arch"] == "shapes-fpn"
    found = total = false = 0
    for i in range(8):
        s = make_scene(scene_rng(777_001, i))
        dets = core.trace(model, s.image).final()
        total += len(s.boxes)
        for box, label in zip(s.boxes, s.labels):
            found += any(d["label"] == label and _iou(d["box"], box) > 0.5 for d in dets)
        false += sum(not any(d["label"] == lab and _iou(d["box"], b) > 0.5 for b, lab in zip(s.boxes, s.labels))
                     for d in dets)
    assert found / total >= 0.9, (found, total)
    assert false <= 0.15 * total, (false, total)


def test_demo_scenes_are_shipped():
    scenes = sorted(DEMO_IMAGES.glob("*.png"))
    assert 3 <= len(scenes) <= 5
    img = core.load_image(scenes[0])
    assert img.ndim == 3 and img.shape[2] == 3


def test_training_takes_an_anchor_configuration(tmp_path):
    """``make train TRAIN_ARGS="--anchors OUT/anchors.json"`` (or --sizes/--ratios): the checkpoint
    carries the configuration and the demo preset rebuilds its generator from it; a bad one is one
    line and exit 1 before any step."""
    import json

    import core
    from core.demo.train import main as train

    cfg = {"suggested": {"sizes": [[20, 30], [40, 60], [80, 120], [160, 240]],
                         "aspect_ratios": [[0.4, 1.0, 2.5]] * 4}}
    (tmp_path / "anchors.json").write_text(json.dumps(cfg))
    out = tmp_path / "w.pt"
    threads = torch.get_num_threads()
    assert train(["--out", str(out), "--steps", "1", "--batch", "1", "--threads", "1", "--device", "cpu",
                  "--anchors", str(tmp_path / "anchors.json")]) == 0
    gen = core.load_model("demo", weights=str(out)).module.rpn.anchor_generator
    assert gen.sizes == ((20, 30), (40, 60), (80, 120), (160, 240))
    assert gen.aspect_ratios == ((0.4, 1.0, 2.5),) * 4
    assert train(["--out", str(tmp_path / "x.pt"), "--steps", "1", "--sizes", "16 / 32 / 64", "--ratios", "1"]) == 1
    assert not (tmp_path / "x.pt").exists()
    assert torch.get_num_threads() == threads  # run in-process, it leaves the caller's thread count
