"""The engine process and its Qt face. Nothing here waits on the GUI thread: a request goes into a
newest-wins slot and a writer thread sends it; a reader thread receives replies (arrays straight
from the socket into numpy) and hands them to the GUI thread as signals. Replies to requests a
newer one made stale are dropped here by sequence number. If the engine dies, ``died`` says so;
``restart`` starts a fresh one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.engine.protocol import Channel, ProtocolError

GROUP = {"load": "model", "trace": "trace", "retrace": "trace", "truth": "trace", "anchors": "trace"}  # the busy indicator waits for these


class _Bridge(QObject):
    """Carries messages from the reader thread to the GUI thread (a queued signal)."""

    message = Signal(str, int, object)
    ended = Signal(int, str)  # generation, why


class EngineClient(QObject):
    """Owns the engine process. Signals arrive on the GUI thread."""

    loaded = Signal(dict)
    traced = Signal(object)  # a lean core.tracing.types.Trace
    part = Signal(int, tuple, object)  # source, path, array
    failed = Signal(str, str)  # request kind, one-line message
    status = Signal(str)
    busy_changed = Signal(bool)
    died = Signal(str, bool)  # why, and whether a load or a trace was on its way (now lost)
    replied = Signal(str, int, object)  # every reply as it comes (kind, seq, body): progress, tests

    def __init__(self, parent=None):
        super().__init__(parent)
        self._bridge = _Bridge()
        self._bridge.message.connect(self._on_message)
        self._bridge.ended.connect(self._on_ended)
        self._seq = 0
        self._latest = {"model": 0, "trace": 0}
        self._pending: dict[str, set] = {"model": set(), "trace": set()}
        self._gen = 0
        self._start()

    # ---- process
    def _start(self) -> None:
        self._gen += 1
        ours, theirs = socket.socketpair()  # both ends close-on-exec (PEP 446); pass_fds hands one over
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.pop("QT_QPA_PLATFORM", None)
        self._proc = subprocess.Popen([sys.executable, "-m", "core.engine", str(theirs.fileno())],
                                      pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._channel = Channel(ours)
        self._stopping = False
        self.dead = False  # the process ended: a request is not queued for it (it would wait forever)
        self._slots: dict = {}  # key -> (kind, seq, body), newest wins per key
        self._cond = threading.Condition()
        gen = self._gen
        self._writer = threading.Thread(target=self._write, args=(self._channel, gen), name="engine-writer",
                                        daemon=True)
        self._reader = threading.Thread(target=self._read, args=(self._channel, self._proc, gen),
                                        name="engine-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    def _write(self, channel: Channel, gen: int) -> None:
        while True:
            with self._cond:
                while not self._slots and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._slots:
                    return
                key = next(iter(self._slots))
                kind, seq, body = self._slots.pop(key)
            try:
                channel.send(kind, seq, body)
            except (OSError, ProtocolError):
                return  # the reader sees the end and reports it
            if kind == "quit":
                return

    def _read(self, channel: Channel, proc, gen: int) -> None:
        why = ""
        while True:
            try:
                kind, seq, body = channel.recv()
            except EOFError:
                break
            except (OSError, ProtocolError) as err:
                why = str(err)
                break
            self._bridge.message.emit(kind, seq, body)
        try:
            code = proc.wait(5)
            why = why or (f"exit code {code}" if code >= 0 else f"killed by signal {-code}")
        except subprocess.TimeoutExpired:
            why = why or "no reply"
        self._bridge.ended.emit(gen, why)

    # ---- requests (return at once)
    def _put(self, key, kind: str, body=None, group: str | None = None) -> int:
        if self.dead:  # said once more, with the way out; nothing pending, no busy bar
            self.died.emit("the model engine is not running", False)
            return -1
        self._seq += 1
        seq = self._seq
        if group is not None:
            self._latest[group] = seq
            self._set_pending(group, seq)
        with self._cond:
            self._slots.pop(key, None)  # newest wins: an unsent older request of this kind is dropped
            self._slots[key] = (kind, seq, body)
            self._cond.notify()
        return seq

    def load(self, name: str, weights: str | None, device: str = "cpu", trust: bool = False) -> int:
        self._latest["trace"] = self._seq + 1  # traces of the old model are stale
        with self._cond:
            for k in ("trace", "retrace"):
                self._slots.pop(k, None)
        return self._put("load", "load", {"name": name, "weights": weights, "device": device, "trust": bool(trust)},
                         "model")

    def trace(self, path: str, params: dict, truth: dict | None = None) -> int:
        """Trace the image file at ``path`` (the engine decodes it); ``truth``: where its ground
        truth comes from and the training view's seed (core.engine.truth_handlers)."""
        with self._cond:
            for k in ("retrace", "truth"):
                self._slots.pop(k, None)
        body = {"image": str(path), "name": str(path), "params": dict(params)}
        if truth is not None:
            body["truth"] = dict(truth)
        return self._put("trace", "trace", body, "trace")

    def truth(self, path: str, options: dict) -> int:
        """The current trace of ``path`` with other annotations or another seed (no backbone)."""
        return self._put("truth", "truth", {"image": str(path), **dict(options)}, "trace")

    def retrace(self, params: dict) -> int:
        return self._put("retrace", "retrace", {"params": dict(params)}, "trace")

    def anchors(self, body: dict) -> int:
        """The current trace with a hypothetical anchor generator, or the model's (core.engine.anchor_handlers)."""
        return self._put("anchors", "anchors", dict(body), "trace")

    def ask(self, kind: str, body=None) -> int:
        """Any other request (the model chooser's: core.engine.model_handlers), newest wins per kind; its
        replies come on ``replied`` with the returned sequence number."""
        return self._put(("ask", kind), kind, body)

    def fetch(self, source: int, path: tuple) -> int:
        return self._put(("fetch", source, tuple(path)), "fetch", {"source": int(source), "path": tuple(path)})

    # ---- busy
    def _set_pending(self, group: str, seq: int) -> None:
        was = self.busy
        self._pending[group].add(seq)
        if not was:
            self.busy_changed.emit(True)

    def _done(self, group: str, seq: int) -> None:
        was = self.busy
        self._pending[group] = {s for s in self._pending[group] if s > seq}
        if was and not self.busy:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return any(self._pending.values())

    # ---- replies
    def _on_message(self, kind: str, seq: int, body) -> None:
        body = body if isinstance(body, dict) else {}
        self.replied.emit(kind, seq, body)
        if kind == "status":
            self.status.emit(str(body.get("text", "")))
        elif kind == "loaded":
            self._done("model", seq)
            if seq >= self._latest["model"]:
                self.loaded.emit(body)
        elif kind == "trace":
            self._done("trace", seq)
            if seq >= self._latest["trace"]:
                self.traced.emit(body.get("trace"))
        elif kind == "part":
            self.part.emit(int(body.get("source", -1)), tuple(body.get("path", ())), body.get("value"))
        elif kind in ("cancelled", "dropped"):
            group = GROUP.get(str(body.get("kind")))
            if group:
                self._done(group, seq)
        elif kind == "error":
            what = str(body.get("kind", ""))
            group = GROUP.get(what)
            if group:
                self._done(group, seq)
            if group is None or seq >= self._latest[group] or what == "load":
                self.failed.emit(what, str(body.get("message", "")))

    def _on_ended(self, gen: int, why: str) -> None:
        if gen != self._gen or self._stopping:
            return
        was = self.busy
        self.dead = True
        self._pending = {"model": set(), "trace": set()}
        if was:
            self.busy_changed.emit(False)
        self.died.emit(f"the model engine stopped ({why})", was)

    # ---- lifetime
    @property
    def pid(self) -> int:
        return self._proc.pid

    def is_alive(self) -> bool:
        return self._proc.poll() is None

    def restart(self) -> None:
        """A fresh engine (the caller loads the model and traces again)."""
        self.stop()
        self._latest = {"model": self._seq, "trace": self._seq}
        self._start()

    def stop(self, timeout: float = 3.0) -> None:
        with self._cond:
            self._slots.clear()
            if self.is_alive():
                self._seq += 1
                self._slots["quit"] = ("quit", self._seq, None)
            self._stopping = True
            self._cond.notify()
        self._writer.join(timeout)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._channel.close()
        self._reader.join(timeout)
