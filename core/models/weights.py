"""Resolving a weights spec: ``random[:SEED]``, ``coco``, ``demo`` or a checkpoint path.

Checkpoints are untrusted input (core.models.checkpoints: ``weights_only=True``, safetensors, a whole
pickled model only with ``trust``). COCO weights go through torchvision's weights API (URL, file
name, class names) and torch.hub's cache folder; where the model hub is reachable and the caller
allows it (``download=True``), they are fetched on first use with a progress bar or callback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch

from core.errors import WeightsError
from core.models import checkpoints
from core.models import download as dl
from core.models.checkpoints import Checkpoint
from core.models.presets import Preset
from core.paths import ASSETS, DEMO_WEIGHTS  # noqa: F401 - re-exported


@dataclass
class Resolved:
    spec: str
    state_dict: dict | None  # None: keep the random initialisation (or what a builder made)
    class_names: list[str] | None
    config: dict | None
    num_classes: int | None
    seed: int | None = None
    eps: float | None = None  # BatchNorm eps override (torchvision's v1 COCO weights use 0.0)
    source: str = ""
    checkpoint: Checkpoint | None = None
    keypoint_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def coco_weights(preset: Preset):
    """torchvision's weights enum member for the preset's COCO weights."""
    if not preset.coco:
        raise WeightsError(preset.name, "has no COCO weights; use random, a checkpoint or demo")
    from torchvision.models import detection

    enum_name, member = preset.coco.split(".")
    return getattr(getattr(detection, enum_name), member)


MIRROR_ENV = "RCNN_LENS_WEIGHTS_MIRROR"


def coco_url(preset: Preset) -> str:
    """torchvision's URL of the preset's COCO weights, or the same file name under the folder URL
    that ``RCNN_LENS_WEIGHTS_MIRROR`` names (an http(s) mirror of download.pytorch.org/models/, for
    machines that reach a local mirror but not the hub; the tests' loopback server). The file name,
    and the sha256 prefix it carries, stay torchvision's: a mirror cannot change what is accepted."""
    url = coco_weights(preset).url
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    parsed = urlparse(mirror)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise WeightsError(MIRROR_ENV, f"expected the http(s) URL of a folder holding torchvision's weights files, "
                                       f"not {mirror!r}")
    return mirror.rstrip("/") + "/" + os.path.basename(urlparse(url).path)


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def coco_file(preset: Preset) -> Path:
    """Where torch.hub caches the preset's COCO weights (the URL's file name, as torchvision names it)."""
    return cache_dir() / os.path.basename(urlparse(coco_url(preset)).path)


def download_coco(preset: Preset, progress: Callable[[int, int | None], None] | None = None,
                  cancel: Callable[[], bool] | None = None, bar: bool = True) -> Path:
    """Fetch the COCO weights into torch.hub's cache (needs the model hub), checking the sha256
    prefix the file name carries as torchvision does. ``progress(done, total)`` and ``cancel()``
    serve the GUI's progress dialog; ``bar`` a tqdm bar on a terminal. Atomic: nothing partial stays."""
    dst = coco_file(preset)
    try:
        return dl.fetch(coco_url(preset), dst, hash_prefix=dl.hash_prefix_of(dst.name), progress=progress,
                        cancel=cancel, bar=bar)
    except dl.Unreachable as err:
        raise dl.Unreachable(dst.name, f"{err.problem}; put {dst.name} in {dst.parent} by hand") from None


def availability(preset: Preset) -> list[dict]:
    """The weights a preset can use and whether each is here offline, for `rcnn-lens models` and
    the GUI's model chooser: [{"spec", "available", "note"}]."""
    rows = []
    if preset.name == "demo":
        ok = DEMO_WEIGHTS.is_file()
        rows.append({"spec": "demo", "available": ok, "note": "shipped" if ok else "missing: make train"})
    if preset.coco:
        f = coco_file(preset)
        ok = f.is_file()
        rows.append({"spec": "coco", "available": ok,
                     "note": "cached" if ok else f"not cached: downloads on first use, or put {f.name} in {f.parent}"})
    rows.append({"spec": "random", "available": True, "note": "random init (every stage shows noise)"})
    return rows


def sidecar_classes(path: Path) -> list[str] | None:
    for cand in (path.with_suffix(".classes.txt"), path.with_name(path.name + ".classes.txt"),
                 path.parent / "classes.txt"):
        if cand.is_file():
            names = [ln.strip() for ln in cand.read_text(encoding="utf-8").splitlines() if ln.strip()]
            return names or None
    return None


def is_random(spec: str) -> bool:
    return spec == "random" or spec.startswith("random:")


def _random(spec: str) -> Resolved:
    seed = 0
    if ":" in spec:
        try:
            seed = int(spec.split(":", 1)[1])
        except ValueError:
            raise WeightsError(spec, "expected random or random:SEED with an integer SEED") from None
    return Resolved(spec, None, None, None, None, seed=seed, source=f"random init, seed {seed}")


def _coco(preset: Preset, download: bool, progress, cancel, bar: bool) -> Resolved:
    w = coco_weights(preset)
    f = coco_file(preset)
    notes = []
    if not f.is_file():
        offline = (f.name, f"COCO weights for {preset.name} are not cached and no model hub is reachable; "
                           f"put {f.name} in {f.parent}")
        if not download:
            raise WeightsError(*offline)
        try:
            download_coco(preset, progress=progress, cancel=cancel, bar=bar)
        except dl.Unreachable:
            raise WeightsError(*offline) from None
        notes.append("downloaded")
    ck = checkpoints.read(f)
    names = list(w.meta.get("categories") or [])
    kp = list(w.meta.get("keypoint_names") or []) or None
    return Resolved("coco", ck.state_dict, names or None, None, len(names) or None, eps=preset.coco_eps,
                    source=str(f), checkpoint=ck, keypoint_names=kp, notes=notes)


def resolve(preset: Preset | None, spec: str, *, trust: bool = False, download: bool = False,
            progress=None, cancel=None, bar: bool = False) -> Resolved:
    """A weights spec -> Resolved. ``preset`` is None for a builder or ``auto`` (no coco/demo by
    preset then)."""
    spec = spec.strip()
    if is_random(spec):
        return _random(spec)
    if spec == "coco":
        if preset is None:
            raise WeightsError("coco", "COCO weights belong to a preset; name one with --model")
        return _coco(preset, download, progress, cancel, bar)
    if spec == "demo":
        if not DEMO_WEIGHTS.is_file():
            raise WeightsError(DEMO_WEIGHTS, "the demo weights are missing; run `make train` to make them")
        path = DEMO_WEIGHTS
    else:
        path = Path(spec).expanduser()
    ck = checkpoints.read(path, trust=trust)
    names = ck.classes or sidecar_classes(path)
    sd = ck.state_dict if ck.module is None else None
    from core.models.fit import num_classes

    return Resolved(spec, sd, names, ck.config, num_classes(sd) if sd else None, source=str(path), checkpoint=ck)
