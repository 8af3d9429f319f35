"""Do a state dict's keys and shapes fit a model, and which presets do they fit.

A common key prefix that, removed, makes the keys fit is removed: ``module.`` (DDP), ``model.``
(Lightning), ``net.``, ``_orig_mod.`` (torch.compile), also nested twice (``module.model.``).
Keys outside the removed prefix (a Lightning module's loss or metric buffers) are left out and
reported. Presets are checked on the meta device: no memory, no initialisation (milliseconds each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from core.models import presets

PREFIXES = ("module.", "model.", "net.", "_orig_mod.")
CLS_SCORE = "roi_heads.box_predictor.cls_score.weight"
KEYPOINT_SCORE = "roi_heads.keypoint_predictor.kps_score_lowres.weight"
BN_COUNTER = "num_batches_tracked"


@dataclass
class Fit:
    state_dict: dict  # keys renamed to the model's
    prefix: str = ""  # the prefix removed ("" when none)
    ignored: list[str] = field(default_factory=list)  # keys outside the prefix, left out
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def errors(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def notes(self) -> list[str]:
        out = []
        if self.prefix:
            out.append(f"key prefix '{self.prefix}' removed")
        if self.ignored:
            n = len(self.ignored)
            out.append(f"{n} key{'s' if n > 1 else ''} outside it left out (e.g. {', '.join(self.ignored[:2])})")
        return out

    def problem(self, shapes: dict) -> str:
        """The mismatch in words (missing, unexpected, of another shape), for an error line."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing (e.g. {', '.join(self.missing[:3])})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected (e.g. {', '.join(self.unexpected[:3])})")
        if self.mismatched:
            k = self.mismatched[0]
            parts.append(f"{len(self.mismatched)} of another shape (e.g. {k}: "
                         f"{tuple(self.state_dict[k].shape)} vs {tuple(shapes[k])})")
        return "; ".join(parts)


def shapes_of(module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _compare(sd: dict, own: dict) -> tuple[list, list, list]:
    def bn_counter(k: str, other: dict) -> bool:
        # BatchNorm saved as FrozenBatchNorm2d (no counter) or loaded into one (counter dropped)
        return k.endswith(BN_COUNTER) and (k[: -len(BN_COUNTER)] + "running_mean") in other

    missing = [k for k in own if k not in sd and not bn_counter(k, sd)]
    unexpected = [k for k in sd if k not in own and not bn_counter(k, own)]
    mismatched = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k])]
    return missing, unexpected, mismatched


def candidate_prefixes(keys) -> list[str]:
    """"" and each known prefix (up to two deep) that some key starts with."""
    found = {""}
    for k in keys:
        p = ""
        for _ in range(2):
            nxt = next((q for q in PREFIXES if k.startswith(p + q)), None)
            if nxt is None:
                break
            p += nxt
            found.add(p)
    return sorted(found, key=lambda s: (s.count("."), s))


def fit(sd: dict, own: dict) -> Fit:
    """The best way ``sd`` fits a model whose state dict shapes are ``own``: with no prefix, or
    with a known prefix removed. ``.ok`` when it fits exactly."""
    best = None
    for prefix in candidate_prefixes(sd):
        if prefix:
            inside = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            ignored = [k for k in sd if not k.startswith(prefix)]
        else:
            inside, ignored = dict(sd), []
        f = Fit(inside, prefix, ignored, *_compare(inside, own))
        if f.ok:
            return f
        if best is None or f.errors < best.errors:
            best = f
    return best


def _suffix_value(sd: dict, suffix: str, dim: int) -> int | None:
    for k, v in sd.items():
        if (k == suffix or k.endswith("." + suffix)) and v.dim() > dim:
            return int(v.shape[dim])
    return None


def num_classes(sd: dict) -> int | None:
    """Classes of the box predictor (whatever prefix the keys carry)."""
    return _suffix_value(sd, CLS_SCORE, 0)


def num_keypoints(sd: dict) -> int | None:
    return _suffix_value(sd, KEYPOINT_SCORE, 1)


def build_keywords(preset, sd: dict, config: dict | None = None) -> dict:
    """The builder keywords a state dict implies for a preset: its classes, keypoints, config."""
    kw = {"num_classes": num_classes(sd) or preset.default_classes}
    k = num_keypoints(sd)
    if k is not None and preset.keypoints:
        kw["num_keypoints"] = k
    if config is not None and preset.takes_config:
        kw["config"] = config
    return kw


@lru_cache(maxsize=64)
def _meta_shapes(name: str, kw_json: str) -> dict:
    kw = json.loads(kw_json)
    with torch.device("meta"):
        module = presets.get(name).build(**kw)
    return shapes_of(module)


def preset_shapes(name: str, kw: dict) -> dict:
    """State dict shapes of preset ``name`` built with ``kw``, on the meta device (cached)."""
    return _meta_shapes(name, json.dumps(kw, sort_keys=True))


def fitting_presets(sd: dict, config: dict | None = None) -> list[str]:
    """The presets whose keys and shapes ``sd`` fits (prefixes removed where that helps)."""
    out = []
    for name, preset in presets.PRESETS.items():
        try:
            shapes = preset_shapes(name, build_keywords(preset, sd, config))
        except Exception:  # noqa: BLE001 - a preset that cannot take these keywords does not fit
            continue
        if fit(sd, shapes).ok:
            out.append(name)
    return out


def suggest(path, trust: bool = False) -> list[str]:
    """The presets a checkpoint file fits (for the GUI's model chooser); [] when it cannot be read."""
    from core.errors import LensError
    from core.models import checkpoints

    try:
        ck = checkpoints.read(path, trust=trust)
    except LensError:
        return []
    sd = ck.state_dict if ck.module is None else ck.module.state_dict()
    return fitting_presets(sd, ck.config)
