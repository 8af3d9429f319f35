"""What a trace holds, as the seed notebook prints it: ``trace_summary`` (the JSON object of
``rcnn-lens trace --json``), ``pipeline_rows`` (stage, tensor shape, count, ms: the app's inspector
and the text table) and ``trace_table``. Tensor shapes are torch's; image and grid sizes read
W x H. Works on a lean trace too (only shapes are read of the arrays the engine keeps)."""

from __future__ import annotations


def _shape(a) -> list[int]:
    return [int(v) for v in a.shape]


def trace_summary(tr, image_name: str) -> dict:
    """The JSON object ``rcnn-lens trace --json`` prints for one image."""
    p, d, h = tr.proposals, tr.detections, tr.box_head
    post = [[*(float(v) for v in p.boxes_image[i]), float(p.scores[i])] for i in p.keep]
    return {
        "image": image_name,
        "image_size": list(tr.meta.original_size),
        "model": tr.model,
        "weights": tr.weights,
        "transform": {"resized_size": list(tr.meta.resized_size), "batch_size": list(tr.meta.batch_size),
                      "scale": [round(s, 6) for s in tr.meta.scale]},
        "features": {k: _shape(v.data) for k, v in tr.features.items()},
        "anchors": {"per_cell": {a.name: a.per_cell for a in tr.anchors},
                    "grid": {a.name: list(a.grid) for a in tr.anchors},
                    "stride": {a.name: list(a.stride) for a in tr.anchors},
                    "total": int(sum(a.count for a in tr.anchors))},
        "rpn": {"objectness": {r.name: _shape(r.objectness) for r in tr.rpn},
                "deltas": {r.name: _shape(r.deltas) for r in tr.rpn},
                "pre_nms": len(p), "post_nms": int(len(p.keep)), "proposals": post},
        "roi_pool": _shape(h.pooled),
        "box_head": {"features": _shape(h.features), "class_logits": _shape(h.class_logits),
                     "box_regression": _shape(h.box_regression)},
        "detections_pre_nms": len(d),
        "detections": [{k: v for k, v in det.items() if k != "proposal"} for det in tr.final()],
        **_heads_summary(tr),
        "params": tr.params,
        "timings_ms": {k: round(v, 2) for k, v in tr.timings_ms.items()},
        **({"truth": tr.truth.records()} if tr.truth is not None else {}),
        **({"training": tr.training.counts()} if tr.training is not None else {}),
    }


def _heads_summary(tr) -> dict:
    """Shapes of the mask / keypoint heads and the model check, for models that have them."""
    out = {}
    if tr.masks is not None:
        out["mask_head"] = {"pooled": _shape(tr.masks.pooled), "logits": _shape(tr.masks.logits)}
    if tr.keypoints is not None:
        out["keypoint_head"] = {"pooled": _shape(tr.keypoints.pooled), "heatmaps": _shape(tr.keypoints.heatmaps),
                                "names": list(tr.keypoints.names)}
    if tr.check is not None:
        c = tr.check
        out["check"] = {"checked": c.checked, "equal": c.equal, "overrides": list(c.overrides), "detail": c.detail}
    return out


def _fmt(shape) -> str:
    return " x ".join(str(v) for v in shape)


