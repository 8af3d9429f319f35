"""Annotation readers (COCO, VOC, YOLO): formats, name mapping, boxes against the image, bad files."""

import json

import numpy as np
import pytest

from core.errors import LensError, TruthError
from core.paths import DEMO_IMAGES
from core.truth.beside import find_for_image
from core.truth.sources import open_annotations
from core.truth.types import Truth, missing_warnings

NAMES = ["__background__", "cat", "dog", "potted plant"]


def coco_file(tmp_path, anns=None, images=None, cats=None, name="instances.json"):
    data = {
        "images": images if images is not None else [
            {"id": 11, "file_name": "a.jpg", "height": 100, "width": 200},
            {"id": 12, "file_name": "sub/b.jpg", "height": 50, "width": 60}],
        "annotations": anns if anns is not None else [
            {"id": 1, "image_id": 11, "category_id": 42, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 1000, "bbox": [0, 0, 200, 100], "iscrowd": 1},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [5, 5, 10, 10]},
            {"id": 4, "image_id": 12, "category_id": 7, "bbox": [1, 2, 3, 4]}],
        "categories": cats if cats is not None else [
            {"id": 42, "name": "dog"}, {"id": 1000, "name": "cat"}, {"id": 7, "name": "person"}],
    }
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_coco_any_category_ids_file_name_match_and_crowd(tmp_path, capsys):
    ann = open_annotations(coco_file(tmp_path))
    t = ann.for_image(tmp_path / "img" / "a.jpg", (100, 200), NAMES)
    assert capsys.readouterr().out == ""  # pycocotools' prints are silenced
    np.testing.assert_array_equal(t.boxes, [[10, 20, 40, 60], [0, 0, 200, 100], [5, 5, 15, 15]])
    assert t.names == ("dog", "cat", "person")
    np.testing.assert_array_equal(t.labels, [2, 1, -1])
    np.testing.assert_array_equal(t.crowd, [False, True, False])
    np.testing.assert_array_equal(t.trainable, [True, False, False])
    assert t.warnings == ["1 object of 'person': not a class of this model"]
    assert t.format == "coco" and t.source.endswith("instances.json")
    b = ann.for_image("elsewhere/sub/b.jpg", (50, 60), NAMES)
    np.testing.assert_array_equal(b.boxes, [[1, 2, 4, 6]])
    assert ann.for_image("c.jpg", (10, 10), NAMES) is None


