"""Annotated PNGs with a JSON sidecar (and optional .npz): the same layers the desktop app shows
(core.overlays) rasterized by core.overlays.render. Writes are atomic. The app's export and ``rcnn-lens
export`` (core.cli.export) both come here: cli -> export -> overlays -> render, one way."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from core.atomic import write_bytes, write_text
from core.errors import LensError
from core.overlays import REGISTRY, all_layers, merged
from core.overlays import group as group_of
from core.overlays.paths import check as check_paths
from core.overlays.paths import layers as path_layers
from core.tracing.images import save_png

VERSION = "0.1.0"


def parse_overlays(text: str) -> list[str]:
    """``all`` (the seven stages, and masks/keypoints for models with those heads), ``training``
    (truth,anchor_targets,roi_targets,loss) or a comma list of registered stages -> the names in
    drawing order."""
    everything = list(REGISTRY)
    names = []
    for t in (t.strip() for t in text.split(",")):
        names += ([n for n in everything if REGISTRY[n].group != "training"] if t == "all"
                  else group_of("training") if t == "training" else [t] if t else [])
    for n in names:
        if n not in REGISTRY:
            raise LensError(n, f"unknown overlay; use all, training or some of {','.join(everything)}")
    return [s for s in everything if s in names]


def legend_lines(tr, stages: list[str], captions: list[str]) -> list[str]:
    p = tr.params
    return [f"R-CNN Lens  model {tr.model}  weights {tr.weights}  image {Path(tr.meta.name).name}",
            "thresholds: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()),
            *captions]


def render_trace(tr, stages: list[str], settings: dict | None = None, legend: bool = True, paths=None):
    """(RGB array, the StageLayers drawn, the full settings) for the chosen stages in the pipeline's
    order, and on top the ``paths`` the window draws (core.overlays.paths: a selected box, an object)."""
    from core.overlays.render import render

    full = merged(settings)
    drawn = all_layers(tr, stages, full) + path_layers(tr, paths)
    lines = legend_lines(tr, stages, [d.caption for d in drawn]) if legend else None
    return render(tr.image, drawn, lines), drawn, full


def _wh(hw) -> list[int]:
    """(H, W) -> [W, H]: sizes read W x H in the sidecar, as in every caption and table."""
    return [int(hw[1]), int(hw[0])]


def sidecar(tr, stages, full_settings, image_path: str | None, png_name: str, size, paths=None) -> dict:
    """The JSON beside an exported PNG: what it shows and how to make it again (``size``: the PNG's (H, W))."""
    digest = hashlib.sha256(np.ascontiguousarray(tr.image).tobytes()).hexdigest()
    file_digest = None
    if image_path and Path(image_path).is_file():
        file_digest = hashlib.sha256(Path(image_path).read_bytes()).hexdigest()
    return {
        "rcnn_lens": VERSION, "output": png_name, "image": image_path, "image_sha256": file_digest,
        "pixels_sha256": digest, "image_size": _wh(tr.meta.original_size), "output_size": _wh(size),  # W, H
        "model": tr.model, "weights": tr.weights, "params": tr.params, "overlays": list(stages),
        "settings": {st: full_settings[st] for st in stages},
        **({"paths": check_paths(paths)} if paths and any(v is not None for v in check_paths(paths).values()) else {}),
        "reproduce": "rcnn-lens export " + (image_path or "IMAGE") + f" --model {tr.model} --weights {tr.weights} "
                     f"--overlays {','.join(stages)} --settings SIDECAR.json"
                     + (f" --annotations {tr.truth.source} --seed {tr.training.seed}" if tr.training is not None else ""),
        **({"truth": tr.truth.records(), "annotations": tr.truth.source} if tr.truth is not None else {}),
        **({"training": tr.training.counts()} if tr.training is not None else {}),
    }


def write_export(tr, out_png: Path, stages: list[str], settings: dict | None = None, legend: bool = True,
                 npz: bool = False, image_path: str | None = None, paths=None) -> dict:
    """Render and write PNG + JSON sidecar (+ .npz); returns the sidecar dict. ``paths``: the selected
    box and object whose paths are drawn on top (core.overlays.paths), kept in the sidecar."""
    rgb, drawn, full = render_trace(tr, stages, settings, legend, paths)
    meta = sidecar(tr, stages, full, image_path, out_png.name, rgb.shape[:2], paths)
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
