"""``rcnn-lens export``: its options, turning them into stage settings, and the batch loop. The
drawing and writing is core.overlays.export's (the app's export goes there too)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.options import (
    add_model_options,
    add_truth_options,
    finish_truth,
    load,
    thresholds,
    truth_lookup,
    with_truth,
)
from core.errors import LensError
from core.overlays import REGISTRY, merged
from core.overlays.export import parse_overlays, write_export
from core.overlays.paths import check as check_paths


def _settings_file(args) -> dict:
    """The --settings JSON (a sidecar works), or {}."""
    if not args.settings:
        return {}
    try:
        loaded = json.loads(Path(args.settings).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LensError(args.settings, f"cannot read settings JSON ({err})") from None
    return loaded if isinstance(loaded, dict) else {}


def paths_from_args(args) -> dict:
    """The paths drawn on top (core.overlays.paths): the sidecar's, then --select and --object."""
    paths = dict(_settings_file(args).get("paths") or {})
    if args.select:
        kind, _, index = args.select.partition(":")
        if not index.strip().lstrip("-").isdigit():
            raise LensError(f"--select {args.select}", "expected KIND:INDEX, e.g. detection:0")
        paths["selection"] = {"kind": kind.strip(), "index": int(index)}
    if args.object is not None:
        paths["object"] = args.object
    return check_paths(paths)


def settings_from_args(args) -> dict:
    loaded = _settings_file(args)
    s: dict = dict(loaded.get("settings", loaded))

    def put(stage, key, value):
        if value is not None:
            s.setdefault(stage, {})[key] = value

    for st in ("features", "anchors", "objectness"):
        put(st, "level", args.level)
    put("features", "reduction", args.reduction)
    if args.channel is not None:
        put("features", "reduction", "channel")
        put("features", "channel", args.channel)
    put("features", "colormap", args.colormap)
    for st in ("features", "objectness", "rois"):
        put(st, "opacity", args.opacity)
    put("objectness", "anchor", args.anchor)
    put("objectness", "mode", args.objectness)
    if args.cell is not None:
        try:
            r, c = (int(v) for v in args.cell.split(","))
        except ValueError:
            raise LensError(f"--cell {args.cell}", "expected ROW,COL") from None
        put("anchors", "cell", [r, c])
    put("proposals", "top_n", args.top_n)
    if args.pre_nms:
        put("proposals", "pre_nms", True)
    if args.suppressed:
        put("detections", "suppressed", True)
    put("rois", "roi", args.roi)
    for st in ("anchor_targets", "roi_targets"):
        put(st, "gt", getattr(args, "gt", None))
    put("anchor_targets", "level", args.level)
    put("loss", "level", args.level)
    targets_shown = getattr(args, "targets", None)
    put("anchor_targets", "show", targets_shown)
    put("roi_targets", "show", "positive" if targets_shown == "all" else targets_shown)
    merged(s)  # validate early: one clear line before any work
    return s


def targets(images: list[str], out: str) -> list[Path]:
    o = Path(out)
    if len(images) == 1 and o.suffix.lower() == ".png" and not o.is_dir():
        return [o]
    if o.exists() and not o.is_dir():
        raise LensError(o, "is a file; with several images -o must be a folder")
    try:
        o.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LensError(o, f"cannot create folder ({err.strerror or err})") from None
    seen: dict[str, int] = {}
    paths = []
    for img in images:
        stem = Path(img).stem or "image"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        paths.append(o / (f"{stem}.lens.png" if n == 0 else f"{stem}-{n}.lens.png"))
    return paths


def run(args) -> int:
    """The batch: every image traced with the model and thresholds named, its truth attached, its
    PNG (and sidecar) written; a bad image is one line and the others go on."""
    from tqdm import tqdm

    stages = parse_overlays(args.overlays)
    settings = settings_from_args(args)
    paths = paths_from_args(args)
    outs = targets(args.images, args.out)
    lookup = truth_lookup(args)  # before torch loads: a bad annotation file fails at once
    from core.tracing.runner import trace

    model = load(args)
    params = thresholds(args)
    failed = 0
    bar = tqdm(list(zip(args.images, outs)), desc="export", unit="img", disable=None, file=sys.stderr)
    for img, out in bar:
        try:
            tr = with_truth(trace(model, img, **params), lookup, img, model.class_names, args.seed)
            write_export(tr, out, stages, settings, legend=not args.no_legend, npz=args.npz, image_path=img,
                         paths=paths)
        except LensError as err:
            bar.write(f"rcnn-lens: {err}", file=sys.stderr)
            failed += 1
            continue
        if not sys.stderr.isatty():
            print(out, flush=True)
    return 1 if (finish_truth(lookup) or failed) else 0


def add_parser(sub) -> None:
    e = sub.add_parser("export", help="write annotated PNGs (+ JSON sidecar) of the chosen stage overlays")
    e.add_argument("images", nargs="+", metavar="IMAGE")
    e.add_argument("--overlays", default="detections",
                   help=f"all, training, or a comma list of {','.join(REGISTRY)}")
    e.add_argument("-o", "--out", required=True, help="output PNG (one image) or folder")
    e.add_argument("--level", default=None, help="level for features/anchors/objectness (default: the first)")
    e.add_argument("--reduction", choices=("mean", "max", "l2"), default=None, help="feature channel reduction")
    e.add_argument("--channel", type=int, default=None, help="show one feature channel instead of a reduction")
    e.add_argument("--colormap", default=None, help="feature heatmap colormap")
    e.add_argument("--opacity", type=float, default=None, help="heatmap opacity 0..1")
    e.add_argument("--anchor", type=int, default=None, help="objectness of one anchor (default: max over anchors)")
    e.add_argument("--objectness", choices=("prob", "logit"), default=None)
    e.add_argument("--cell", default=None, help="anchor cell ROW,COL (default: highest objectness)")
    e.add_argument("--top-n", dest="top_n", type=int, default=None, help="proposals shown")
    e.add_argument("--pre-nms", action="store_true", help="also show proposals NMS suppressed, faded")
    e.add_argument("--suppressed", action="store_true", help="also show detections NMS suppressed, faded")
    e.add_argument("--roi", type=int, default=None, help="RoI whose bins are drawn (default: the best detection's)")
    e.add_argument("--settings", default=None, help="stage settings JSON (a sidecar works: also its paths)")
    e.add_argument("--select", default=None, metavar="KIND:INDEX",
                   help="draw a box's path as the app does for a click: detection:J, candidate:I, proposal:I, roi:R")
    e.add_argument("--object", type=int, default=None, metavar="I",
                   help="draw truth object I's path through the stages (needs its truth)")
    e.add_argument("--no-legend", action="store_true", help="the photo alone, no legend below")
    e.add_argument("--npz", action="store_true", help="also save the tensors the overlays show")
    e.add_argument("--gt", type=int, default=None, help="anchor/roi targets of one truth object (its index)")
    e.add_argument("--targets", choices=("sampled", "positive", "all"), default=None,
                   help="anchor/roi targets shown: the minibatch (default), every positive, or all labelled anchors")
    add_truth_options(e)
    add_model_options(e)
    e.set_defaults(func=run)
