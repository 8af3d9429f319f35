"""The model engine: a process of its own, so that torch and the Python parts of a trace never
hold the app's GIL. It speaks core.protocol (JSON header + raw array frames) over one socket.

Requests (``kind``: body) and what they answer::

    load      {"name", "weights", "device", "trust"} -> loaded {"name", "weights", "class_names", "device", "params",
                                                             "summary", "trusted", "random", "overrides"}
    trace     {"image": path | array, "name", "params"}   -> trace {"trace": a lean Trace}
    retrace   {"params"}  (the newest trace)      -> trace {"trace": ...}
    fetch     {"source", "path"}                  -> part {"source", "path", "value"} | gone {...}
    quit
    models, suggest, download, cancel: the model chooser's (core.model_requests)

Every request may also answer ``started``, ``status`` {"text"}, ``error`` {"kind", "message"},
``cancelled`` {"kind", "at"} or ``dropped`` {"kind"}. A reader thread takes requests as they come:
a newer ``load``/``trace`` drops the pending older ones (newest wins) and *cancels* a running trace
at its next stage (between the runner's stages and between the backbone's modules), so paging
through photos never waits for a trace nobody will look at.

Traces travel lean (core.parts): feature maps, the input tensor and the RoIAlign output stay here
until the app fetches the ones a visible stage needs. A part a retrace did not change keeps the id
of the trace that first sent it, so the app need not fetch it again.

A new request kind is one handler::

    @handler("diagnose", priority=4, supersedes=("diagnose",))
    def _diagnose(engine, job): ...; job.reply("diagnosis", {...})

What a trace carries beyond the runner's (ground truth, its training view and verdicts:
core.engine_truth) is one enricher: ``ENRICH.append(fn)``, ``fn(engine, job, full) -> (full, notes)``,
run on every trace and retrace before it is sent; ``notes`` are replies sent after it.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .errors import LensError
from .protocol import Channel, ProtocolError

KEEP_TRACES = 3  # the parts of the last few traces stay fetchable


@dataclass(frozen=True)
class Kind:
    name: str
    fn: Callable
    priority: int  # among pending requests, the lowest runs first (then the oldest)
    supersedes: tuple[str, ...]  # pending older requests of these kinds are dropped
    cancels: tuple[str, ...]  # a running request of these kinds stops at its next stage


KINDS: dict[str, Kind] = {}
ENRICH: list[Callable] = []  # fn(engine, job, full trace) -> (full, [(reply kind, body)])


def handler(name: str, priority: int = 5, supersedes=(), cancels=()):
    """Register ``fn(engine, job)`` as the handler of requests of kind ``name``."""
    def deco(fn):
        KINDS[name] = Kind(name, fn, priority, tuple(supersedes), tuple(cancels))
        return fn
    return deco


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
            from .runner import Cancelled

            raise Cancelled(self.kind)

    def reply(self, kind: str, body=None) -> None:
        if self._channel is not None:
            self._channel.send(kind, self.seq, body)


class Inbox:
    """Pending requests, newest wins per the kinds' rules; ``take`` blocks for the next one."""

    def __init__(self, channel: Channel | None = None):
        self._cond = threading.Condition()
        self._pending: list[Job] = []
        self._running: Job | None = None
        self._closed = False
        self._channel = channel

    def put(self, job: Job) -> None:
        spec = KINDS.get(job.kind)
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
            job = min(self._pending, key=lambda j: KINDS[j.kind].priority if j.kind in KINDS else 9)
            self._pending.remove(job)
            self._running = job
            return job

    def done(self, job: Job) -> None:
        with self._cond:
            if self._running is job:
                self._running = None


class Engine:
    """The engine's state: the model, the newest full trace, the parts the app may fetch."""

    def __init__(self):
        self.model = None
        self.current = None  # the newest full trace (with its tensors, for retrace)
        self.current_seq: int | None = None
        self.parts: dict[tuple, object] = {}  # (source, path) -> array
        self.recent: list[int] = []  # seqs of the last traces sent
        self._refs: dict[tuple, set] = {}  # seq -> sources its lean trace refers to
        self.extras: dict = {}  # what enrichers and their handlers keep between requests

    def run(self, job: Job) -> None:
        spec = KINDS.get(job.kind)
        try:
            if spec is None:
                raise LensError(f"request {job.kind!r}", f"unknown; this engine serves {', '.join(KINDS)}")
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
            traceback.print_exc()
            job.reply("error", {"kind": job.kind, "message": f"{type(err).__name__}: {err}"})

    # ---- traces out
    def publish(self, job: Job, full) -> None:
        """Keep ``full`` for retrace and fetches; send it lean."""
        from .parts import HEAVY, expand, get_part, lean

        known = {id(v): src for (src, _), v in self.parts.items()}
        sources = {}
        for pattern in HEAVY:
            for path in expand(full, pattern):
                sources[path] = known.get(id(get_part(full, path)), job.seq)
        lean_trace, kept = lean(portable(full), sources)
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
        for fn in ENRICH:
            full, more = fn(self, job, full)
            notes += more
        self.publish(job, full)
        for kind, body in notes:
            job.reply(kind, body)


