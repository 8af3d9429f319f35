"""The paths drawn on top of every stage: a selected box's (core.overlays.selection: its anchor, the
proposal it came from, its suppressor) and a selected truth object's way through the stages
(core.overlays.diagnosis: its anchors, its best candidate and what removed it, its RoIs, its
detection; the sentence in the caption, nothing written over the photo). The window draws them and the
export writes them, so a PNG shows what the window shows; ``paths`` travel in the sidecar as
``{"selection": {"kind", "index"} | None, "object": index | None}``."""

from __future__ import annotations

from core.errors import LensError
from core.overlays import diagnosis, selection
from core.overlays.layers import StageLayers, Text

SELECTION, OBJECT = "selection", "object"
PATH_KEY = ("cyan: its best anchor (dashed) and the anchors the RPN labels positive for it; yellow: its best "
            "candidate; red: what suppressed it; lavender: RoIs that cover it; green: its detection")


def object_path(tr, index: int | None) -> StageLayers | None:
    """Truth object ``index``'s path as the window draws it; None without verdicts."""
    if tr is None or index is None or tr.diagnosis is None:
        return None
    sl = diagnosis.layers(tr, {"object": int(index)})
    return StageLayers(OBJECT, [lay for lay in sl.layers if not isinstance(lay, Text)], f"{sl.caption}. {PATH_KEY}")


def selection_path(tr, sel) -> StageLayers | None:
    """A selected box's path (a ``selection.Selection`` or its dict); None when it is not in ``tr``."""
    if sel is None or tr is None:
        return None
    if isinstance(sel, dict):
        sel = selection.Selection(str(sel["kind"]), int(sel["index"]))
    return selection.layers(tr, sel) if selection.valid(tr, sel) else None


def check(paths) -> dict:
    """``paths`` as the sidecar holds them, or LensError naming what is wrong."""
    paths = dict(paths or {})
    bad = set(paths) - {"selection", "object"}
    if bad:
        raise LensError(f"paths.{sorted(bad)[0]}", "unknown; use selection and object")
    sel, obj = paths.get("selection"), paths.get("object")
    if sel is not None:
        if isinstance(sel, selection.Selection):
            sel = {"kind": sel.kind, "index": sel.index}
        if not (isinstance(sel, dict) and sel.get("kind") in selection.KINDS and type(sel.get("index")) is int):
            raise LensError("paths.selection", f"must be {{'kind': one of {', '.join(selection.KINDS)}, 'index': int}}")
    if obj is not None and (type(obj) is not int or obj < 0):
        raise LensError("paths.object", "must be a truth object's index (>= 0)")
    return {"selection": sel, "object": obj}


def layers(tr, paths) -> list[StageLayers]:
    """The path layers ``paths`` asks for that ``tr`` has, selection first, the object's on top."""
    p = check(paths)
    out = [selection_path(tr, p["selection"]), object_path(tr, p["object"])]
    return [sl for sl in out if sl is not None]
