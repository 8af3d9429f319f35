"""The engine process and its protocol: typed messages (no pickle), caps, a socket no child
inherits, load/trace/retrace/fetch, newest wins, and a newer trace cancels the running one."""

import ast
import json
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import core
from core.engine import protocol
from core.engine.protocol import Channel, ProtocolError
from core.tracing.parts import Withheld

from .conftest import noise_image

ROOT = Path(__file__).resolve().parents[2]


def _pair():
    a, b = socket.socketpair()
    return Channel(a), Channel(b)


def test_a_trace_travels_typed_with_raw_frames():
    tr = core.trace(core.load_model("seed-alexnet", weights="random:1", box_score_thresh=0.0),
                    noise_image(120, 160))
    from dataclasses import replace

    body = {"trace": replace(tr, _state=None), "w": Withheld(("features", "0", "data"), (256, 9, 15), "float32", 4),
            "big": np.arange(3_000_000, dtype=np.float32).reshape(1000, 3000), "t": (1, "a", None, 2.5)}
    a, b = _pair()
    sender = threading.Thread(target=a.send, args=("trace", 3, body))  # larger than a socket buffer
    sender.start()
    kind, seq, got = b.recv()
    sender.join(10)
    assert (kind, seq) == ("trace", 3) and got["t"] == (1, "a", None, 2.5)
    assert np.array_equal(got["big"], body["big"])
    t2 = got["trace"]
    assert type(t2) is type(tr) and t2.meta.name == tr.meta.name and t2.class_names == tr.class_names
    assert np.array_equal(t2.features["0"].data, tr.features["0"].data) and t2.features["0"].stride == (35, 34)
    assert np.array_equal(t2.detections.suppressed_by, tr.detections.suppressed_by)  # lineage travels resolved
    assert np.array_equal(t2.proposals.keep, tr.proposals.keep) and t2.params == tr.params
    w = got["w"]
    assert isinstance(w, Withheld) and (w.path, w.shape, w.dtype, w.source) == (("features", "0", "data"),
                                                                               (256, 9, 15), np.float32, 4)


def _raw(head: dict, frames: bytes = b"") -> bytes:
    data = json.dumps(head).encode()
    return b"RCNL" + struct.pack("<I", len(data)) + data + frames


@pytest.mark.parametrize("wire, why", [
    (b"\x80\x05\x95" + b"\0" * 20, "not an R-CNN Lens message"),  # a pickle
    (b"RCNL" + struct.pack("<I", protocol.MAX_HEADER + 1), "over the cap"),
    (_raw({"kind": "x", "seq": 1, "body": {"$c": "Popen", "f": {}}}), "unknown type"),
    (_raw({"kind": "x", "seq": 1, "body": {"$c": "ImageMeta", "f": {"evil": 1}}}), "unknown fields"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["object", [1]]]}), "bad frame"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["float64", [1 << 20, 1 << 20]]]}), "over the cap"),
    (_raw({"kind": "x", "seq": 1, "body": {"$a": 3}}), "bad frame reference"),
    (_raw({"kind": "x", "body": None}), "lacks kind and seq"),
    # sizes that wrap in int64 or do not fit one, keys that cannot be keys, type names that are not names
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["float64", [2**31] * 3]]}), "over the cap"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["float64", [10**30]]]}), "bad frame"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["float64", [2**62, 2**62, 0]]]}), "bad frame"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [["float64", [5, 0]]]}), None),
    (_raw({"kind": "x", "seq": 1, "body": {"$d": [[[1], 2]]}}), "bad dict key"),
    (_raw({"kind": "x", "seq": 1, "body": {"$d": [[{"$t": [[1]]}, 2]]}}), "bad dict key"),
    (_raw({"kind": "x", "seq": 1, "body": {"$c": [1], "f": {}}}), "bad value"),
    (_raw({"kind": "x", "seq": 1, "body": {"$x": [1], "v": 1}}), "bad value"),
    (_raw({"kind": "x", "seq": 1, "body": None, "frames": [[["float64"], [1]]]}), "bad frame"),
])
def test_anything_else_is_refused(wire, why):
    """The engine's reader and the app's read with this one function: a malformed message is a
    ProtocolError (the connection is then closed), never another exception that kills the reader."""
    a, b = socket.socketpair()
    a.sendall(wire)
    a.close()
    if why is None:  # a frame of no bytes (a zero dimension) is a valid empty array
        assert protocol.recv(b)[0] == "x"
        return
    with pytest.raises(ProtocolError, match=why):
        protocol.recv(b)


