"""``rcnn-lens export``: annotated PNGs with a JSON sidecar (and optional .npz) per image.

The same layers the desktop app shows (core.overlays) rasterized by core.render. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from .atomic import write_bytes, write_text
from .errors import LensError
from .images import save_png
from .overlays import all_layers, merged
from .stages import EXTRA_STAGES, STAGES, TRAINING_STAGES

ALL_STAGES = STAGES + EXTRA_STAGES + TRAINING_STAGES

VERSION = "0.1.0"


def parse_overlays(text: str) -> list[str]:
    """``all`` (the seven stages, and masks/keypoints for models with those heads), ``training``
    (truth,anchor_targets,roi_targets,loss) or a comma list."""
    names = []
    for t in (t.strip() for t in text.split(",")):
        names += list(STAGES + EXTRA_STAGES) if t == "all" else list(TRAINING_STAGES) if t == "training" \
            else [t] if t else []
    for n in names:
        if n not in ALL_STAGES:
            raise LensError(n, f"unknown overlay; use all, training or some of {','.join(ALL_STAGES)}")
    return [s for s in ALL_STAGES if s in names]


def legend_lines(tr, stages: list[str], captions: list[str]) -> list[str]:
    p = tr.params
    return [f"R-CNN Lens  model {tr.model}  weights {tr.weights}  image {Path(tr.meta.name).name}",
            "thresholds: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()),
            *captions]


def render_trace(tr, stages: list[str], settings: dict | None = None, legend: bool = True):
    """(RGB array, the StageLayers drawn) for the chosen stages, in the pipeline's order."""
    from .render import render

    full = merged(settings)
    drawn = all_layers(tr, stages, full)
    lines = legend_lines(tr, stages, [d.caption for d in drawn]) if legend else None
    return render(tr.image, drawn, lines), drawn, full


def sidecar(tr, stages, full_settings, image_path: str | None, png_name: str, size) -> dict:
    digest = hashlib.sha256(np.ascontiguousarray(tr.image).tobytes()).hexdigest()
    file_digest = None
    if image_path and Path(image_path).is_file():
        file_digest = hashlib.sha256(Path(image_path).read_bytes()).hexdigest()
    return {
        "rcnn_lens": VERSION, "output": png_name, "image": image_path, "image_sha256": file_digest,
        "pixels_sha256": digest, "image_size": list(tr.meta.original_size), "output_size": list(size),
        "model": tr.model, "weights": tr.weights, "params": tr.params, "overlays": list(stages),
        "settings": {st: full_settings[st] for st in stages},
        "reproduce": "rcnn-lens export " + (image_path or "IMAGE") + f" --model {tr.model} --weights {tr.weights} "
                     f"--overlays {','.join(stages)} --settings SIDECAR.json"
                     + (f" --annotations {tr.truth.source} --seed {tr.training.seed}" if tr.training is not None else ""),
        **({"truth": tr.truth.records(), "annotations": tr.truth.source} if tr.truth is not None else {}),
        **({"training": tr.training.counts()} if tr.training is not None else {}),
    }


def write_export(tr, out_png: Path, stages: list[str], settings: dict | None = None, legend: bool = True,
                 npz: bool = False, image_path: str | None = None) -> dict:
    """Render and write PNG + JSON sidecar (+ .npz); returns the sidecar dict."""
    rgb, drawn, full = render_trace(tr, stages, settings, legend)
    meta = sidecar(tr, stages, full, image_path, out_png.name, rgb.shape[:2])
    save_png(out_png, rgb)
    write_text(out_png.with_suffix(".json"), json.dumps(meta, indent=2, default=_jsonable))
    if npz:
        arrays = {k: np.asarray(v) for d in drawn for k, v in d.tensors.items()}
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_bytes(out_png.with_suffix(".npz"), buf.getvalue())
    return meta


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def settings_from_args(args) -> dict:
    s: dict = {}
    if args.settings:
        try:
            loaded = json.loads(Path(args.settings).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise LensError(args.settings, f"cannot read settings JSON ({err})") from None
        s = loaded.get("settings", loaded) if isinstance(loaded, dict) else {}

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


def run_export(args) -> int:
    from tqdm import tqdm

    from .cli import _load, finish_truth, thresholds, truth_lookup, with_truth

    stages = parse_overlays(args.overlays)
    settings = settings_from_args(args)
    outs = targets(args.images, args.out)
    lookup = truth_lookup(args)  # before torch loads: a bad annotation file fails at once
    from .runner import trace

    model = _load(args)
    params = thresholds(args)
    failed = 0
    bar = tqdm(list(zip(args.images, outs)), desc="export", unit="img", disable=None, file=sys.stderr)
    for img, out in bar:
        try:
            tr = with_truth(trace(model, img, **params), lookup, img, model.class_names, args.seed)
            write_export(tr, out, stages, settings, legend=not args.no_legend, npz=args.npz, image_path=img)
        except LensError as err:
            bar.write(f"rcnn-lens: {err}", file=sys.stderr)
            failed += 1
            continue
        if not sys.stderr.isatty():
            print(out, flush=True)
    return 1 if (finish_truth(lookup) or failed) else 0


def add_export_parser(sub, add_model_options) -> None:
    e = sub.add_parser("export", help="write annotated PNGs (+ JSON sidecar) of the chosen stage overlays")
    e.add_argument("images", nargs="+", metavar="IMAGE")
    e.add_argument("--overlays", default="detections",
                   help=f"all, training, or a comma list of {','.join(ALL_STAGES)}")
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
    e.add_argument("--settings", default=None, help="stage settings JSON (a sidecar works)")
    e.add_argument("--no-legend", action="store_true", help="the photo alone, no legend below")
    e.add_argument("--npz", action="store_true", help="also save the tensors the overlays show")
    e.add_argument("--gt", type=int, default=None, help="anchor/roi targets of one truth object (its index)")
    e.add_argument("--targets", choices=("sampled", "positive", "all"), default=None,
                   help="anchor/roi targets shown: the minibatch (default), every positive, or all labelled anchors")
    from .cli import add_truth_options

    add_truth_options(e)
    add_model_options(e)
    e.set_defaults(func=lambda a: run_export(a))
