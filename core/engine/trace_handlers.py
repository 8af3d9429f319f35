"""The engine's requests about the trace: load a model, trace an image, retrace the newest trace
with other thresholds, fetch a part a trace withheld (core.tracing.parts).

The last ``KEEP_MODELS`` models loaded stay loaded, each with its newest full trace: loading one of
them again takes no time, and tracing the image of its newest trace again is a retrace of that
trace (the backbone does not rerun). Flipping between two runs of a comparison (the app's B key)
is that: a load and a trace that both hit these caches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from core.engine.server import Engine, Job, handles
from core.errors import LensError


def _load(engine: Engine, job: Job) -> None:
    """``trust`` (only ``true`` counts) loads a whole pickled model: sent for one load, never kept.
    COCO weights that are not cached answer one line (``download``: the preset), never a fetch."""
    name, weights = job.get("name", str, default="demo"), job.get("weights", str)
    device, trust = job.get("device", str, default="cpu"), job.body.get("trust") is True
    job.reply("status", {"text": f"loading {name}…"})
    from core.engine.model_handlers import not_cached
    from core.models.load import load_model
    from core.models.params import model_params

    key = (name, weights, device, trust)
    models = engine.extras.setdefault("models", {})  # key -> LoadedModel, the least recently used first
    if key in models:
        engine.model = models.pop(key)
    else:
        missing = not_cached(name, weights)
        if missing is not None:
            job.reply("error", missing)
            return
        engine.model = load_model(name, weights=weights, device=device, trust=trust)
    models[key] = engine.model
    engine.extras["loads"] = engine.extras.get("loads", 0) + 1  # a load, even of a model kept loaded
    for old in list(models)[:-KEEP_MODELS]:
        engine.extras.setdefault("traces", {}).pop(id(models.pop(old)), None)
    engine.current = engine.current_seq = None
    m = engine.model
    job.reply("loaded", {"name": m.name, "weights": m.weights, "class_names": list(m.class_names),
                         "device": str(m.device), "params": model_params(m.module), "summary": m.summary,
                         "trusted": m.trusted, "random": m.random_weights, "overrides": list(m.support.overrides)})


KEEP_MODELS = 2


def _file_key(path: str) -> tuple:
    try:
        st = Path(path).stat()
        return (path, st.st_size, st.st_mtime_ns)
    except OSError:
        return (path, None, None)


def _trace(engine: Engine, job: Job) -> None:
    if engine.model is None:
        raise LensError("model", "no model is loaded")
    import numpy as np

    from core.tracing.images import load
    from core.tracing.runner import trace

    image = job.get("image", str, np.ndarray)
    params = job.get("params", dict, default={})
    traces = engine.extras.setdefault("traces", {})  # id(model) -> (file key, its newest full trace)
    hit = traces.get(id(engine.model))
    if isinstance(image, str) and hit is not None and hit[0] == _file_key(image) and hit[1].meta.name == image:
        from core.tracing.runner import retrace

        job.reply("status", {"text": f"{Path(image).name}: the trace kept for {engine.model.name}"})
        engine.enrich_and_publish(job, retrace(hit[1], cancel=job.cancelled, **params))  # no backbone
        return
    if isinstance(image, str):
        rgb, name = load(image), image
    elif image is not None and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        rgb, name = image, "<array>"
    else:
        raise LensError("trace", "send an image path or an HxWx3 uint8 array")
    name = job.get("name", str, default=name)
    job.check()
    with job.watching(engine.model.module):
        full = trace(engine.model, rgb, cancel=job.cancelled, **params)
    full = replace(full, meta=replace(full.meta, name=name))
    if isinstance(image, str):
        traces[id(engine.model)] = (_file_key(image), full)
        live = {id(m) for m in engine.extras.get("models", {}).values()}
        for k in [k for k in traces if k not in live]:
            del traces[k]
    engine.enrich_and_publish(job, full)


def _retrace(engine: Engine, job: Job) -> None:
    if engine.current is None:
        raise LensError("retrace", "no trace to rerun yet")
    from core.tracing.runner import retrace

    engine.enrich_and_publish(job, retrace(engine.current, cancel=job.cancelled, **job.get("params", dict, default={})))


def _fetch(engine: Engine, job: Job) -> None:
    source, path = job.get("source", int), tuple(job.get("path", list, tuple, default=()))
    if not all(isinstance(p, str | int) and not isinstance(p, bool) for p in path):
        raise LensError("request 'fetch'", "'path' must hold field names and indices")
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
