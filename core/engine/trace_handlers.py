"""The engine's requests about the trace: load a model, trace an image, retrace the newest trace
with other thresholds, fetch a part a trace withheld (core.tracing.parts)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

from core.engine.server import Engine, Job, handles
from core.errors import LensError


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


def _load(engine: Engine, job: Job) -> None:
    """``trust`` (only ``true`` counts) loads a whole pickled model: sent for one load, never kept.
    COCO weights that are not cached answer one line (``download``: the preset), never a fetch."""
    b = job.body
    job.reply("status", {"text": f"loading {b.get('name')}…"})
    from core.engine.model_handlers import not_cached
    from core.models.load import load_model
    from core.models.params import model_params

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


def _trace(engine: Engine, job: Job) -> None:
    if engine.model is None:
        raise LensError("model", "no model is loaded")
    import numpy as np

    from core.tracing.images import load
    from core.tracing.runner import trace

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


def _retrace(engine: Engine, job: Job) -> None:
    if engine.current is None:
        raise LensError("retrace", "no trace to rerun yet")
    from core.tracing.runner import retrace

    engine.enrich_and_publish(job, retrace(engine.current, cancel=job.cancelled, **dict(job.body.get("params") or {})))


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


KINDS = (
    handles("load", _load, priority=0, supersedes=("load", "trace", "retrace", "fetch"), cancels=("trace", "retrace")),
    handles("trace", _trace, priority=2, supersedes=("trace", "retrace", "fetch"), cancels=("trace", "retrace")),
    handles("retrace", _retrace, priority=3, supersedes=("retrace",), cancels=("retrace",)),
    handles("fetch", _fetch, priority=1),
)
