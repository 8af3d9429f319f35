"""The model engine: a process of its own, so that torch and the Python parts of a trace never
hold the app's GIL. It speaks core.engine.protocol (JSON header + raw array frames) over one socket.

Requests (``kind``: body) and what they answer::

    load      {"name", "weights", "device", "trust"} -> loaded {"name", "weights", "class_names", "device", "params",
                                                             "summary", "trusted", "random", "overrides"}
    trace     {"image": path | array, "name", "params"}   -> trace {"trace": a lean Trace}
    retrace   {"params"}  (the newest trace)      -> trace {"trace": ...}
    fetch     {"source", "path"}                  -> part {"source", "path", "value"} | gone {...}
    quit
    models, suggest, download, cancel: the model chooser's (core.engine.model_handlers)
    truth: the current trace with other annotations or seed (core.engine.truth_handlers)

Every request may also answer ``started``, ``status`` {"text"}, ``error`` {"kind", "message"},
``cancelled`` {"kind", "at"} or ``dropped`` {"kind"}. A reader thread takes requests as they come:
a newer ``load``/``trace`` drops the pending older ones (newest wins) and *cancels* a running trace
at its next stage (between the runner's stages and between the backbone's modules), so paging
through photos never waits for a trace nobody will look at.

Traces travel lean (core.tracing.parts): feature maps, the input tensor and the RoIAlign output stay here
until the app fetches the ones a visible stage needs. A part a retrace did not change keeps the id
of the trace that first sent it, so the app need not fetch it again.

A new request kind is one handler in a handler module's ``KINDS`` (core.engine.main assembles
them; this module imports none of them)::

    def _diagnose(engine, job): ...; job.reply("diagnosis", {...})
    KINDS = (handles("diagnose", _diagnose, priority=4, supersedes=("diagnose",)),)

What a trace carries beyond the runner's (ground truth, its training view and verdicts:
core.engine.truth_handlers) is one enricher, ``fn(engine, job, full) -> (full, notes)``, run on
every trace and retrace before it is sent; ``notes`` are replies sent after it.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

from core.engine.protocol import Channel, ProtocolError
from core.errors import LensError

KEEP_TRACES = 3  # the parts of the last few traces stay fetchable


@dataclass(frozen=True)
class Kind:
    name: str
    fn: Callable
    priority: int  # among pending requests, the lowest runs first (then the oldest)
    supersedes: tuple[str, ...]  # pending older requests of these kinds are dropped
    cancels: tuple[str, ...]  # a running request of these kinds stops at its next stage


def handles(name: str, fn: Callable, priority: int = 5, supersedes=(), cancels=()) -> Kind:
    """The request kind ``name``, served by ``fn(engine, job)``."""
    return Kind(name, fn, priority, tuple(supersedes), tuple(cancels))


class Job:
    def __init__(self, kind: str, seq: int, body, channel: Channel | None):
        self.kind, self.seq, self.body = kind, seq, body if isinstance(body, dict) else {}
        self._cancel = threading.Event()
        self._channel = channel

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise runner.Cancelled if a newer request cancelled this one."""
        if self._cancel.is_set():
            from core.tracing.runner import Cancelled

            raise Cancelled(self.kind)

    def get(self, name: str, *types, default=None):
        """The body's ``name`` when it is one of ``types`` (``default`` when absent or null); a value of
        another type is the sender's mistake: one line (an error reply), never a crash."""
        value = self.body.get(name)
        if value is None:
            return default
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(t.__name__ for t in types)
            raise LensError(f"request {self.kind!r}", f"'{name}' must be {want}, not {type(value).__name__}")
        return value

    @contextmanager
    def watching(self, module):
        """Check for cancellation before every module of ``module.backbone``: a newer request stops
        a trace (or a training step's backbone) inside the backbone, not only between stages."""
        handles = [m.register_forward_pre_hook(lambda *_: self.check()) for m in module.backbone.modules()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def reply(self, kind: str, body=None) -> None:
        if self._channel is not None:
            self._channel.send(kind, self.seq, body)


class Inbox:
    """Pending requests, newest wins per the kinds' rules; ``take`` blocks for the next one."""

    def __init__(self, kinds: dict[str, Kind], channel: Channel | None = None):
        self.kinds = kinds
        self._cond = threading.Condition()
        self._pending: list[Job] = []
        self._running: Job | None = None
        self._closed = False
        self._channel = channel

    def put(self, job: Job) -> None:
        spec = self.kinds.get(job.kind)
        dropped = []
        with self._cond:
            if spec is not None:
                keep = []
                for p in self._pending:
                    (dropped if p.kind in spec.supersedes else keep).append(p)
                self._pending = keep
                if self._running is not None and self._running.kind in spec.cancels:
                    self._running.cancel()
            self._pending.append(job)
            self._cond.notify()
        for p in dropped:
            p.reply("dropped", {"kind": p.kind})

    def close(self) -> None:
        with self._cond:
            self._closed = True
            if self._running is not None:
                self._running.cancel()
            self._cond.notify_all()

    def take(self) -> Job | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = min(self._pending, key=lambda j: self.kinds[j.kind].priority if j.kind in self.kinds else 9)
            self._pending.remove(job)
            self._running = job
            return job

    def done(self, job: Job) -> None:
        with self._cond:
            if self._running is job:
                self._running = None


class Engine:
    """The engine's state: the model, the newest full trace, the parts the app may fetch."""

    def __init__(self, kinds: dict[str, Kind] | None = None, enrichers=()):
        self.kinds = kinds or {}
        self.enrichers = tuple(enrichers)  # fn(engine, job, full trace) -> (full, [(reply kind, body)])
        self.model = None
        self.current = None  # the newest full trace (with its tensors, for retrace)
        self.current_seq: int | None = None
        self.parts: dict[tuple, object] = {}  # (source, path) -> array
        self.recent: list[int] = []  # seqs of the last traces sent
        self._refs: dict[tuple, set] = {}  # seq -> sources its lean trace refers to
        self.extras: dict = {}  # what enrichers and their handlers keep between requests

    def run(self, job: Job) -> None:
        spec = self.kinds.get(job.kind)
        try:
            if spec is None:
                raise LensError(f"request {job.kind!r}", f"unknown; this engine serves {', '.join(self.kinds)}")
            job.reply("started", {"kind": job.kind})
            spec.fn(self, job)
        except (BrokenPipeError, ConnectionError):
            raise
        except LensError as err:
            if os.environ.get("RCNN_LENS_DEBUG"):  # rcnn-lens --debug: the user's builder's traceback
                traceback.print_exception(err)
            job.reply("error", {"kind": job.kind, "message": str(err)})
        except Exception as err:  # noqa: BLE001 - report, keep serving
            if type(err).__name__ == "Cancelled":
                job.reply("cancelled", {"kind": job.kind, "at": str(err)})
                return
            if os.environ.get("RCNN_LENS_DEBUG"):  # the message says it; the traceback only on --debug
                traceback.print_exc()
            job.reply("error", {"kind": job.kind, "message": f"{type(err).__name__}: {err}"})

    # ---- traces out
    def publish(self, job: Job, full) -> None:
        """Keep ``full`` for retrace and fetches; send it lean."""
        from core.tracing.parts import lean

        known = {id(v): src for (src, _), v in self.parts.items()}
        sources = {}

        def source(path, arr) -> int:
            sources[path] = known.get(id(arr), job.seq)
            return sources[path]

        lean_trace, kept = lean(portable(full), source)
        for path, arr in kept.items():
            if sources[path] == job.seq:
                self.parts[(job.seq, path)] = arr
        self.current, self.current_seq = full, job.seq
        self.recent = [*self.recent, job.seq][-KEEP_TRACES:]
        self._refs[job.seq] = set(sources.values()) | {job.seq}
        self._refs = {s: r for s, r in self._refs.items() if s in self.recent}
        live = set().union(*self._refs.values())
        self.parts = {k: v for k, v in self.parts.items() if k[0] in live}
        job.reply("trace", {"trace": lean_trace})

    def enrich_and_publish(self, job: Job, full) -> None:
        """Run the enrichers on ``full``, publish it, then send their notes."""
        notes = []
        for fn in self.enrichers:
            full, more = fn(self, job, full)
            notes += more
        self.publish(job, full)
        for kind, body in notes:
            job.reply(kind, body)


def portable(tr):
    """The trace as the app holds it: numpy only (suppression lineage resolved, the tensors kept
    for retrace dropped). The engine sends it lean on top (core.tracing.parts)."""
    tr.proposals.suppressed_by  # noqa: B018 - resolve the lazy lineage here, in the engine
    tr.detections.suppressed_by  # noqa: B018
    return replace(tr, _state=None)


def _read(channel: Channel, inbox: Inbox) -> None:
    """The reader thread: every request goes to the inbox as soon as it arrives."""
    while True:
        try:
            kind, seq, body = channel.recv()
        except (EOFError, OSError):
            break
        except ProtocolError as err:
            try:
                channel.send("error", 0, {"kind": "protocol", "message": f"engine: {err}"})
            except OSError:
                pass
            break  # out of step with the other end: nothing more can be read
        if kind == "quit":
            break
        if kind not in inbox.kinds:
            try:
                channel.send("error", seq, {"kind": kind, "message": f"request {kind!r}: unknown; this engine "
                                                                    f"serves {', '.join(inbox.kinds)}"})
            except OSError:
                break
            continue
        inbox.put(Job(kind, seq, body, channel))
    inbox.close()


def serve(sock, kinds: dict[str, Kind], enrichers=(), threads: int = 0) -> None:
    """The engine process's main loop on a connected socket, serving ``kinds``."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or os.cpu_count() or 1))
    channel = Channel(sock)
    inbox = Inbox(kinds, channel)
    engine = Engine(kinds, enrichers)
    reader = threading.Thread(target=_read, args=(channel, inbox), name="engine-reader", daemon=True)
    reader.start()
    try:
        while True:
            job = inbox.take()
            if job is None:
                break
            try:
                engine.run(job)
            except (BrokenPipeError, ConnectionError, OSError):
                break
            finally:
                inbox.done(job)
    finally:
        channel.close()