@pytest.mark.parametrize("wire", [
    _raw({"kind": "load", "seq": 1, "body": None, "frames": [["float64", [2**31] * 3]]}),
    _raw({"kind": "load", "seq": 1, "body": {"$d": [[{"$t": [[1]]}, 2]]}}),
    _raw({"kind": "load", "seq": 1, "body": {"$c": [1], "f": {}}}),
])
def test_the_engine_closes_on_a_malformed_message_quietly(tmp_path, wire):
    from .conftest import Engine

    with open(tmp_path / "err.txt", "w+b") as err:
        e = Engine(stderr=err)
        e.ch.sock.sendall(wire)
        kind, _, body = e.ch.recv()
        assert kind == "error" and body["kind"] == "protocol"
        with pytest.raises(EOFError):
            e.ch.recv()
        assert e.proc.wait(30) == 0
        err.seek(0)
        assert err.read() == b""


def test_a_request_of_the_wrong_types_is_an_error_reply_and_the_engine_goes_on(tmp_path):
    from .conftest import Engine

    bad = [("load", {"name": 7}), ("trace", {"image": [1]}), ("trace", {"image": np.zeros((2, 2), np.float32)}),
           ("fetch", {"source": 1, "path": [[1]]}), ("fetch", {"source": "x"}), ("retrace", {"params": [1]}),
           ("truth", {"image": 3}), ("suggest", {"path": [1]}), ("download", {"preset": 5})]
    with open(tmp_path / "err.txt", "w+b") as err:
        e = Engine(stderr=err)
        e.send("load", 1, {"name": "seed-alexnet", "weights": "random:1"})
        e.until(("loaded",), 1)
        for seq, (kind, body) in enumerate(bad, start=2):
            e.send(kind, seq, body)
            reply = e.until(("error", "gone", "dropped"), seq)
            assert reply[0] == "error" and "\n" not in reply[2]["message"], (kind, reply)
        e.send("trace", 50, {"image": np.zeros((40, 50, 3), np.uint8), "params": {"box_nms_thresh": "x"}})
        assert "box_nms_thresh: must be a number" in e.until(("error",), 50)[2]["message"]
        e.send("trace", 51, {"image": np.zeros((40, 50, 3), np.uint8)})
        assert e.until(("trace", "error"), 51)[0] == "trace"  # the engine goes on
        e.send("quit", 0)
        assert e.proc.wait(30) == 0
        err.seek(0)
        assert b"Traceback" not in err.read()


def test_unregistered_objects_are_not_sent():
    with pytest.raises(ProtocolError, match="not a registered type"):
        protocol.encode("x", 1, {"f": open})
    with pytest.raises(ProtocolError, match="dtype object"):
        protocol.encode("x", 1, np.array([None]))


def test_no_pickle_on_either_side():
    for path in [*(ROOT / "core" / "engine").glob("*.py"), ROOT / "gui" / "worker.py"]:
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in ("pickle", "multiprocessing", "dill", "cloudpickle")], rel


def test_the_engines_socket_is_not_inheritable(engine):
    engine.send("load", 1, {"name": "seed-alexnet", "weights": "random:1", "device": "cpu"})
    engine.until(("loaded",))  # the engine has set up its socket by now
    flags = int(Path(f"/proc/{engine.proc.pid}/fdinfo/{engine.fd}").read_text().split("flags:")[1].split()[0], 8)
    assert flags & os.O_CLOEXEC, "a process the engine starts would inherit the model's socket"


