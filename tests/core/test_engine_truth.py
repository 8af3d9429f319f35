"""Ground truth through the engine (core.engine.truth_handlers), over its real socket: a trace carries its
image's truth, training view and verdicts; a retrace re-derives the verdicts and keeps the training
view; the ``truth`` request computes the training view again for a new seed without the backbone
(the feature maps keep their first trace's source) and reads other annotations; a bad file is one
``truth`` error after a trace without truth."""

import shutil

import numpy as np
import pytest

import core
from core.paths import DEMO_IMAGES
from core.training.targets import compute
from core.truth.beside import find_for_image


def test_truth_training_and_verdicts_travel_with_the_trace(engine, tmp_path):
    from core.analysis.diagnose import anchor_evidence, diagnose

    path = str(DEMO_IMAGES / "scene_4.png")
    engine.send("load", 1, {"name": "demo", "weights": None, "device": "cpu"})
    engine.until(("loaded",))
    engine.send("trace", 2, {"image": path, "name": path, "params": {}, "truth": {"seed": 3}})
    tr = engine.until(("trace", "error"))[2]["trace"]
    model = core.load_model("demo")
    ref = core.trace(model, tr.image)
    truth = find_for_image(path, tr.image.shape[:2], model.class_names)
    assert tr.truth.names == truth.names and tr.training.seed == 3
    want = compute(ref, truth, 3)
    assert np.array_equal(tr.training.rpn.sampled, want.rpn.sampled)
    for k, v in want.losses.items():
        assert tr.training.losses[k] == pytest.approx(v, rel=1e-5)
    ev = anchor_evidence(ref, truth)
    assert [o.verdict for o in tr.diagnosis.objects] == [o.verdict for o in diagnose(ref, truth, ev).objects]
    assert type(tr.training.rpn.bce).__name__ == "Withheld"  # per-anchor arrays only the bce view reads
    # a retrace: new verdicts from the new thresholds, the same training view
    engine.send("retrace", 3, {"params": {"box_score_thresh": 0.999}})
    t2 = engine.until(("trace",))[2]["trace"]
    want2 = diagnose(core.retrace(ref, box_score_thresh=0.999), truth, ev)
    assert [o.verdict for o in t2.diagnosis.objects] == [o.verdict for o in want2.objects]
    assert t2.diagnosis.counts() != tr.diagnosis.counts() and t2.training.losses == tr.training.losses
    # another seed: the training view again, nothing before it (the feature maps keep their source)
    engine.send("truth", 4, {"image": path, "seed": 4})
    t3 = engine.until(("trace", "error"))[2]["trace"]
    assert t3.training.seed == 4 and t3.features["0"].data.source == 2 and t3.params["box_score_thresh"] == 0.999
    assert np.array_equal(t3.training.rpn.sampled, compute(ref, truth, 4).rpn.sampled)
    assert t3.diagnosis.counts() == t2.diagnosis.counts()
    # other annotations: read (and the verdicts derived) on the same trace
    other = tmp_path / "one.json"
    other.write_text('{"images": [{"id": 1, "file_name": "scene_4.png", "height": 638, "width": 634}], '
                     '"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40]}], '
                     '"categories": [{"id": 1, "name": "circle"}]}')
    engine.send("truth", 5, {"image": path, "seed": 4, "annotations": str(other)})
    t4 = engine.until(("trace", "error"))[2]["trace"]
    assert len(t4.truth) == 1 and t4.diagnosis.objects[0].verdict is not None and t4.features["0"].data.source == 2
    # a bad file: the trace without truth, then one line naming the file
    (tmp_path / "bad.json").write_text("[")
    engine.send("truth", 6, {"image": path, "annotations": str(tmp_path / "bad.json")})
    t5 = engine.until(("trace",))[2]["trace"]
    _, seq, err = engine.until(("error",))
    assert t5.truth is None and t5.training is None and seq == 6 and err["kind"] == "truth"
    assert err["message"].startswith(f"{tmp_path / 'bad.json'}: ") and "\n" not in err["message"]
    # an image without an entry in the given annotations falls back to the one beside it
    shutil.copy(DEMO_IMAGES / "scene_1.png", tmp_path / "scene_1.png")
    engine.send("trace", 7, {"image": str(tmp_path / "scene_1.png"), "params": {},
                             "truth": {"annotations": str(other)}})
    t6 = engine.until(("trace",))[2]["trace"]
    assert t6.truth is None and "no entry in one.json" in engine.until(("status",))[2]["text"]
    # a request for an image no longer traced is dropped
    engine.send("truth", 8, {"image": path, "seed": 1})
    assert engine.until(("dropped", "trace"))[0] == "dropped"


def _notes(engine, seq):
    """The status lines of request ``seq`` and everything before the next request's reply (a fetch of
    nothing, answered ``gone`` after ``seq``'s notes)."""
    engine.until(("trace",), seq)
    engine.send("fetch", seq + 1, {"source": -1, "path": ["nothing"]})
    out = []
    while True:
        kind, s, body = engine.ch.recv()
        if kind == "gone" and s == seq + 1:
            return out
        if kind == "status":
            out.append(body["text"])


def test_names_the_model_lacks_are_noted_once_per_source_per_model_load(engine, tmp_path):
    from .test_cli_truth import SCENES, coco

    names = ["person", "rectangle", "circle", "rectangle", "person", "dog"][:len(SCENES[0]["objects"])]
    ann = str(coco(tmp_path, names))
    shutil.copy(ann, tmp_path / "other.json")
    note = "coco.json: 2 objects of 'person': not a class of this model; 1 object of 'dog': not a class of this model"
    engine.send("load", 1, {"name": "demo", "weights": None, "device": "cpu"})
    engine.until(("loaded",))
    seq = 10
    for img, annotations, want in (("img1", ann, [note]), ("img2", ann, []), ("img1", ann, []),
                                   ("img2", str(tmp_path / "other.json"), [note.replace("coco.json", "other.json")]),
                                   ("reload", None, None), ("img2", ann, [note])):
        if img == "reload":
            engine.send("load", seq, {"name": "demo", "weights": None, "device": "cpu"})
            engine.until(("loaded",), seq)
        else:
            path = str(tmp_path / f"{img}.png")
            engine.send("trace", seq, {"image": path, "name": path, "params": {}, "truth": {"annotations": annotations}})
            assert [t for t in _notes(engine, seq) if "not a class" in t] == want, (img, annotations)
        seq += 10
