"""Two models stay loaded in the engine, each with its newest trace: flipping back to a model and its
image (the app's B key on a comparison) loads nothing and reruns no backbone, and gives the same
detections and verdicts as the first trace."""

import numpy as np

from core.paths import DEMO_IMAGES


def _replies(engine, seq):
    out = []
    while True:
        kind, s, body = engine.ch.recv()
        if s == seq:
            out.append((kind, body))
            if kind in ("trace", "loaded", "error"):
                return out


def test_flipping_between_two_models_reuses_both(engine):
    img = str(sorted(DEMO_IMAGES.glob("*.png"))[0])
    a = {"name": "demo", "weights": None, "device": "cpu"}
    b = {"name": "demo", "weights": "random:3", "device": "cpu"}
    got = []
    seq = 1
    for step, (model, params) in enumerate(((a, {}), (b, {"box_score_thresh": 0.3}), (a, {}),
                                            (b, {"box_score_thresh": 0.3}))):
        engine.send("load", seq, model)
        assert _replies(engine, seq)[-1][0] == "loaded"
        engine.send("trace", seq + 1, {"image": img, "name": img, "params": params, "truth": {}})
        replies = _replies(engine, seq + 1)
        notes = [body["text"] for kind, body in replies if kind == "status"]
        tr = replies[-1][1]["trace"]
        assert any("the trace kept for demo" in t for t in notes) == (step >= 2), (step, notes)
        assert tr.weights == ("demo" if model is a else "random:3") and tr.diagnosis is not None
        assert tr.params["box_score_thresh"] == params.get("box_score_thresh", 0.5)
        if step >= 2:  # the same detections and verdicts as the first trace of that model
            first = got[step - 2]
            assert np.array_equal(first.detections.final_boxes_image, tr.detections.final_boxes_image)
            assert [o.verdict for o in first.diagnosis.objects] == [o.verdict for o in tr.diagnosis.objects]
        got.append(tr)
        seq += 10
    assert [o.verdict for o in got[0].diagnosis.objects] != [o.verdict for o in got[1].diagnosis.objects]
