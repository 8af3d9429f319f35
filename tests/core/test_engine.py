"""The engine process the desktop app drives: load, trace, retrace, errors, stale requests."""

import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from core.engine import recv_reply, send_reply

from .conftest import noise_image

ROOT = Path(__file__).resolve().parents[2]


def test_out_of_band_roundtrip():
    a, b = socket.socketpair()
    ca, cb = Connection(a.detach()), Connection(b.detach())
    arr = np.arange(1_000_000, dtype=np.float32).reshape(1000, 1000)  # larger than a socket buffer
    sender = threading.Thread(target=send_reply, args=(ca, ("trace", 3, {"x": arr, "y": [arr[:2], "text"]})))
    sender.start()
    kind, seq, obj = recv_reply(cb)
    sender.join(10)
    assert (kind, seq) == ("trace", 3) and np.array_equal(obj["x"], arr) and obj["y"][1] == "text"


@pytest.fixture
def engine():
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", "core.engine", str(theirs.fileno())], cwd=ROOT,
                            pass_fds=[theirs.fileno()])
    theirs.close()
    conn = Connection(ours.detach())
    yield conn
    conn.send(("quit",))
    assert proc.wait(30) == 0


def _next(conn, kinds=("loaded", "trace", "error")):
    while True:
        msg = recv_reply(conn)
        if msg[0] in kinds:
            return msg


def test_engine_loads_traces_retraces_and_reports_errors(engine):
    engine.send(("load", 1, "seed-alexnet", "random:1", "cpu"))
    kind, seq, info = _next(engine)
    assert (kind, seq) == ("loaded", 1) and info["name"] == "seed-alexnet" and len(info["class_names"]) == 17
    engine.send(("trace", 2, noise_image(120, 160), "a.png", {"box_score_thresh": 0.0}))
    kind, seq, tr = _next(engine)
    assert (kind, seq) == ("trace", 2) and tr.meta.name == "a.png" and tr._state is None
    assert tr.detections.suppressed_by.shape == tr.detections.scores.shape  # lineage resolved
    engine.send(("retrace", 3, {"box_nms_thresh": 0.1}))
    kind, seq, tr2 = _next(engine)
    assert seq == 3 and tr2.params["box_nms_thresh"] == 0.1 and len(tr2.detections.keep) <= len(tr.detections.keep)
    engine.send(("load", 4, "demo", "/no/such.pt", "cpu"))
    kind, seq, what, message = _next(engine)
    assert (kind, seq, what) == ("error", 4, "load") and message == "/no/such.pt: no such checkpoint file"
    # the old model is still there; of two traces sent together only the newest need be answered
    engine.send(("trace", 5, noise_image(100, 100), "b.png", {}))
    engine.send(("trace", 6, noise_image(100, 100), "c.png", {}))
    replies = [_next(engine)]
    while replies[-1][1] != 6:
        replies.append(_next(engine))
    assert replies[-1][2].meta.name == "c.png" and len(replies) <= 2
