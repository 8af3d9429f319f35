"""Loading a model: a preset, ``auto`` or a user builder + a weights spec -> LoadedModel.

``name`` is a preset of core.models.presets, ``auto`` (the preset a checkpoint's keys and shapes fit;
also the default when the weights are a checkpoint and no model is named) or a builder
``path/to/file.py:function`` / ``package.module:function`` (runs the user's code). A checkpoint's
keys are fitted with core.models.fit (prefixes removed; the presets that would fit are named when they do
not). Every model passes core.models.support's check: refused in one line if the runner cannot walk it,
or marked so that its first trace is checked against ``model(images)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.errors import ModelError, WeightsError
from core.models import builders, presets
from core.models import fit as fit_mod
from core.models import weights as weights_mod
from core.models.params import SETTERS
from core.models.support import Support, inspect_model

AUTO = "auto"
@dataclass
class LoadedModel:
    name: str  # the preset, or the builder spec; what --model reproduces it
    weights: str
    module: nn.Module  # a torchvision GeneralizedRCNN, eval mode
    class_names: list[str]  # index 0 is the background
    device: torch.device
    config: dict | None = None
    source: str = ""
    overrides: dict = field(default_factory=dict)
    summary: str = ""  # what was loaded, in words (preset, where the state dict was, prefixes removed)
    keypoint_names: list[str] | None = None
    support: Support = field(default_factory=Support)
    trusted: bool = False  # loaded with --trust (a whole pickled model)
    first_check: object = None  # core.tracing.types.ModelCheck of the first trace, for models that need one

    def class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class {label}"

    @property
    def random_weights(self) -> bool:
        return weights_mod.is_random(self.weights)


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
    when saved (torchvision's pretrained backbones): make them so, so the keys fit, with the eps
    torchvision's builders give them (``norm_layer=FrozenBatchNorm2d``: its default)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if (isinstance(child, nn.BatchNorm2d) and f"{full}.running_mean" in sd
                    and f"{full}.num_batches_tracked" not in sd):
                setattr(mod, child_name, FrozenBatchNorm2d(child.num_features))


def _hint(sd: dict, config: dict | None, exclude: str | None, prefer: str | None = None) -> str:
    fits = [n for n in fit_mod.fitting_presets(sd, config) if n != exclude]
    fits.sort(key=lambda n: n != prefer)  # the model the checkpoint names first
    if fits:
        return f"; they fit {', '.join(fits)} (--model {fits[0]}, or --model auto)"
    return "; no preset fits them (a model of your own: --model path/to/file.py:function)"


def apply_state(model: nn.Module, sd: dict, source: str, model_name: str, config: dict | None = None,
                hint: bool = True, prefer: str | None = None) -> fit_mod.Fit:
    """Load ``sd`` into ``model`` (prefixes removed where that makes the keys fit), or raise one
    line: what does not fit, and which presets the keys would fit."""
    f = fit_mod.fit(sd, fit_mod.shapes_of(model))
    if not f.ok:
        tail = _hint(sd, config, model_name, prefer) if hint else ""
        raise WeightsError(source, f"keys do not fit model {model_name}: {f.problem(fit_mod.shapes_of(model))}{tail}")
    _freeze_missing_bn(model, f.state_dict)
    model.load_state_dict(f.state_dict, strict=True)
    return f


def _fine_tuned_eps(preset, ck, module) -> tuple[float | None, str]:
    """The FrozenBatchNorm eps of a checkpoint fine-tuned from torchvision's COCO weights.

    torchvision's builder sets eps 0.0 on the frozen BatchNorm layers of the models it builds with
    those weights (``overwrite_eps``), and the state dict does not keep eps. A checkpoint of such a
    preset whose backbone BatchNorm was frozen (no ``num_batches_tracked``) started from pretrained
    weights: from COCO's (the fine-tuning tutorial) unless its reference-script ``args.weights`` says
    otherwise (None: an ImageNet backbone only, torchvision keeps eps 1e-5)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    if preset is None or preset.coco_eps is None or not any(isinstance(m, FrozenBatchNorm2d) for m in module.modules()):
        return None, ""
    args = ck.train_args if ck is not None else None
    if args is not None and "weights" in args:
        w = args["weights"]
        if not w or "LEGACY" in str(w):
            return None, ""
        return preset.coco_eps, f"frozen BatchNorm eps {preset.coco_eps:g}, as torchvision builds it with args.weights {w}"
    return preset.coco_eps, (f"frozen BatchNorm eps {preset.coco_eps:g}, as torchvision builds it with its COCO weights "
                             "(a model fine-tuned from them)")


def _apply_overrides(module: nn.Module, overrides: dict, name: str) -> None:
    for k, v in overrides.items():
        if k not in SETTERS:
            raise ModelError(name, f"bad model option {k}: a model made by a builder or a pickle takes only "
                                   f"{', '.join(SETTERS)}")
        SETTERS[k](module, v)


def _num_classes_of(module: nn.Module) -> int | None:
    pred = getattr(module.roi_heads, "box_predictor", None)
    score = getattr(pred, "cls_score", None)
    return int(score.out_features) if isinstance(score, nn.Linear) else None


def _auto(res: weights_mod.Resolved, spec: str) -> tuple[presets.Preset, str]:
    ck = res.checkpoint
    if res.state_dict is None:
        raise ModelError(AUTO, f"needs a checkpoint file to match (--weights FILE), not {spec}")
    fits = fit_mod.fitting_presets(res.state_dict, res.config)
    if not fits:
        raise WeightsError(res.source, "fits no preset; for a model of your own use --model path/to/file.py:function"
                                       + _closest(res.state_dict, res.config))
    chosen = ck.arch if ck is not None and ck.arch in fits else fits[0]
    why = "named by the checkpoint's args.model" if chosen == (ck.arch if ck else None) else "its keys and shapes fit"
    also = [f for f in fits if f != chosen]
    note = f"auto: {chosen} ({why}" + (f"; also fits {', '.join(also)}" if also else "") + ")"
    return presets.get(chosen), note


