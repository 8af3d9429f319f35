"""Loading a model: a preset name + a weights spec -> LoadedModel (eval mode, on a device)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import presets
from . import weights as weights_mod
from .errors import ModelError, WeightsError


@dataclass
class LoadedModel:
    name: str
    weights: str
    module: nn.Module  # a torchvision GeneralizedRCNN, eval mode
    class_names: list[str]  # index 0 is the background
    device: torch.device
    config: dict | None = None
    source: str = ""
    overrides: dict = field(default_factory=dict)

    def class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class {label}"


def pick_device(device: str | None) -> torch.device:
    device = (device or "cpu").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(f"device {device}", "CUDA is not available on this machine; use --device cpu")
        return torch.device(device)
    if device != "cpu":
        raise ModelError(f"device {device}", "unknown device; use cpu, cuda or auto")
    return torch.device("cpu")


def _freeze_missing_bn(model: nn.Module, sd: dict) -> None:
    """BatchNorm layers whose weights came without num_batches_tracked were FrozenBatchNorm2d
    when saved (torchvision's pretrained backbones): make them so, so the keys fit."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if (isinstance(child, nn.BatchNorm2d) and f"{full}.running_mean" in sd
                    and f"{full}.num_batches_tracked" not in sd):
                setattr(mod, child_name, FrozenBatchNorm2d(child.num_features, eps=child.eps))


def _apply_state(model: nn.Module, sd: dict, source: str, preset: str) -> None:
    _freeze_missing_bn(model, sd)
    own = model.state_dict()
    mismatched = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if mismatched:
            k = mismatched[0]
            parts.append(f"{len(mismatched)} of another shape (e.g. {k}: {tuple(sd[k].shape)} "
                         f"vs {tuple(own[k].shape)})")
        raise WeightsError(source, f"keys do not fit model {preset}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=True)


def load_model(name: str | None = None, weights: str | None = None, device: str | None = "cpu",
               **overrides) -> LoadedModel:
    """Build preset ``name`` with ``weights`` (see core.weights) in eval mode on ``device``.

    ``overrides`` are torchvision FasterRCNN keywords (``box_score_thresh=...``, ``min_size=...``).
    """
    preset = presets.get(name or presets.DEFAULT_PRESET)
    spec = weights or preset.default_weights
    dev = pick_device(device)
    res = weights_mod.resolve(preset, spec)
    num_classes = res.num_classes or preset.default_classes
    build_kw = dict(overrides)
    if res.config is not None and preset.name == "demo":
        build_kw["config"] = res.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(res.seed if res.seed is not None else 0)
        try:
            module = preset.build(num_classes=num_classes, **build_kw)
        except TypeError as err:
            raise ModelError(preset.name, f"bad model option ({err})") from None
    if res.state_dict is not None:
        _apply_state(module, res.state_dict, res.source or spec, preset.name)
    if res.eps is not None:
        from torchvision.ops.misc import FrozenBatchNorm2d

        for m in module.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.eps = res.eps
    module.eval().to(dev)
    names = list(res.class_names or [])
    if len(names) < num_classes:
        names += [f"class {i}" for i in range(len(names), num_classes)]
    if names and not res.class_names:
        names[0] = "__background__"
    return LoadedModel(preset.name, spec, module, names[:num_classes], dev, res.config, res.source, overrides)

