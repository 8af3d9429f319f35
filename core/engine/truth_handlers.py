"""Ground truth in the engine: every trace the app asks for comes with its image's truth (found
beside the image, or in the annotations the app names), the training view for it (core.training.targets,
seeded) and each object's verdict (core.analysis.diagnose). A retrace keeps the truth and the training
view (test-time thresholds do not enter training) and derives the verdicts again from the
thresholds (``LiveDiagnosis``: the anchor evidence once per image). Nothing here reruns the
backbone.

The trace request's body may carry ``"truth": {"annotations": path | None, "seed": int,
"enabled": bool}``. A bad annotation file is one ``error`` reply (kind ``truth``) after the
trace, which is sent without truth. Names the model lacks are one ``status`` note per annotations
source per model load (paging through a folder that shares one file says it once). One more
request kind::

    truth  {"image", "annotations", "seed", "enabled"}  -> trace {"trace": ...} | dropped
           the current trace with other annotations or another seed: only the training view is
           computed again when only the seed changed (the "Resample" button)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from core.engine.server import Engine, Job, handles
from core.errors import LensError
from core.state.truth import check_seed
from core.tracing.parts import withhold

# per-anchor arrays (about 200k anchors for ResNet-50 FPN: 4.5 MB more per trace and retrace) that only
# the anchor targets, the loss and a selected object's training part read: sent when those ask; the
# training table's counts (label, sampled, promoted) travel with the trace
for _name in ("matched", "iou", "loss_objectness", "bce", "objectness"):
    withhold(("training", "rpn", _name))


def options(raw) -> dict:
    """The truth options of a request body (defaults: find the truth beside the image, seed 0)."""
    if raw is not None and not isinstance(raw, dict):
        raise LensError("truth options", f"must be a dict, not {type(raw).__name__}")
    raw = raw or {}
    ann = raw.get("annotations")
    if ann is not None and not isinstance(ann, str):
        raise LensError("truth options", f"'annotations' must be a path, not {type(ann).__name__}")
    seed = check_seed(raw.get("seed", 0))
    return {"annotations": ann or None, "seed": seed, "enabled": raw.get("enabled", True) is not False}


@dataclass
class _Side:
    live: object = None  # core.analysis.diagnose.LiveDiagnosis
    options: dict = field(default_factory=dict)  # those of the current trace
    said: set = field(default_factory=set)  # (annotations source, class name) noted as missing since the load
    said_model: object = None  # the model ``said`` is about


def _said(engine: Engine) -> set:
    """What this model load has noted as not a class of the model (a new load starts again)."""
    side = _side(engine)
    load = (id(engine.model), engine.extras.get("loads"))
    if side.said_model != load:
        side.said, side.said_model = set(), load
    return side.said


def _side(engine: Engine) -> _Side:
    side = engine.extras.get("truth")
    if side is None:
        from core.analysis.diagnose import LiveDiagnosis

        side = engine.extras["truth"] = _Side(LiveDiagnosis())
    return side


def _cancelled(err: BaseException) -> bool:
    return type(err).__name__ == "Cancelled"


def read_truth(full, annotations: str | None, said: set | None = None):
    """(Truth or None, notes): the image's truth from ``annotations`` (falling back to the file
    beside the image when it has no entry there) or from beside it. Names the model lacks are noted
    once per annotations source: ``said`` holds the (source, name) pairs noted before, and grows."""
    from core.truth.beside import find_for_image

    name, size, classes = full.meta.name, tuple(full.meta.original_size), full.class_names
    notes = []
    try:
        truth = find_for_image(name, size, classes, annotations) if annotations else None
        if truth is None:
            truth = find_for_image(name, size, classes)  # beside the image
            if annotations:
                notes.append(("status", {"text": f"{Path(name).name}: no entry in {Path(annotations).name}"
                                                 + ("; using the annotations beside it" if truth is not None
                                                    else "; shown without truth")}))
    except LensError as err:
        return None, [("error", {"kind": "truth", "message": str(err)})]
    if truth is not None:
        notes += _missing_note(truth, set() if said is None else said)
    return truth, notes


def _missing_note(truth, said: set) -> list:
    """The status note on names the model lacks that ``said`` has not noted for this source. The source
    is the annotation file, or the folder of a file per image (VOC, YOLO): one note for a folder."""
    from core.truth.types import missing_warnings

    source = truth.source if truth.format == "coco" else str(Path(truth.source).parent)
    new = {n: c for n, c in truth.missing().items() if (source, n) not in said}
    said.update((source, n) for n in new)
    lines = missing_warnings(new)
    return [("status", {"text": f"{Path(truth.source).name}: {'; '.join(lines)}"})] if lines else []


def attach_truth(engine: Engine, job: Job, full, opts: dict):
    """``full`` with its truth, training view and verdicts (what can be had), and the notes."""
    full = replace(full, truth=None, training=None, diagnosis=None)
    if not opts["enabled"]:
        return full, []
    truth, notes = read_truth(full, opts["annotations"], _said(engine))
    if truth is None:
        return full, notes
    job.check()
    full = replace(full, truth=truth)
    for what, step in (("training view", lambda tr: _training(engine, job, tr, opts["seed"])),
                       ("verdicts", lambda tr: _side(engine).live(tr, tr.truth))):
        job.check()
        full = _step(full, what, step, notes)
    return full, notes


def _step(full, what: str, step, notes: list, fallback=None):
    """``step(full)``; when it fails, ``fallback`` (default ``full``) and one error line in ``notes``
    (the trace goes out without that part). A cancel goes through."""
    try:
        return step(full)
    except Exception as err:  # noqa: BLE001 - reported in one line, the app goes on
        if _cancelled(err):
            raise
        notes.append(("error", {"kind": "truth", "message": f"{Path(full.meta.name).name}: {what}: "
                                                            f"{getattr(err, 'problem', None) or err}"}))
        return full if fallback is None else fallback


def _training(engine: Engine, job: Job, tr, seed: int | None = None):
    """``tr`` with the training view for ``seed`` (None: its own seed, for the trace's RPN thresholds:
    computed again only when those changed). The train-mode backbone stops when a newer request comes."""
    from core.training.targets import attach, refresh

    with job.watching(engine.model.module):
        return refresh(tr) if seed is None else attach(tr, tr.truth, seed)


def _enrich(engine: Engine, job: Job, full):
    if job.kind == "trace":
        opts = options(job.body.get("truth"))
        _side(engine).options = opts
        return attach_truth(engine, job, full, opts)
    if job.kind == "retrace" and full.truth is not None:
        job.check()
        notes = []  # the RPN's NMS and score thresholds enter training too: its view follows them (no backbone)
        full = _step(full, "training view", lambda tr: _training(engine, job, tr), notes,
                     fallback=replace(full, training=None))
        return _side(engine).live(full, full.truth), notes  # new thresholds, new verdicts
    return full, []




def _truth(engine: Engine, job: Job) -> None:
    image, cur = job.get("image", str), engine.current
    if cur is None or image != cur.meta.name:
        job.reply("dropped", {"kind": "truth"})  # a newer image (or model) came first
        return
    side = _side(engine)
    opts = options(job.body)
    before = side.options
    if cur.truth is not None and opts["enabled"] and opts["annotations"] == before.get("annotations"):
        job.check()  # the same truth, another seed: only the training view again (no backbone, no verdicts)
        full, notes = _training(engine, job, cur, opts["seed"]), []
    else:
        full, notes = attach_truth(engine, job, cur, opts)
    side.options = opts
    engine.enrich_and_publish(job, full)  # the enrichers after this one (the anchor what-if) see the new truth
    for kind, body in notes:
        job.reply(kind, body)


KINDS = (
    handles("truth", _truth, priority=3, supersedes=("truth",), cancels=("truth",)),
)
ENRICH = (_enrich,)  # every trace and retrace: its truth, training view and verdicts
