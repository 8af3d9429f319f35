"""truth: the annotated boxes in original pixels, in the truth's own colour, with their names;
objects of a class the model lacks dashed in another colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.overlays._truth_common import NO_CLASS_COLOUR, TRUTH_COLOUR, empty, rgba
from core.overlays.layers import Boxes, StageLayers


def layers(tr, s: dict) -> StageLayers:
    none = empty(tr, "truth")
    if none is not None:
        return none
    t = tr.truth
    op = float(s["opacity"])
    known = t.known
    cols = rgba([TRUTH_COLOUR if k else NO_CLASS_COLOUR for k in known], op)
    labels = None
    if s["labels"]:
        labels = []
        for i in range(len(t)):
            tag = [] if known[i] else ["not a model class"]
            tag += ["difficult"] * bool(t.difficult[i]) + ["crowd"] * bool(t.crowd[i])
            labels.append(f"{t.names[i]}" + (f" ({', '.join(tag)})" if tag else ""))
    box = Boxes("truth.boxes", t.boxes, cols, width=2.0, dashed=~known, labels=labels, ids=np.arange(len(t)),
                select="truth")  # a click selects the object (core.state.truth)
    missing = int((~known).sum())
    fmt = f" ({t.format.upper()})" if t.format else ""
    src = Path(t.source).name if t.source else "memory"
    caption = (f"truth: {len(t)} annotated objects from {src}{fmt}, in original pixels"
               + (f"; {missing} of a class the model does not have (dashed)" if missing else ""))
    return StageLayers("truth", [box], caption, {"truth_boxes": t.boxes, "truth_labels": t.labels})