def portable(tr):
    """The trace as the app holds it: numpy only (suppression lineage resolved, the tensors kept
    for retrace dropped). The engine sends it lean on top (core.parts)."""
    tr.proposals.suppressed_by  # noqa: B018 - resolve the lazy lineage here, in the engine
    tr.detections.suppressed_by  # noqa: B018
    return replace(tr, _state=None)


@contextmanager
def _cancellable(module, job: Job):
    """Check for cancellation before every backbone module: a newer request stops a trace
    inside the backbone, not only between the runner's stages."""
    handles = [m.register_forward_pre_hook(lambda *_: job.check()) for m in module.backbone.modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@handler("load", priority=0, supersedes=("load", "trace", "retrace", "fetch"), cancels=("trace", "retrace"))
def _load(engine: Engine, job: Job) -> None:
    """``trust`` (only ``true`` counts) loads a whole pickled model: sent for one load, never kept.
    COCO weights that are not cached answer one line (``download``: the preset), never a fetch."""
    b = job.body
    job.reply("status", {"text": f"loading {b.get('name')}…"})
    from .model_requests import not_cached
    from .models import load_model
    from .runner import model_params

    missing = not_cached(b.get("name"), b.get("weights"))
    if missing is not None:
        job.reply("error", missing)
        return
    engine.model = load_model(str(b.get("name")), weights=b.get("weights"), device=str(b.get("device") or "cpu"),
                              trust=b.get("trust") is True)
    engine.current = engine.current_seq = None
    m = engine.model
    job.reply("loaded", {"name": m.name, "weights": m.weights, "class_names": list(m.class_names),
                         "device": str(m.device), "params": model_params(m.module), "summary": m.summary,
                         "trusted": m.trusted, "random": m.random_weights, "overrides": list(m.support.overrides)})


@handler("trace", priority=2, supersedes=("trace", "retrace", "fetch"), cancels=("trace", "retrace"))
def _trace(engine: Engine, job: Job) -> None:
    if engine.model is None:
        raise LensError("model", "no model is loaded")
    import numpy as np

    from .images import load
    from .runner import trace

    image = job.body.get("image")
    if isinstance(image, str):
        rgb, name = load(image), image
    elif isinstance(image, np.ndarray):
        rgb, name = image, "<array>"
    else:
        raise LensError("trace", "send an image path or an HxWx3 uint8 array")
    name = str(job.body.get("name") or name)
    params = dict(job.body.get("params") or {})
    job.check()
    with _cancellable(engine.model.module, job):
        full = trace(engine.model, rgb, cancel=job.cancelled, **params)
    engine.enrich_and_publish(job, replace(full, meta=replace(full.meta, name=name)))


@handler("retrace", priority=3, supersedes=("retrace",), cancels=("retrace",))
def _retrace(engine: Engine, job: Job) -> None:
    if engine.current is None:
        raise LensError("retrace", "no trace to rerun yet")
    from .runner import retrace

    engine.enrich_and_publish(job, retrace(engine.current, cancel=job.cancelled, **dict(job.body.get("params") or {})))


@handler("fetch", priority=1)
def _fetch(engine: Engine, job: Job) -> None:
    source, path = job.body.get("source"), tuple(job.body.get("path") or ())
    value = engine.parts.get((source, path))
    if value is None and path and isinstance(path[-1], int):
        whole = engine.parts.get((source, path[:-1]))
        if whole is not None and 0 <= path[-1] < len(whole):
            value = whole[path[-1]]
    if value is None:
        job.reply("gone", {"source": source, "path": path})
        return
    job.reply("part", {"source": source, "path": path, "value": value})


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
        if kind not in KINDS:
            try:
                channel.send("error", seq, {"kind": kind, "message": f"request {kind!r}: unknown; this engine "
                                                                    f"serves {', '.join(KINDS)}"})
            except OSError:
                break
            continue
        inbox.put(Job(kind, seq, body, channel))
    inbox.close()


def serve(sock, threads: int = 0) -> None:
    """The engine process's main loop on a connected socket."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or os.cpu_count() or 1))
    channel = Channel(sock)
    inbox = Inbox(channel)
    engine = Engine()
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


def main(argv=None) -> int:
    """``python -m core.engine FD``: serve requests on the socket FD this process inherited."""
    import socket

    args = sys.argv[1:] if argv is None else argv
    fd = int(args[0])
    os.set_inheritable(fd, False)  # nothing this process starts gets the model's socket
    try:  # a background worker: the app's window gets the CPU first
        os.nice(int(os.environ.get("RCNN_LENS_ENGINE_NICE", "5")))
    except (OSError, ValueError):
        pass
    serve(socket.socket(fileno=fd))
    return 0


# the handlers other modules register: ground truth (its enricher and its "truth" request) and the
# model chooser's requests
from . import engine_truth, model_requests  # noqa: E402, F401

if __name__ == "__main__":
    # serve with the package's module, where every handler (also those of other modules) registered
    from core.engine import main as _main

    raise SystemExit(_main())
