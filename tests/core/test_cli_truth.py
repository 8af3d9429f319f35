"""rcnn-lens trace/export with ground truth: --annotations, --seed, the truth and training output,
bad annotation files (one line, exit 1, before the model loads; an image whose own file beside it is bad
still traced without truth), missing class names once."""

import json
import shutil

import numpy as np
import pytest

from core.cli.main import main
from core.paths import DEMO_IMAGES

from .test_cli import run

SCENES = json.loads((DEMO_IMAGES / "scenes.json").read_text())
CLASSES = ("__background__", "circle", "rectangle", "triangle")


class Result:
    def __init__(self, returncode, out):
        self.returncode, self.stdout, self.stderr = returncode, out.out, out.err


@pytest.fixture
def cli(capsys):
    """rcnn-lens in this process (torch is loaded once): -> returncode, stdout, stderr."""

    def call(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        return Result(code, capsys.readouterr())

    return call


def test_trace_json_has_the_demo_scenes_truth_and_training_view(cli):
    paths = [str(DEMO_IMAGES / s["file"]) for s in SCENES[:2]]
    r = cli("trace", *paths, "--json", "--seed", "4")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    for scene, j in zip(SCENES, lines):
        assert [t["box"] for t in j["truth"]] == [o["box"] for o in scene["objects"]]
        assert [t["name"] for t in j["truth"]] == [o["class"] for o in scene["objects"]]
        assert [t["label"] for t in j["truth"]] == [CLASSES.index(o["class"]) for o in scene["objects"]]
        tr = j["training"]
        assert tr["seed"] == 4
        assert set(tr["losses"]) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
        assert all(np.isfinite(v) and v >= 0 for v in tr["losses"].values())
        rpn = tr["rpn"]
        assert rpn["positive"] + rpn["negative"] + rpn["ignored"] == j["anchors"]["total"]
        assert rpn["sampled"] == 256 and rpn["positive"] >= len(scene["objects"])
        assert tr["roi"]["sampled"] == 128 and 0 < tr["roi"]["positive"] <= 32


def test_trace_json_training_in_its_own_process_equals_the_in_process_view():
    import core
    from core.training.targets import attach
    from core.truth.beside import find_for_image

    path = DEMO_IMAGES / SCENES[2]["file"]
    r = run("trace", str(path), "--json", "--seed", "9")
    j = json.loads(r.stdout)
    model = core.load_model("demo")
    tr = core.trace(model, str(path))
    tr = attach(tr, find_for_image(path, tr.meta.original_size, model.class_names), seed=9)
    assert j["training"] == json.loads(json.dumps(tr.training.counts()))


def test_trace_table_has_a_training_section(cli):
    r = cli("trace", str(DEMO_IMAGES / SCENES[0]["file"]))
    assert r.returncode == 0, r.stderr
    assert "truth: 6 objects from " in r.stdout and "training (torchvision's training step" in r.stdout
    assert "IoU >= 0.7 positive, < 0.3 negative, 256 sampled, 50% positive" in r.stdout
    for k in ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"):
        assert f"  {k} " in r.stdout


def coco(tmp_path, names):
    """A COCO file for two copies of scene 1 with its objects renamed."""
    s = SCENES[0]
    h, w = s["size"]
    images = [{"id": i, "file_name": f"img{i}.png", "height": h, "width": w} for i in (1, 2)]
    cats = [{"id": 10 + k, "name": n} for k, n in enumerate(sorted(set(names)))]
    cid = {c["name"]: c["id"] for c in cats}
    anns = []
    for i in (1, 2):
        for o, n in zip(s["objects"], names):
            x1, y1, x2, y2 = o["box"]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cid[n], "bbox": [x1, y1, x2 - x1, y2 - y1]})
        shutil.copy(DEMO_IMAGES / s["file"], tmp_path / f"img{i}.png")
    p = tmp_path / "coco.json"
    p.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return p


def test_names_the_model_lacks_are_reported_once_and_kept_without_a_label(tmp_path, cli):
    names = ["person", "rectangle", "circle", "rectangle", "person", "dog"]
    ann = coco(tmp_path, names)
    r = cli("trace", str(tmp_path / "img1.png"), str(tmp_path / "img2.png"), "--annotations", str(ann), "--json")
    assert r.returncode == 0
    assert r.stderr.splitlines() == [f"rcnn-lens: {ann}: 4 objects of 'person': not a class of this model",
                                     f"rcnn-lens: {ann}: 2 objects of 'dog': not a class of this model"]
    j = json.loads(r.stdout.splitlines()[0])
    assert [t["label"] for t in j["truth"]] == [None, 2, 1, 2, None, None]  # truth without a label
    r = cli("trace", str(tmp_path / "img1.png"), "--annotations", str(ann))
    assert "  person         no label  [" in r.stdout and "  rectangle      label 2   [" in r.stdout
    assert j["training"]["roi"]["positive"] > 0