def test_coco_same_basename_in_two_folders_matched_by_path(tmp_path):
    images = [{"id": 1, "file_name": "train/x.jpg"}, {"id": 2, "file_name": "val/x.jpg"}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    ann = open_annotations(coco_file(tmp_path, anns, images, [{"id": 1, "name": "cat"}]))
    assert ann.for_image("/data/val/x.jpg", (20, 20), NAMES).boxes[0, 0] == 1
    with pytest.raises(TruthError, match="2 images are named 'x.jpg'"):
        ann.for_image("/data/x.jpg", (20, 20), NAMES)


def test_missing_names_reported_once_per_name():
    counts = Truth(np.zeros((4, 4)), ("person", "person", "bike", "person"), [-1, -1, -1, -1]).missing()
    assert missing_warnings(counts) == ["3 objects of 'person': not a class of this model",
                                        "1 object of 'bike': not a class of this model"]


def test_names_map_exactly_then_loosely_never_to_background():
    t = Truth(np.zeros((0, 4)), (), [])
    assert len(t) == 0 and t.labels.dtype == np.int64
    from core.truth.common import class_index, map_name

    idx = class_index(["__background__", "N/A", "cat", "Potted Plant", "potted_plant", "dog"])
    assert map_name(idx, "cat") == 2
    assert map_name(idx, "Cat") == 2  # loose: case
    assert map_name(idx, "potted_plant") == 4  # exact wins
    assert map_name(idx, "pottedplant") == -1  # loose match is ambiguous (3 and 4)
    assert map_name(idx, "__background__") == -1 and map_name(idx, "N/A") == -1
    idx = class_index(["__background__", "potted plant"])
    assert map_name(idx, "pottedplant") == 1


@pytest.mark.parametrize("content, message", [
    ("", "empty file"),
    ("{\"images\": [", "not valid JSON (line 1 column"),
    ("[1, 2]", "not a COCO annotation file"),
    ("{\"images\": []}", "lists no images"),
    ("{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"categories\": [{\"id\": 1, \"name\": \"cat\"}]}",
     "no 'annotations' list"),
])
def test_coco_bad_files(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(TruthError) as err:
        open_annotations(p)
    assert str(err.value).startswith(str(p) + ": ") and message in str(err.value)
    assert "\n" not in str(err.value) and isinstance(err.value, LensError)


def test_coco_ids_that_match_nothing(tmp_path):
    with pytest.raises(TruthError, match=r"annotation 5: image_id 99 matches no image"):
        open_annotations(coco_file(tmp_path, anns=[{"id": 5, "image_id": 99, "category_id": 7, "bbox": [0, 0, 1, 1]}]))
    with pytest.raises(TruthError, match=r"annotation 5: category_id 3 matches no category"):
        open_annotations(coco_file(tmp_path, anns=[{"id": 5, "image_id": 11, "category_id": 3, "bbox": [0, 0, 1, 1]}]))
    with pytest.raises(TruthError, match=r"annotation 5 appears twice"):
        open_annotations(coco_file(tmp_path, anns=[{"id": 5, "image_id": 11, "category_id": 7, "bbox": [0, 0, 1, 1]}] * 2))
    with pytest.raises(TruthError, match=r"annotation 5 bbox: 'x' is not a number"):
        open_annotations(coco_file(tmp_path, anns=[{"id": 5, "image_id": 11, "category_id": 7, "bbox": [0, "x", 1, 1]}]))


def test_boxes_outside_the_image_error_naming_file_and_object_small_overhang_clipped(tmp_path):
    anns = [{"id": 8, "image_id": 11, "category_id": 42, "bbox": [150, 10, 60, 20]}]  # x2 = 210 > 200
    p = coco_file(tmp_path, anns=anns)
    with pytest.raises(TruthError) as err:
        open_annotations(p).for_image("a.jpg", (100, 200), NAMES)
    assert str(err.value) == f"{p}: annotation 8 ('dog'): box [150, 10, 210, 30] lies outside the 200x100 image"
    anns = [{"id": 8, "image_id": 11, "category_id": 42, "bbox": [-0.5, 10, 201, 20]}]  # within 1 px: clipped
    t = open_annotations(coco_file(tmp_path, anns=anns)).for_image("a.jpg", (100, 200), NAMES)
    np.testing.assert_array_equal(t.boxes, [[0, 10, 200, 30]])
    anns = [{"id": 8, "image_id": 11, "category_id": 42, "bbox": [10, 10, 0, 20]}]
    with pytest.raises(TruthError, match=r"annotation 8 \('dog'\): box \[10, 10, 10, 30\] is empty"):
        open_annotations(coco_file(tmp_path, anns=anns)).for_image("a.jpg", (100, 200), NAMES)


def test_a_box_that_is_empty_in_float32_is_refused_naming_it(tmp_path):
    """[100, 10, 1e-6, 40] has a width in float64 but none in float32, where torchvision trains: every
    anchor would turn positive and loss_box_reg would be NaN."""
    anns = [{"id": 8, "image_id": 11, "category_id": 42, "bbox": [100, 10, 1e-6, 40]}]
    p = coco_file(tmp_path, anns=anns)
    with pytest.raises(TruthError) as err:
        open_annotations(p).for_image("a.jpg", (100, 200), NAMES)
    assert str(err.value) == (f"{p}: annotation 8 ('dog'): box [100, 10, 100, 50] has no width or height in float32 "
                              "(torchvision refuses such a box)")


def test_declared_image_size_must_match_the_image_on_disk(tmp_path):
    ann = open_annotations(coco_file(tmp_path))
    with pytest.raises(TruthError, match=r"image 'a.jpg' is 200x100 here but 400x200 on disk"):
        ann.for_image("a.jpg", (200, 400), NAMES)


VOC = """<annotation>
  <folder>VOC2007</folder><filename>000005.jpg</filename>
  <size><width>500</width><height>375</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>263</xmin><ymin>211</ymin><xmax>324</xmax><ymax>339</ymax></bndbox></object>
  <object><name>pottedplant</name><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>500</xmax><ymax>375</ymax></bndbox></object>
  <object><name>chair</name>
    <bndbox><xmin>5.5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
</annotation>"""


def test_voc_file_difficult_one_based_and_name_mapping(tmp_path):
    p = tmp_path / "000005.xml"
    p.write_text(VOC)
    t = open_annotations(p).for_image(tmp_path / "000005.jpg", (375, 500), NAMES)
    np.testing.assert_array_equal(t.boxes, [[262, 210, 324, 339], [0, 0, 500, 375], [4.5, 5, 20, 30]])
    np.testing.assert_array_equal(t.labels, [2, 3, -1])  # 'pottedplant' -> 'potted plant'
    np.testing.assert_array_equal(t.difficult, [False, True, False])
    assert t.format == "voc"
    assert open_annotations(p).for_image("other.jpg", (375, 500), NAMES) is None


def test_voc_folder_with_annotations_subfolder_and_lazy_errors(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "000005.xml").write_text(VOC)
    (tmp_path / "Annotations" / "000006.xml").write_text("<annotation><object>")
    ann = open_annotations(tmp_path)
    assert ann.format == "voc" and ann.image_names() == ["000005", "000006"]
    assert len(ann.for_image("JPEGImages/000005.jpg", (375, 500), NAMES)) == 3
    with pytest.raises(TruthError, match=r"000006.xml: not well-formed XML \(line 1, column"):
        ann.for_image("000006.jpg", (375, 500), NAMES)
    assert ann.for_image("000007.jpg", (375, 500), NAMES) is None


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>&lol9;</filename></annotation>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<annotation><filename>&x;</filename></annotation>"""


@pytest.mark.parametrize("content", [BOMB, XXE])
def test_voc_entity_bomb_and_external_entities_refused(tmp_path, content):
    p = tmp_path / "bomb.xml"
    p.write_text(content)
    with pytest.raises(TruthError) as err:
        open_annotations(p)
    assert str(err.value) == f"{p}: XML with a DTD or entity declarations is refused (a possible entity bomb)"


@pytest.mark.parametrize("content, message", [
    ("<html/>", "not a VOC annotation (the root element is <html>"),
    ("<annotation><object><name>cat</name></object></annotation>", "object 1 ('cat'): no <bndbox>"),
    ("<annotation><object><name>cat</name><bndbox><xmin>a</xmin></bndbox></object></annotation>",
     "object 1 ('cat') <xmin>: 'a' is not a number"),
    ("   ", "empty file"),
])
def test_voc_bad_files(tmp_path, content, message):
    p = tmp_path / "x.xml"
    p.write_text(content)
    with pytest.raises(TruthError, match=None) as err:
        open_annotations(p)
    assert message in str(err.value) and str(err.value).startswith(str(p))


def yolo_tree(tmp_path, names="classes.txt"):
    root = tmp_path / "ds"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    if names == "classes.txt":
        (root / "classes.txt").write_text("dog\ncat\nperson\n")
    else:
        (root / "data.yaml").write_text(names)
    (root / "labels" / "train" / "p1.txt").write_text("0 0.5 0.5 0.2 0.4\n\n1 0.25 0.25 0.5 0.5\n2 0.1 0.1 0.2 0.2\n")
    (root / "labels" / "train" / "empty.txt").write_text("")
    return root


def test_yolo_folder_normalized_boxes_and_empty_label_file(tmp_path):
    root = yolo_tree(tmp_path)
    ann = open_annotations(root)
    assert ann.format == "yolo"
    t = ann.for_image(root / "images" / "train" / "p1.jpg", (100, 200), NAMES)
    np.testing.assert_allclose(t.boxes, [[80, 30, 120, 70], [0, 0, 100, 50], [0, 0, 40, 20]], atol=1e-4)
    assert t.names == ("dog", "cat", "person")
    np.testing.assert_array_equal(t.labels, [2, 1, -1])
    e = ann.for_image("empty.png", (100, 200), NAMES)
    assert e is not None and len(e) == 0


@pytest.mark.parametrize("yaml_text", ["names: [dog, cat, person]\n", "names:\n  0: dog\n  1: cat\n  2: person\n"])
def test_yolo_data_yaml_names(tmp_path, yaml_text):
    root = yolo_tree(tmp_path, yaml_text)
    t = find_for_image(root / "images" / "train" / "p1.jpg", (100, 200), NAMES)  # labels/ mirrors images/
    assert t.names == ("dog", "cat", "person")


def test_yolo_yaml_is_read_safely(tmp_path):
    root = yolo_tree(tmp_path, "names: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(TruthError, match=r"data.yaml: not valid YAML \(line 1\)"):
        open_annotations(root)


@pytest.mark.parametrize("line, message", [
    ("3 0.5 0.5 0.1 0.1", "line 1: class 3 is not one of the 3 classes (0..2)"),
    ("0 0.5 0.5 0.1", "line 1: expected 'class cx cy w h'"),
    ("0 50 50 10 10", "line 1 ('dog'): coordinates must be normalized to 0..1"),
    ("0 0.95 0.5 0.2 0.2", "line 1 ('dog'): box [170, 40, 210, 60] lies outside the 200x100 image"),
    ("x 0.5 0.5 0.1 0.1", "line 1 class: 'x' is not a number"),
])
def test_yolo_bad_lines(tmp_path, line, message):
    root = yolo_tree(tmp_path)
    p = root / "labels" / "train" / "p1.txt"
    p.write_text(line + "\n")
    with pytest.raises(TruthError) as err:
        open_annotations(p).for_image("p1.jpg", (100, 200), NAMES)
    assert str(err.value) == f"{p}: {message}" or str(err.value).startswith(f"{p}: {message}")


def test_yolo_segment_line_gives_its_bounding_box(tmp_path):
    root = yolo_tree(tmp_path)
    p = root / "labels" / "train" / "p1.txt"
    p.write_text("1 0.1 0.2 0.5 0.2 0.3 0.9\n")
    t = open_annotations(p).for_image("p1.jpg", (100, 200), NAMES)
    np.testing.assert_allclose(t.boxes, [[20, 20, 100, 90]], atol=1e-4)


def test_yolo_txt_without_names_is_an_error_when_named_and_ignored_beside(tmp_path):
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(TruthError, match="need class names"):
        open_annotations(tmp_path / "a.txt")
    assert find_for_image(tmp_path / "a.png", (10, 10), NAMES) is None


def test_beside_the_image_xml_txt_and_coco(tmp_path):
    (tmp_path / "000005.xml").write_text(VOC)
    assert find_for_image(tmp_path / "000005.jpg", (375, 500), NAMES).format == "voc"
    (tmp_path / "q.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    assert find_for_image(tmp_path / "q.png", (10, 10), NAMES).names == ("cat",)
    assert find_for_image(tmp_path / "nothing.png", (10, 10), NAMES) is None
    coco_file(tmp_path, name="annotations.json")
    assert find_for_image(tmp_path / "a.jpg", (100, 200), NAMES).format == "coco"
    assert find_for_image(tmp_path / "zzz.jpg", (100, 200), NAMES) is None


def test_explicit_annotations_win_over_beside(tmp_path):
    (tmp_path / "a.xml").write_text(VOC.replace("000005", "a"))
    other = coco_file(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path)
    t = find_for_image(tmp_path / "a.jpg", (100, 200), NAMES, annotations=other)
    assert t.format == "coco"


def test_shipped_demo_scenes_ship_their_truth():
    from core.demo.assets import coco_annotations
    from core.demo.shapes import CLASSES

    scenes = json.loads((DEMO_IMAGES / "scenes.json").read_text())
    shipped = json.loads((DEMO_IMAGES / "annotations.json").read_text())
    assert shipped == coco_annotations(scenes)  # reproducible: python -m core.demo.assets --annotations
    names = ["__background__", *CLASSES]
    for s in scenes:
        t = find_for_image(DEMO_IMAGES / s["file"], tuple(s["size"]), names)
        np.testing.assert_array_equal(t.boxes, [o["box"] for o in s["objects"]])
        assert t.names == tuple(o["class"] for o in s["objects"])
        assert (t.labels > 0).all()


def test_open_annotations_detects_nothing_in_an_empty_folder(tmp_path):
    with pytest.raises(TruthError, match="no annotations found"):
        open_annotations(tmp_path)
    with pytest.raises(TruthError, match="no such file"):
        open_annotations(tmp_path / "missing.json")
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(TruthError, match="unknown annotation format"):
        open_annotations(tmp_path / "a.csv")


def test_truth_at_and_records():
    t = Truth(np.array([[0, 0, 100, 100], [10, 10, 20, 20]]), ("a", "b"), [1, -1], difficult=[False, True])
    assert t.at(15, 15) == 1 and t.at(50, 50) == 0 and t.at(150, 5) == -1
    assert t.records() == [{"box": [0.0, 0.0, 100.0, 100.0], "label": 1, "name": "a"},
                           {"box": [10.0, 10.0, 20.0, 20.0], "label": None, "name": "b", "difficult": True}]