def _closest(sd: dict, config: dict | None) -> str:
    best = None
    for name, preset in presets.PRESETS.items():
        try:
            shapes = fit_mod.preset_shapes(name, fit_mod.build_keywords(preset, sd, config))
        except Exception:  # noqa: BLE001
            continue
        f = fit_mod.fit(sd, shapes)
        if best is None or f.errors < best[1].errors:
            best = (name, f, shapes)
    if best is None:
        return ""
    return f" (closest: {best[0]}: {best[1].problem(best[2])})"


def load_model(name: str | None = None, weights: str | None = None, device: str | None = "cpu", *,
               trust: bool = False, download: bool = False, progress=None, cancel=None, bar: bool = False,
               **overrides) -> LoadedModel:
    """Build model ``name`` with ``weights`` (see core.models.weights) in eval mode on ``device``.

    ``name``: a preset, ``auto`` or a builder spec (module docstring). ``trust`` loads a whole
    pickled model (``weights_only=False``: only for files the user made). ``download`` lets
    ``coco`` fetch the weights where the hub is reachable (``progress(done, total)``, ``cancel()``,
    ``bar``: a tqdm bar on a terminal). ``overrides`` are torchvision FasterRCNN keywords
    (``box_score_thresh=...``, ``min_size=...``)."""
    dev = pick_device(device)
    spec = (weights or "").strip()
    if name is None and spec and spec not in ("coco", "demo") and not weights_mod.is_random(spec):
        name = AUTO  # a checkpoint and no model named: the preset it fits
    name = name or presets.DEFAULT_PRESET
    is_builder = builders.is_spec(name)
    preset = None if (is_builder or name == AUTO) else presets.get(name)
    if not spec:
        spec = preset.default_weights if preset is not None else "random" if name == AUTO else ""
    if is_builder and spec == "builder":
        spec = ""  # as the builder made them
    res = (weights_mod.resolve(preset, spec, trust=trust, download=download, progress=progress, cancel=cancel,
                               bar=bar) if spec else weights_mod.Resolved("", None, None, None, None))
    ck = res.checkpoint
    notes: list[str] = list(res.notes)
    if ck is not None and ck.module is not None:  # a whole pickled model, trusted
        if name == AUTO:
            module, label = ck.module, AUTO
            notes.append(ck.describe())
            return _finish(module, label, spec, dev, res, notes, overrides, trusted=True)
        res.state_dict = ck.module.state_dict()
        res.num_classes = fit_mod.num_classes(res.state_dict)
        notes.append(f"the state dict of {ck.describe()}")
    elif ck is not None:
        notes.append(ck.describe())
    if name == AUTO:
        preset, note = _auto(res, spec)
        notes.insert(0, note)
    seed = res.seed if res.seed is not None else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if is_builder:
            module = builders.build(name)
        else:
            kw = fit_mod.build_keywords(preset, res.state_dict or {}, res.config)
            if res.num_classes:
                kw["num_classes"] = res.num_classes
            kw.update(overrides)
            try:
                module = preset.build(**kw)
            except (TypeError, ValueError) as err:
                raise ModelError(preset.name, f"bad model option ({err})") from None
    if is_builder:
        _apply_overrides(module, overrides, name)
    label = name if is_builder else preset.name
    if res.state_dict is not None:
        f = apply_state(module, res.state_dict, res.source or spec, label, res.config,
                        prefer=ck.arch if ck is not None else None)
        notes += f.notes()
    eps = res.eps
    if eps is None and res.state_dict is not None and not is_builder:
        eps, note = _fine_tuned_eps(preset, ck, module)
        notes += [note] if note else []
    if eps is not None:
        from torchvision.ops.misc import FrozenBatchNorm2d

        for m in module.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.eps = eps
    if is_builder and not spec:
        notes.append("weights as the builder made them")
    return _finish(module, label, spec or "builder", dev, res, notes, overrides, trusted=trust and ck is not None
                   and ck.module is not None)


def _finish(module, label, spec, dev, res, notes, overrides, trusted=False) -> LoadedModel:
    support = inspect_model(module, label)
    if support.needs_check:
        notes.append(support.describe() + ": the first trace is checked against model(images)")
    module.eval().to(dev)
    num_classes = _num_classes_of(module) or res.num_classes or len(res.class_names or []) or 2
    names = list(res.class_names or [])
    if len(names) < num_classes:
        names += [f"class {i}" for i in range(len(names), num_classes)]
    if names and not res.class_names:
        names[0] = "__background__"
    kp_names = res.keypoint_names
    kp = getattr(module.roi_heads, "keypoint_predictor", None)
    if kp is not None and not kp_names:
        n = int(getattr(kp, "out_channels", 0))
        preset = presets.PRESETS.get(label)
        coco = list(weights_mod.coco_weights(preset).meta.get("keypoint_names") or []) \
            if preset is not None and preset.keypoints and preset.coco else []
        # a preset fine-tuned on COCO's 17 person keypoints keeps their names (and skeleton)
        kp_names = coco if len(coco) == n else [f"keypoint {i}" for i in range(n)]
    where = Path(res.source).name if res.source and not res.source.startswith("random") else res.source
    head = f"{label}, {num_classes} classes" + (f", weights {where}" if where else "")
    summary = head + (": " + "; ".join(notes) if notes else "")
    return LoadedModel(label, spec, module, names[:num_classes], dev, res.config, res.source, dict(overrides),
                       summary=summary, keypoint_names=kp_names, support=support, trusted=trusted)
