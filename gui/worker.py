"""The engine process and its Qt face: requests go down a pipe, replies come back as signals on
the GUI thread. A newer request makes older replies stale: they are dropped here by sequence."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from core.engine import recv_reply


class _Reader(QThread):
    received = Signal(object)

    def __init__(self, conn):
        super().__init__()
        self._conn = conn

    def run(self) -> None:
        while True:
            try:
                msg = recv_reply(self._conn)
            except (EOFError, OSError):
                return
            self.received.emit(msg)


class EngineClient(QObject):
    """Owns the engine process. Signals arrive on the GUI thread."""

    loaded = Signal(dict)
    traced = Signal(object)  # a numpy-only core.stages.Trace
    failed = Signal(str, str)  # request kind, one-line message
    status = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.pop("QT_QPA_PLATFORM", None)
        self._proc = subprocess.Popen([sys.executable, "-m", "core.engine", str(theirs.fileno())],
                                      pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self._reader = _Reader(self._conn)
        self._reader.received.connect(self._on_message)
        self._reader.start()
        self._seq = 0
        self._latest = {"load": 0, "trace": 0}
        self._pending: set[int] = set()

    # ---- requests
    def _send(self, msg) -> None:
        try:
            self._conn.send(msg)
        except (BrokenPipeError, OSError):
            self.failed.emit("engine", "the model engine stopped; restart the app")

    def _next(self, group: str) -> int:
        self._seq += 1
        self._latest[group] = self._seq
        return self._seq

    def load(self, name: str, weights: str | None, device: str = "cpu") -> int:
        seq = self._next("load")
        self._latest["trace"] = seq  # traces of the old model are stale
        self._send(("load", seq, name, weights, device))
        self._set_pending(seq)
        return seq

    def trace(self, image, name: str, params: dict) -> int:
        seq = self._next("trace")
        self._send(("trace", seq, image, name, dict(params)))
        self._set_pending(seq)
        return seq

    def retrace(self, params: dict) -> int:
        seq = self._next("trace")
        self._send(("retrace", seq, dict(params)))
        self._set_pending(seq)
        return seq

    def _set_pending(self, seq: int) -> None:
        was = bool(self._pending)
        self._pending.add(seq)
        if not was:
            self.busy_changed.emit(True)

    def _done(self, seq: int) -> None:
        self._pending = {s for s in self._pending if s > seq}
        if not self._pending:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    # ---- replies
    def _on_message(self, msg) -> None:
        kind, seq = msg[0], msg[1]
        if kind == "status":
            self.status.emit(msg[2])
            return
        if kind == "loaded":
            self._done(seq)
            if seq >= self._latest["load"]:
                self.loaded.emit(msg[2])
            return
        if kind == "trace":
            self._done(seq)
            if seq >= self._latest["trace"]:
                self.traced.emit(msg[2])
            return
        if kind == "error":
            self._done(seq)
            group = "load" if msg[2] == "load" else "trace"
            if seq >= self._latest[group] or msg[2] == "load":
                self.failed.emit(msg[2], msg[3])

    # ---- lifetime
    def is_alive(self) -> bool:
        return self._proc.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        if self.is_alive():
            try:
                self._conn.send(("quit",))
            except (BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
        try:
            self._conn.close()
        except OSError:
            pass
        self._reader.wait(2000)
