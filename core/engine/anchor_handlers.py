"""The anchor what-if in the engine: a hypothetical ``AnchorGenerator`` on the current trace's feature
maps (core.analysis.anchor_whatif; the backbone never reruns, the model never changes). One request
kind and one enricher::

    anchors  {"sizes", "aspect_ratios"}  -> trace {"trace": ...} with ``anchor_whatif``
             sizes/ratios as text ("16,24 / 32,48", "0.5, 1, 2") or nested lists; both null: back to the
             model's generator (Reset). A bad configuration is one ``error`` (kind ``anchors``).

The configuration holds for the model it was asked on: every later trace of that model (another
image, other annotations or seed) gets it too; a newly loaded model starts on its own generator.
"""

from __future__ import annotations

from dataclasses import replace

from core.engine.server import Engine, Job, handles
from core.errors import LensError
from core.tracing.parts import withhold

# per-anchor arrays only the anchor targets stage reads (fetched when it is shown)
for _name in ("matched", "iou"):
    withhold(("anchor_whatif", "targets", _name))

KEY = "anchors"


def config(body: dict, levels: int | None = None):
    """The AnchorConfig a request names, or None (the model's own)."""
    from core.analysis.anchor_config import AnchorConfig

    sizes, ratios = body.get("sizes"), body.get("aspect_ratios")
    if sizes is None and ratios is None:
        return None
    if sizes is None or ratios is None:
        raise LensError("anchor what-if", "give sizes and aspect ratios")
    if isinstance(sizes, str) or isinstance(ratios, str):
        return AnchorConfig.parse(str(sizes), str(ratios), levels, "anchor what-if")
    return AnchorConfig.of(sizes, ratios, levels, "anchor what-if")


def _apply(full, cfg):
    from core.analysis.anchor_whatif import what_if

    return replace(full, anchor_whatif=None if cfg is None else what_if(full, cfg))


def _current(engine: Engine):
    """The configuration asked for this model, or None."""
    held = engine.extras.get(KEY)
    if held is None or held[0] is not engine.model:
        engine.extras.pop(KEY, None)
        return None
    return held[1]


def _anchors(engine: Engine, job: Job) -> None:
    cur = engine.current
    if cur is None:
        raise LensError("anchor what-if", "no trace yet")
    cfg = config(job.body, len(cur.anchors))
    job.check()
    full = _apply(cur, cfg)  # raises before anything is kept: a bad request changes nothing
    engine.extras[KEY] = (engine.model, cfg)
    engine.publish(job, full)


def _enrich(engine: Engine, job: Job, full):
    """A new trace (another image) or its truth read again: the what-if of this model, recomputed;
    a retrace keeps the one it has (thresholds do not enter)."""
    if job.kind not in ("trace", "truth"):
        return full, []
    cfg = _current(engine)
    if cfg is None:
        return replace(full, anchor_whatif=None), []
    job.check()
    try:
        return _apply(full, cfg), []
    except LensError as err:  # e.g. another number of levels: the trace goes out with the model's anchors
        return replace(full, anchor_whatif=None), [("error", {"kind": "anchors", "message": str(err)})]


KINDS = (handles(KEY, _anchors, priority=3, supersedes=(KEY,), cancels=(KEY,)),)
ENRICH = (_enrich,)
