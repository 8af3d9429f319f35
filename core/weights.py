"""Resolving a weights spec: ``random[:SEED]``, ``coco``, ``demo`` or a checkpoint path.

Checkpoints are untrusted input: they load with ``torch.load(..., weights_only=True)``.
COCO weights go through torchvision's weights API (URL, file name, class names) and torch.hub's
cache folder; nothing is downloaded unless asked (``download_coco``).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from .errors import WeightsError
from .paths import ASSETS, DEMO_WEIGHTS  # noqa: F401 - re-exported
from .presets import Preset


@dataclass
class Resolved:
    spec: str
    state_dict: dict | None  # None: keep the random initialisation
    class_names: list[str] | None
    config: dict | None
    num_classes: int | None
    seed: int | None = None
    eps: float | None = None  # BatchNorm eps override (torchvision's COCO v1 weights use 0.0)
    source: str = ""


def coco_weights(preset: Preset):
    """torchvision's weights enum member for the preset's COCO weights."""
    if not preset.coco:
        raise WeightsError(preset.name, "has no COCO weights; use random, a checkpoint or demo")
    from torchvision.models import detection

    enum_name, member = preset.coco.split(".")
    return getattr(getattr(detection, enum_name), member)


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def coco_file(preset: Preset) -> Path:
    w = coco_weights(preset)
    return cache_dir() / os.path.basename(urlparse(w.url).path)


def download_coco(preset: Preset, progress: bool = True) -> Path:
    """Fetch the COCO weights into torch.hub's cache (needs the model hub; verifies the hash)."""
    w = coco_weights(preset)
    dst = coco_file(preset)
    dst.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(dst.name)  # torchvision names files NAME-<sha256 prefix>.pth
    try:
        torch.hub.download_url_to_file(w.url, str(dst), hash_prefix=match.group(1) if match else None,
                                       progress=progress)
    except Exception as err:  # noqa: BLE001 - network errors come in many types
        raise WeightsError(dst, f"download failed ({err}); put the file in {dst.parent} by hand") from None
    return dst


def read_checkpoint(path: Path) -> dict:
    if not path.exists():
        raise WeightsError(path, "no such checkpoint file")
    if path.is_dir():
        raise WeightsError(path, "is a folder, not a checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Unsupported global" in text or "GLOBAL" in text:
            what = text.split("GLOBAL", 1)[1].split()[0] if "GLOBAL " in text else "an object"
            raise WeightsError(path, f"refused: the checkpoint holds Python objects ({what}) beyond tensors "
                                     "and plain data, and checkpoints are loaded with weights_only=True") from None
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported")), "")
        raise WeightsError(path, "not a PyTorch checkpoint" + (f" ({detail})" if detail else "")) from None
    except Exception as err:  # noqa: BLE001 - zip/EOF/runtime errors from a corrupt file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(path, f"not a PyTorch checkpoint ({first[:160]})") from None
    if not isinstance(obj, dict):
        raise WeightsError(path, f"expected a state_dict or a dict holding one, found {type(obj).__name__}")
    return obj


def state_dict_of(obj: dict, path: Path) -> dict:
    for key in ("model", "state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(path, "holds no tensors: expected a state_dict, or a dict with one under "
                                 "'model' or 'state_dict'")
    return tensors


def sidecar_classes(path: Path) -> list[str] | None:
    for cand in (path.with_suffix(".classes.txt"), path.with_name(path.name + ".classes.txt"),
                 path.parent / "classes.txt"):
        if cand.is_file():
            names = [ln.strip() for ln in cand.read_text(encoding="utf-8").splitlines() if ln.strip()]
            return names or None
    return None


def resolve(preset: Preset, spec: str) -> Resolved:
    spec = spec.strip()
    if spec == "random" or spec.startswith("random:"):
        seed = 0
        if ":" in spec:
            try:
                seed = int(spec.split(":", 1)[1])
            except ValueError:
                raise WeightsError(spec, "expected random or random:SEED with an integer SEED") from None
        return Resolved(spec, None, None, None, None, seed=seed, source=f"random init, seed {seed}")
    if spec == "coco":
        w = coco_weights(preset)
        f = coco_file(preset)
        if not f.is_file():
            raise WeightsError(f.name, f"COCO weights for {preset.name} are not cached and no model hub "
                                       f"is reachable; put {f.name} in {f.parent}")
        sd = state_dict_of(read_checkpoint(f), f)
        names = list(w.meta.get("categories") or [])
        eps = 0.0 if preset.name == "fasterrcnn_resnet50_fpn" else None
        return Resolved(spec, sd, names or None, None, len(names) or None, eps=eps, source=str(f))
    if spec == "demo":
        if not DEMO_WEIGHTS.is_file():
            raise WeightsError(DEMO_WEIGHTS, "the demo weights are missing; run `make train` to make them")
        path = DEMO_WEIGHTS
    else:
        path = Path(spec).expanduser()
    obj = read_checkpoint(path)
    sd = state_dict_of(obj, path)
    names = obj.get("classes") if isinstance(obj.get("classes"), list) else None
    names = [str(n) for n in names] if names else sidecar_classes(path)
    config = obj.get("config") if isinstance(obj.get("config"), dict) else None
    num = None
    for key in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias"):
        if key in sd:
            num = int(sd[key].shape[0])
            break
    return Resolved(spec, sd, names, config, num, source=str(path))