def test_load_trace_fetch_retrace_and_errors(engine, tmp_path):
    engine.send("load", 1, {"name": "seed-alexnet", "weights": "random:1", "device": "cpu"})
    _, seq, info = engine.until(("loaded", "error"))
    assert seq == 1 and info["name"] == "seed-alexnet" and len(info["class_names"]) == 17
    assert info["params"]["box_nms_thresh"] == 0.5 and info["params"]["rpn_pre_nms_top_n_test"] == 1000
    img = noise_image(120, 160)
    engine.send("trace", 2, {"image": img, "name": "a.png", "params": {"box_score_thresh": 0.0}})
    _, seq, body = engine.until(("trace", "error"))
    tr = body["trace"]
    assert seq == 2 and tr.meta.name == "a.png" and tr._state is None
    # heavy parts stay in the engine; their shapes travel
    w = tr.features["0"].data
    assert isinstance(w, Withheld) and w.shape == (256, 9, 12) and w.source == 2
    assert isinstance(tr.box_head.pooled, Withheld) and isinstance(tr.meta.input, Withheld)
    assert tr.detections.suppressed_by.shape == tr.detections.scores.shape  # lineage resolved
    # ... and come on demand, equal to a trace made here
    ref = core.trace(core.load_model("seed-alexnet", weights="random:1"), img, box_score_thresh=0.0)
    engine.send("fetch", 3, {"source": 2, "path": w.path})
    _, _, part = engine.until(("part", "gone"))
    assert part["path"] == ("features", "0", "data") and np.array_equal(part["value"], ref.features["0"].data)
    engine.send("fetch", 4, {"source": 2, "path": ("box_head", "pooled", 1)})  # one RoI's row
    _, _, part = engine.until(("part", "gone"))
    assert np.array_equal(part["value"], ref.box_head.pooled[1])
    # a retrace of the box thresholds keeps the feature maps' source: nothing to fetch again
    engine.send("retrace", 5, {"params": {"box_nms_thresh": 0.1}})
    _, seq, body = engine.until(("trace", "error"))
    tr2 = body["trace"]
    assert seq == 5 and tr2.params["box_nms_thresh"] == 0.1 and tr2.features["0"].data.source == 2
    engine.send("retrace", 6, {"params": {"rpn_nms_thresh": 0.3}})
    tr3 = engine.until(("trace",))[2]["trace"]
    assert tr3.box_head.pooled.source == 6 and tr3.features["0"].data.source == 2
    # errors: one line, naming the file
    engine.send("load", 7, {"name": "demo", "weights": "/no/such.pt", "device": "cpu"})
    _, seq, err = engine.until(("error",))
    assert (seq, err["kind"], err["message"]) == (7, "load", "/no/such.pt: no such checkpoint file")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    engine.send("trace", 8, {"image": str(bad), "params": {}})
    assert engine.until(("error",))[2]["message"] == f"{bad}: not an image OpenCV can read"
    engine.send("fetch", 9, {"source": 99, "path": ("features", "0", "data")})
    assert engine.until(("part", "gone"))[0] == "gone"
    engine.send("train", 10, {})
    assert "unknown" in engine.until(("error",))[2]["message"]