def pipeline_rows(tr, s: dict | None = None) -> list[tuple]:
    """(stage, tensor shape, count, ms or None) per row, in the order the model runs them; ``s`` is
    the trace's ``trace_summary`` where the caller already has it."""
    s = s or trace_summary(tr, tr.meta.name)
    t = tr.timings_ms
    (h, w), (rh, rw) = s["image_size"], s["transform"]["resized_size"]
    rows = [("input", _fmt([3, *s["transform"]["batch_size"]]), f"{w}x{h} -> {rw}x{rh} (W x H)", t.get("transform", 0.0))]
    first = True
    for name, shape in s["features"].items():
        rows.append((f"backbone {name}", _fmt(shape), "", t.get("backbone", 0.0) if first else None))
        first = False
    first = True
    for r in tr.rpn:
        rows.append((f"rpn objectness {r.name}", _fmt(r.objectness.shape), "", t.get("rpn_head", 0.0) if first else None))
        rows.append((f"rpn deltas {r.name}", _fmt(r.deltas.shape), "", None))
        first = False
    for a in tr.anchors:
        rows.append((f"anchors {a.name}", _fmt([a.count, 4]), f"{a.grid[1]}x{a.grid[0]} (W x H) x {a.per_cell}", None))
    rows.append(("anchors total", "", str(s["anchors"]["total"]), t.get("anchors", 0.0)))
    rows.append(("proposals before NMS", _fmt([s["rpn"]["pre_nms"], 4]), str(s["rpn"]["pre_nms"]),
                 t.get("rpn_decode", 0.0)))
    rows.append(("proposals after NMS", _fmt([s["rpn"]["post_nms"], 4]), str(s["rpn"]["post_nms"]),
                 t.get("rpn_filter", 0.0)))
    rows.append(("roi pool", _fmt(s["roi_pool"]), "", t.get("roi_pool", 0.0)))
    rows.append(("box head", _fmt(s["box_head"]["features"]), "", t.get("box_head", 0.0)))
    rows.append(("predictor class logits", _fmt(s["box_head"]["class_logits"]), "", t.get("box_predictor", 0.0)))
    rows.append(("predictor box regression", _fmt(s["box_head"]["box_regression"]), "", None))
    rows.append(("detections before NMS", "", str(s["detections_pre_nms"]), None))
    if tr.masks is not None:
        rows.append(("mask roi pool", _fmt(tr.masks.pooled.shape), "", None))
        rows.append(("mask logits", _fmt(tr.masks.logits.shape), "", t.get("mask_head", 0.0)))
    if tr.keypoints is not None:
        rows.append(("keypoint roi pool", _fmt(tr.keypoints.pooled.shape), "", None))
        rows.append(("keypoint heatmaps", _fmt(tr.keypoints.heatmaps.shape), "", t.get("keypoint_head", 0.0)))
    rows.append(("detections after NMS", "", str(len(s["detections"])), t.get("postprocess", 0.0)))
    return rows


def trace_table(tr, image_name: str) -> str:
    """A readable table like the seed notebook's printouts: stage, tensor shape, count, ms."""
    s = trace_summary(tr, image_name)
    rows = pipeline_rows(tr, s)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(max(len(r[1]) for r in rows), 5)
    out = [f"{image_name}  [{tr.model}, weights {tr.weights}]",
           f"{'stage':<{w0}}  {'shape':<{w1}}  {'count':>14}  {'ms':>8}"]
    for name, shape, count, ms in rows:
        out.append(f"{name:<{w0}}  {shape:<{w1}}  {count:>14}  {'' if ms is None else f'{ms:8.1f}':>8}")
    for det in s["detections"]:
        b = ", ".join(f"{v:.1f}" for v in det["box"])
        extra = f"  mask {det['mask_area']} px" if "mask_area" in det else ""
        out.append(f"  {det['name']:<14} {det['score']:.3f}  [{b}]{extra}")
    if tr.truth is not None:
        out.append(f"truth: {len(tr.truth)} objects from {tr.truth.source}")
        for obj in s["truth"]:
            b = ", ".join(f"{v:.1f}" for v in obj["box"])
            lab = "no label" if obj["label"] is None else f"label {obj['label']}"
            out.append(f"  {obj['name']:<14} {lab:<9} [{b}]")
    if tr.training is not None:
        out.append("training (torchvision's training step on this image and its truth)")
        rows = tr.training.table()
        w = max(len(k) for k, _ in rows)
        out += [f"  {k:<{w}}  {v}" for k, v in rows]
    return "\n".join(out)


