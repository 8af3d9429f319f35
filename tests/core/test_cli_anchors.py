"""``rcnn-lens anchors``: the demo scenes run and write anchors.json (the fields the README names) and
anchors.png; bad input is one line on stderr and exit 1 (sizes or ratios that are not positive, a
level count that differs from the feature maps', a model whose anchor generator is not
torchvision's, a folder without images)."""

import json

import pytest

from core.cli.main import main
from core.paths import DEMO_IMAGES


def _run(capsys, *args):
    code = main(["anchors", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_scenes(tmp_path, capsys):
    out = tmp_path / "out"
    code, text, err = _run(capsys, DEMO_IMAGES, "-o", out, "--trials", "10", "--free-trials", "3")
    assert code == 0, err
    assert "suggested (the RPN head still loads): AnchorGenerator(sizes=(" in text
    assert "free (the RPN head needs training)" in text and "YOLOv5 would say BPR" in text
    r = json.loads((out / "anchors.json").read_text())
    assert len(r["objects"]) == r["object_count"] == 24 and r["images"] == 4
    assert set(r["objects"][0]) >= {"image", "truth", "name", "match", "positives", "best_iou", "best_level",
                                    "best_size", "best_ratio", "expected_sampled"}
    for key in ("current", "suggested", "free"):
        c = r[key]
        assert {"sizes", "aspect_ratios", "strong_share", "held_out", "paste"} <= set(c)
        assert {"strong_share", "starved"} <= set(c["held_out"])
    assert r["current"]["sizes"] == [[16, 24], [32, 48], [64, 96], [128, 192]]
    assert {"by_size", "by_ratio", "all"} <= set(r["totals"])
    png = (out / "anchors.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


BUILDER = '''
from torchvision.models.detection.anchor_utils import AnchorGenerator
from core.demo.model import build_shapes_model


class Shifted(AnchorGenerator):
    def grid_anchors(self, grid_sizes, strides):
        return [a + 4 for a in super().grid_anchors(grid_sizes, strides)]


def build():
    m = build_shapes_model()
    m.rpn.anchor_generator = Shifted(((16, 24), (32, 48), (64, 96), (128, 192)), ((0.5, 1.0, 2.0),) * 4)
    return m
'''


@pytest.mark.parametrize("extra, why", [
    (["--sizes", "16,24 / 32,-48 / 64 / 128", "--ratios", "1"], "--sizes/--ratios: size -48 on level 1 is not a positive number"),
    (["--sizes", "16 / 32 / 64 / 128", "--ratios", "0.5, 0"], "aspect ratio 0.0 on level 0 is not a positive number"),
    (["--sizes", "16 / 32 / 64", "--ratios", "1"], "3 levels of sizes, but the model has 4 feature maps"),
    (["--sizes", "16 / 32 / 64 / 128"], "--sizes/--ratios: give both"),
    (["--model", "BUILDER:build", "--weights", "random:0"], "overrides AnchorGenerator.grid_anchors"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, why):
    (tmp_path / "mine.py").write_text(BUILDER)
    extra = [str(tmp_path / "mine.py") + ":build" if x == "BUILDER:build" else x for x in extra]
    code, _, err = _run(capsys, DEMO_IMAGES / "scene_1.png", "-o", tmp_path / "out", "--trials", "2",
                        "--free-trials", "0", "--quiet", *extra)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rcnn-lens: ") and why in lines[0], err
    assert "Traceback" not in err and "Warning" not in err


def test_a_folder_without_images(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, tmp_path / "empty", "-o", tmp_path / "out")
    assert code == 1 and err.count("\n") == 1 and "no images in this folder" in err
