import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.engine.protocol import Channel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="session")
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random image: structure for random-weight models to respond to."""
    import cv2

    r = np.random.default_rng(seed)
    small = r.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


# ---------------------------------------------------------------- the engine process
class Engine:
    def __init__(self, stderr=None):
        ours, theirs = socket.socketpair()
        self.fd = theirs.fileno()
        self.proc = subprocess.Popen([sys.executable, "-m", "core.engine", str(self.fd)], cwd=ROOT,
                                     pass_fds=[self.fd], stderr=stderr)
        theirs.close()
        self.ch = Channel(ours)
        self.log = []

    def send(self, kind, seq, body=None):
        self.ch.send(kind, seq, body)

    def until(self, kinds, seq=None):
        """Replies up to and including the first of ``kinds`` (for ``seq``)."""
        while True:
            msg = self.ch.recv()
            self.log.append(msg[:2])
            if msg[0] in kinds and (seq is None or msg[1] == seq):
                return msg


@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.send("quit", 0)
    assert e.proc.wait(30) == 0