def test_a_bad_annotations_file_fails_at_once_with_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    r = run("trace", str(DEMO_IMAGES / "scene_1.png"), "--annotations", str(bad), "--json", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"rcnn-lens: {bad}: not valid JSON (line 1 column 13: Expecting value)\n"
    r = run("trace", str(DEMO_IMAGES / "scene_1.png"), "--annotations", str(tmp_path / "none.xml"), timeout=60)
    assert r.returncode == 1 and r.stderr == f"rcnn-lens: {tmp_path / 'none.xml'}: no such file or folder\n"


def test_a_bad_file_beside_an_image_still_traces_it_without_truth(tmp_path, cli):
    img = tmp_path / "a.png"
    shutil.copy(DEMO_IMAGES / "scene_1.png", img)
    (tmp_path / "a.xml").write_text("<annotation><size><width>547</width><height>510</height></size><object>"
                                    "<name>circle</name><bndbox><xmin>500</xmin><ymin>1</ymin><xmax>600</xmax>"
                                    "<ymax>40</ymax></bndbox></object></annotation>")
    ok = tmp_path / "b.png"
    shutil.copy(DEMO_IMAGES / "scene_1.png", ok)
    r = cli("trace", str(img), str(ok), "--json")
    assert r.returncode == 1
    assert r.stderr == (f"rcnn-lens: {tmp_path / 'a.xml'}: object 1 ('circle'): box [499, 0, 600, 40] lies "
                        f"outside the 547x510 image\n")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["image"] for x in lines] == [str(img), str(ok)]
    assert "truth" not in lines[0] and "training" not in lines[0] and len(lines[0]["detections"]) > 0


def test_no_truth_flag(cli):
    r = cli("trace", str(DEMO_IMAGES / "scene_1.png"), "--json", "--no-truth")
    j = json.loads(r.stdout)
    assert r.returncode == 0 and "truth" not in j and "training" not in j


@pytest.mark.parametrize("overlays", ["training", "truth,anchor_targets,detections"])
def test_export_draws_truth_and_training_stages_with_annotations(tmp_path, overlays, cli):
    out = tmp_path / "x.png"
    ann = DEMO_IMAGES / "annotations.json"
    r = cli("export", str(DEMO_IMAGES / "scene_1.png"), "--overlays", overlays, "--annotations", str(ann),
            "--seed", "2", "--gt", "3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["overlays"] == [s for s in ("detections", "truth", "anchor_targets", "roi_targets", "loss")
                                if s in overlays or overlays == "training" and s != "detections"]
    assert side["training"]["seed"] == 2 and len(side["truth"]) == 6
    assert side["settings"]["anchor_targets"]["gt"] == 3
    assert f"--annotations {ann} --seed 2" in side["reproduce"]


def _loading_marker(monkeypatch):
    """Print a marker when the model starts to load (so a test sees what came before it)."""
    import sys

    import core.models.load

    real = core.models.load.load_model

    def load(*a, **k):
        print("rcnn-lens-test: loading the model", file=sys.stderr)
        return real(*a, **k)

    monkeypatch.setattr(core.models.load, "load_model", load)


def test_a_box_outside_the_image_in_the_given_annotations_fails_before_the_model_loads(tmp_path, cli, monkeypatch):
    _loading_marker(monkeypatch)
    ann = coco(tmp_path, [o["class"] for o in SCENES[0]["objects"]])
    data = json.loads(ann.read_text())
    data["annotations"][0]["bbox"] = [500, 1, 100, 39]  # x2 = 600 on a 547 px wide image
    ann.write_text(json.dumps(data))
    for cmd in (("trace", "--json"), ("export", "-o", str(tmp_path / "out"))):
        r = cli(cmd[0], str(tmp_path / "img1.png"), "--annotations", str(ann), *cmd[1:])
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == (f"rcnn-lens: {ann}: annotation 1 ('{SCENES[0]['objects'][0]['class']}'): box "
                            f"[500, 1, 600, 40] lies outside the 547x510 image\n"), cmd
    data["annotations"][0]["bbox"] = [1, 1, 10, 10]
    data["images"][0]["width"] = 640  # the declared size disagrees with the file
    ann.write_text(json.dumps(data))
    r = cli("trace", str(tmp_path / "img1.png"), "--annotations", str(ann))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (f"rcnn-lens: {ann}: image 'img1.png' is 640x510 here but 547x510 on disk (width x height): "
                        f"the boxes would not fit it\n")


def test_a_bad_box_beside_an_image_is_reported_before_the_model_loads(tmp_path, cli, monkeypatch):
    _loading_marker(monkeypatch)
    img = tmp_path / "a.png"
    shutil.copy(DEMO_IMAGES / "scene_1.png", img)
    (tmp_path / "a.xml").write_text("<annotation><object><name>circle</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                    "<xmax>40</xmax><ymax>600</ymax></bndbox></object></annotation>")
    r = cli("trace", str(img), "--json")
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 1  # traced without truth
    assert r.stderr.splitlines() == [f"rcnn-lens: {tmp_path / 'a.xml'}: object 1 ('circle'): box [0, 0, 40, 600] "
                                     f"lies outside the 547x510 image", "rcnn-lens-test: loading the model"]


def test_the_header_size_check_is_skipped_where_exif_may_turn_the_image(tmp_path, cli, monkeypatch):
    """A transposing EXIF orientation: the header alone cannot say the size; the check after decoding does."""
    from PIL import Image

    _loading_marker(monkeypatch)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: OpenCV turns a JPEG 60 wide, 40 high into 40 wide, 60 high
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "t.jpg", exif=exif.tobytes())
    (tmp_path / "t.xml").write_text("<annotation><object><name>circle</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                    "<xmax>40</xmax><ymax>60</ymax></bndbox></object></annotation>")
    r = cli("trace", str(tmp_path / "t.jpg"), "--json")
    assert r.returncode == 0 and r.stderr == "rcnn-lens-test: loading the model\n", r.stderr
    assert [t["box"] for t in json.loads(r.stdout)["truth"]] == [[0, 0, 40, 60]]