def test_newest_request_wins_and_a_newer_trace_cancels_the_running_one(engine):
    big = noise_image(480, 640, seed=1)
    engine.send("load", 1, {"name": "fasterrcnn_resnet50_fpn", "weights": "random:0", "device": "cpu"})
    engine.until(("started",), 1)
    # while the model loads, two traces queue: the older is dropped unseen
    engine.send("trace", 2, {"image": big, "name": "a", "params": {}})
    engine.send("trace", 3, {"image": big, "name": "b", "params": {}})
    assert engine.until(("dropped", "trace"), 2)[0] == "dropped"
    engine.until(("started",), 3)
    # trace 3 is running (a ResNet-50 takes seconds here): a newer one stops it at its next stage
    engine.send("trace", 4, {"image": noise_image(64, 80), "name": "c", "params": {}})
    kind, _, body = engine.until(("cancelled", "trace"), 3)
    assert kind == "cancelled" and body["kind"] == "trace"
    kind, _, body = engine.until(("trace", "error"), 4)
    assert kind == "trace" and body["trace"].meta.name == "c"
    assert ("trace", 2) not in engine.log and ("trace", 3) not in engine.log


def test_the_runner_stops_between_stages():
    from core.tracing.runner import Cancelled

    model = core.load_model("demo", weights="random:1")
    calls = []
    model.module.rpn.head.register_forward_pre_hook(lambda *a: calls.append("rpn_head"))
    model.module.roi_heads.box_head.register_forward_pre_hook(lambda *a: calls.append("box_head"))
    asked = []

    def cancel():
        asked.append(1)
        return len(asked) >= 3  # after transform, backbone: stop after rpn_head

    with pytest.raises(Cancelled, match="after rpn_head"):
        core.trace(model, noise_image(100, 120), cancel=cancel)
    assert calls == ["rpn_head"]  # nothing after the stage that asked ran
    tr = core.trace(model, noise_image(100, 120))
    with pytest.raises(Cancelled):
        core.retrace(tr, cancel=lambda: True, rpn_nms_thresh=0.5)


def test_the_extra_heads_travel_and_their_large_arrays_come_on_demand(engine):
    """A Mask R-CNN's trace (a user builder: the tiny one of the tests) through the engine: the mask
    head's dataclass travels because it is registered; its pasted masks stay in the engine until the
    masks stage asks for them."""
    from core.overlays import layers_for
    from core.tracing.parts import Missing, fill

    engine.send("load", 1, {"name": "tests/core/tiny_models.py:tiny_mask_rcnn", "weights": "random:1",
                            "device": "cpu"})
    assert engine.until(("loaded", "error"))[0] == "loaded"
    engine.send("trace", 2, {"image": noise_image(96, 128), "name": "m.png", "params": {}})
    tr = engine.until(("trace", "error"))[2]["trace"]
    assert type(tr.masks).__name__ == "MaskHead" and len(tr.masks) == len(tr.detections.keep) > 0
    assert isinstance(tr.masks.pasted, Withheld) and isinstance(tr.masks.logits, Withheld)
    with pytest.raises(Missing) as m:
        layers_for(tr, "masks")
    engine.send("fetch", 3, {"source": m.value.source, "path": m.value.path})
    _, _, part = engine.until(("part", "gone"))
    full = fill(tr, {(m.value.source, m.value.path): part["value"]})
    assert layers_for(full, "masks").layers  # drawn once the part came


def test_truth_and_the_training_view_travel_by_registration():
    from core.paths import DEMO_IMAGES
    from core.training.targets import attach
    from core.truth.beside import find_for_image

    model = core.load_model("demo")
    path = DEMO_IMAGES / "scene_1.png"
    tr = core.trace(model, str(path))
    tr = attach(tr, find_for_image(path, tr.meta.original_size, model.class_names), seed=0)
    from core.engine.server import portable

    a, b = _pair()
    sender = threading.Thread(target=a.send, args=("trace", 1, {"trace": portable(tr)}))
    sender.start()
    got = b.recv()[2]["trace"]
    sender.join(10)
    assert got.truth.names == tr.truth.names and np.array_equal(got.truth.boxes, tr.truth.boxes)
    assert got.training.losses == tr.training.losses and got.training.seed == 0
    assert np.array_equal(got.training.rpn.label, tr.training.rpn.label)
    assert np.array_equal(got.training.roi.sampled, tr.training.roi.sampled)
