"""``rcnn-lens analyze ... --sweep NAME=VALUES``: test-time thresholds swept over a dataset.

Per image the backbone, the RPN head and the box head run once (``core.trace``) at the *widest*
setting of the grid (``widest``: the lowest score thresholds, the highest NMS IoU thresholds, the
largest top-n's); every grid point is then a ``core.retrace`` of that trace plus
``core.analysis.diagnose`` with the image's anchor evidence (computed once). A retrace starts from
the trace's kept tensors of *every* anchor (objectness and decoded boxes) and of every RoI (class
probabilities and refined boxes), never from what the widest setting kept, so a point equals a
separate ``analyze`` with its thresholds exactly, whatever the starting setting; the widest trace is
the one whose detections give the per-class score thresholds (one pass at the lowest score).

Points are visited grouped by their RPN thresholds: a retrace that changes an RPN threshold runs
RoIAlign and the box head again on the new proposals (once per RPN setting), one that changes only
box thresholds reruns the box post-processing (milliseconds).

One JSON line per image in ``sweep.jsonl``: its truth (what mAP needs) and per point the verdict of
each object and the final detections with their TIDE type (rounded as ``analysis.jsonl`` rounds
them), so that ``core.analysis.sweep_summary`` computes each point's numbers as ``analyze`` would.
"""

from __future__ import annotations

import itertools
import math

from core.errors import LensError
from core.models.params import BOX_PARAMS, COUNT_PARAMS, PARAMS, RPN_PARAMS, check_params

MAX_SWEPT = 3
MAX_POINTS = 1000
# which end of a threshold's range lets the most through
LOW_IS_WIDE = ("rpn_score_thresh", "box_score_thresh")


def _name(raw: str, where: str) -> str:
    name = raw.strip().lstrip("-").replace("-", "_")
    if name in PARAMS:
        return name
    if name + "_test" in PARAMS:  # --rpn-pre-nms-top-n
        return name + "_test"
    raise LensError(where, f"not a test-time threshold; sweep one of {', '.join(PARAMS)}")


def _values(spec: str, name: str, where: str) -> list:
    """``0.3,0.5,0.7`` or ``START:STOP:STEP`` (STOP included) -> the values, checked."""
    try:
        if ":" in spec:
            parts = [float(x) for x in spec.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if not step > 0 or stop < start:
                raise LensError(where, "START:STOP:STEP needs STEP > 0 and STOP >= START")
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            if n > MAX_POINTS:
                raise LensError(where, f"{n} values; at most {MAX_POINTS}")
            vals = [round(start + k * step, 10) for k in range(n)]
        else:
            vals = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise LensError(where, "VALUES must be numbers like 0.3,0.5,0.7 or START:STOP:STEP like 0.05:0.95:0.05") from None
    if not vals:
        raise LensError(where, "no values")
    if name in COUNT_PARAMS:
        if any(v != int(v) for v in vals):
            raise LensError(where, f"{name} counts boxes: whole numbers only")
        vals = [int(v) for v in vals]
    for v in vals:
        try:
            check_params({name: v})
        except LensError as err:
            raise LensError(where, f"{v:g} is out of range ({err.problem})") from None
    return sorted(set(vals))


def parse(specs) -> dict[str, list]:
    """``["box_score_thresh=0.05:0.95:0.05", "box_nms_thresh=0.4,0.5"]`` -> {name: sorted values}.
    Raises LensError (one line) for an unknown name, bad or out-of-range values, more than three names."""
    out: dict[str, list] = {}
    for spec in specs:
        where = f"--sweep {spec}"
        if "=" not in spec:
            raise LensError(where, "write NAME=VALUES, e.g. box_score_thresh=0.05:0.95:0.05")
        raw, vals = spec.split("=", 1)
        name = _name(raw, where)
        if name in out:
            raise LensError(where, f"{name} is swept twice")
        out[name] = _values(vals, name, where)
    if not out:
        raise LensError("--sweep", "name at least one threshold")
    if len(out) > MAX_SWEPT:
        raise LensError("--sweep", f"{len(out)} thresholds; sweep at most {MAX_SWEPT} at once")
    n = math.prod(len(v) for v in out.values())
    if n > MAX_POINTS:
        raise LensError("--sweep", f"{n} grid points; at most {MAX_POINTS}")
    return out


def grid(sweep: dict, base: dict) -> list[dict]:
    """Every point's full thresholds (``base`` with the swept values), the first swept name slowest."""
    names = list(sweep)
    return [{**base, **dict(zip(names, vals))} for vals in itertools.product(*(sweep[n] for n in names))]


def widest(sweep: dict, base: dict) -> dict:
    """The setting that lets the most through at every stage: the lowest score thresholds, the
    highest NMS IoU thresholds, the largest top-n's of the sweep."""
    return {**base, **{n: (min(v) if n in LOW_IS_WIDE else max(v)) for n, v in sweep.items()}}


def rpn_part(params: dict) -> tuple:
    return tuple(params[k] for k in RPN_PARAMS)


def visit_order(points: list[dict]) -> list[int]:
    """Point indices grouped by their RPN thresholds (the box head runs once per group)."""
    return sorted(range(len(points)), key=lambda i: (rpn_part(points[i]), i))


def truth_json(dg) -> list[dict]:
    """What the sweep keeps of an image's truth: what mAP and the per-class counts read."""
    out = []
    for o in dg.objects:
        out.append({"box": [round(float(v), 3) for v in o.box], "label": o.label if o.label >= 0 else None,
                    "name": o.name, "crowd": o.crowd, "difficult": o.difficult, "known": o.verdict is not None})
    return out


def point_json(dg) -> dict:
    """One grid point on one image: each object's verdict, each final detection as
    [x1, y1, x2, y2, label, score, TIDE type] (rounded as analysis.jsonl rounds them)."""
    dets = []
    for d in dg.detections:
        j = d.to_json()
        dets.append([*j["box"], j["label"], j["score"], j["error"]])
    return {"v": [o.verdict for o in dg.objects], "d": dets}


def image_line(loaded, rgb, truth, key: str, points: list[dict], wide: dict) -> dict:
    """One sweep.jsonl line: the widest trace, then every point as a retrace + diagnose."""
    import torch

    from core.analysis.diagnose import anchor_evidence, diagnose
    from core.tracing.runner import retrace, trace

    tr0 = trace(loaded, rgb, **{k: wide[k] for k in PARAMS})
    with torch.inference_mode():
        ev = anchor_evidence(tr0, truth)
    out: list = [None] * len(points)
    by_rpn = None
    first = None
    for i in visit_order(points):
        p = points[i]
        if by_rpn is None or rpn_part(by_rpn.params) != rpn_part(p):
            by_rpn = retrace(tr0, **{k: p[k] for k in RPN_PARAMS})  # the box head on this RPN setting's proposals
        tr = retrace(by_rpn, **{k: p[k] for k in BOX_PARAMS})
        with torch.inference_mode():
            dg = diagnose(tr, truth, ev)
        if first is None:
            first = dg
        out[i] = point_json(dg)
    return {"image": key, "size": list(tr0.meta.original_size), "truth": truth_json(first), "points": out}
