"""Reading a checkpoint file: untrusted input, one clear line when it cannot be used.

Torch files load with ``torch.load(..., weights_only=True)``; the one extra global allowed is
``argparse.Namespace`` (torchvision's reference scripts save their ``args``). The globals a file
needs are listed before anything is unpickled (``torch.serialization.get_unsafe_globals_in_checkpoint``
reads the pickle's opcodes), so a refused file runs nothing. A whole pickled model
(``torch.save(model)``) loads only with ``trust=True`` (``weights_only=False``): for files the user
made. ``.safetensors`` files load through the safetensors package. No warning text from torch
reaches the terminal.

The state dict is looked for under ``model``, ``state_dict``, ``model_state_dict``, ``ema``,
``model_ema`` (in that order) or at the top level; ``Checkpoint.where`` says which.
"""

from __future__ import annotations

import argparse
import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.errors import WeightsError

STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict", "ema", "model_ema")
ALLOWED_GLOBALS = (argparse.Namespace,)
# globals of a pickled nn.Module tree: torch's layers and torchvision's models and ops
MODULE_GLOBALS = ("torch.nn.modules.", "torchvision.models.", "torchvision.ops.")
EMA_EXTRA = ("n_averaged",)  # torch.optim.swa_utils.AveragedModel's counter, not a weight
CONVERT = "convert it where it was made with torch.save(model.state_dict(), 'weights.pt')"


@dataclass
class Checkpoint:
    path: Path
    state_dict: dict | None  # name -> tensor, as in the file (prefixes not yet removed)
    where: str = "top level"  # where the state dict was found: "top level", "'model'", ...
    module: object = None  # a whole pickled model (trust=True only)
    classes: list[str] | None = None
    config: dict | None = None
    arch: str | None = None  # the model the file names (reference scripts' args.model)
    train_args: dict | None = None  # a reference-script checkpoint's args, as a dict
    format: str = "torch"  # "torch", "safetensors" or "pickled model"
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """What was read, for the loaded-model summary."""
        if self.module is not None:
            return f"a whole pickled {type(self.module).__name__} (loaded with --trust)"
        if self.format == "safetensors":
            what = "a safetensors file"
        elif self.where == "top level":
            what = "state dict at the top level"
        else:
            what = f"state dict under {self.where}"
        return ", ".join([what, *self.notes])


def unsafe_globals(path: Path) -> list[str] | None:
    """The globals beyond torch's weights_only set that the file's pickle names (nothing is run);
    None for a file in torch's legacy (non-zip) format, which torch cannot list."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with warnings.catch_warnings(record=True):
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as err:  # noqa: BLE001 - a corrupt zip, a zip that is not torch's
        raise WeightsError(path, f"not a PyTorch checkpoint ({_plain_reason(path, err)})") from None
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in ALLOWED_GLOBALS}
    return [n for n in names if n not in allowed]


def is_whole_model(names: list[str]) -> bool:
    return any(n.startswith(MODULE_GLOBALS) for n in names)


def needs_trust(path: str | Path) -> bool:
    """Whether the file loads only with trust (a whole pickled model or other Python objects).
    For the GUI's trust checkbox; reads no tensors and runs nothing."""
    p = Path(path)
    if p.suffix == ".safetensors" or not p.is_file():
        return False
    try:
        names = unsafe_globals(p)
    except WeightsError:
        return False
    return bool(names)


def read(path: str | Path, trust: bool = False) -> Checkpoint:
    """Read a checkpoint: a safetensors file, a (possibly wrapped) state dict, or with ``trust``
    a whole pickled model."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(path, "no such checkpoint file")
    if path.is_dir():
        raise WeightsError(path, "is a folder, not a checkpoint")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    obj = _torch_load(path, trust)
    return interpret(obj, path)


def _read_safetensors(path: Path) -> Checkpoint:
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:  # pragma: no cover - a dependency of the project
        raise WeightsError(path, "the safetensors package is not installed (pip install safetensors)") from None
    try:
        with warnings.catch_warnings(record=True):
            sd = load_file(str(path), device="cpu")
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise WeightsError(path, f"not a safetensors file ({_first_line(err)})") from None
    classes = None
    if "classes" in meta:
        try:
            value = json.loads(meta["classes"])
            classes = [str(c) for c in value] if isinstance(value, list) else None
        except ValueError:
            classes = None
    if not sd:
        raise WeightsError(path, "holds no tensors")
    return Checkpoint(path, sd, "top level", classes=classes, format="safetensors")


def _torch_load(path: Path, trust: bool):
    names = unsafe_globals(path)
    if names and not trust:
        if is_whole_model(names):
            raise WeightsError(path, "refused: a whole pickled model (torch.save(model)), and unpickling it runs "
                                     f"code from the file; {CONVERT}, or pass --trust if you made this file")
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise WeightsError(path, f"refused: holds Python objects ({shown}) beyond tensors and plain data; "
                                 "checkpoints load with weights_only=True (pass --trust only for a file you made)")
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            if trust and names:
                return torch.load(path, map_location="cpu", weights_only=False)
            with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
                return torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except (AttributeError, ModuleNotFoundError, ImportError) as err:
        # a trusted pickle whose classes are not importable here
        raise WeightsError(path, f"the pickled model needs code that is not importable here ({_first_line(err)}); "
                                 f"{CONVERT} and use --model file.py:function") from None
    except Exception as err:  # noqa: BLE001 - pickle, zip, EOF and runtime errors of a corrupt file
        text = str(err)
        if "GLOBAL " in text:  # the legacy format, whose globals torch cannot list up front
            what = text.split("GLOBAL ", 1)[1].split()[0]
            raise WeightsError(path, f"refused: holds Python objects ({what}) beyond tensors and plain data; "
                                     "checkpoints load with weights_only=True (pass --trust only for a file "
                                     "you made)") from None
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported global")), "")
        detail = detail or _plain_reason(path, err)  # not pickle's or miniz's internal words
        raise WeightsError(path, f"not a PyTorch checkpoint ({detail[:160]})") from None


def _plain_reason(path: Path, err: BaseException) -> str:
    """Why a file is no checkpoint, in the user's words (the reader's own message names its internals)."""
    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
    except OSError:
        pass
    if zipfile.is_zipfile(path):
        return "a zip archive, but not one torch.save wrote, or damaged"
    if isinstance(err, EOFError):
        return "the file ends early: cut short while copying?"
    return "neither torch's zip format nor its legacy pickle format"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _tensors(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def _is_detector(obj) -> bool:
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    return isinstance(obj, GeneralizedRCNN)


def interpret(obj, path: Path) -> Checkpoint:
    """A loaded object -> Checkpoint: find the state dict (or a pickled detector) in it."""
    if isinstance(obj, torch.nn.Module):
        if not _is_detector(obj):
            raise WeightsError(path, f"holds a pickled {type(obj).__module__}.{type(obj).__name__}, not a "
                                     "torchvision GeneralizedRCNN detector (FasterRCNN, MaskRCNN, KeypointRCNN)")
        return Checkpoint(path, None, "top level", module=obj, format="pickled model")
    if not isinstance(obj, dict):
        raise WeightsError(path, f"expected a state dict or a dict holding one, found {type(obj).__name__}")
    ck = Checkpoint(path, None)
    for key in STATE_DICT_KEYS:
        value = obj.get(key)
        if isinstance(value, torch.nn.Module) and _is_detector(value):
            ck.module, ck.where, ck.format = value, f"'{key}'", "pickled model"
            break
        if isinstance(value, dict) and _tensors(value):
            sd = _tensors(value)
            if key in ("ema", "model_ema"):
                sd = {k: v for k, v in sd.items() if k not in EMA_EXTRA}
            ck.state_dict, ck.where = sd, f"'{key}'"
            others = [k for k in STATE_DICT_KEYS if k != key and isinstance(obj.get(k), dict)]
            if others:
                ck.notes.append("also holds " + ", ".join(f"'{k}'" for k in others) + " (not used)")
            break
    else:
        sd = _tensors(obj)
        if not sd:
            raise WeightsError(path, "holds no tensors: expected a state dict, or a dict with one under "
                                     + ", ".join(f"'{k}'" for k in STATE_DICT_KEYS))
        ck.state_dict = sd
    args = obj.get("args")
    if isinstance(args, argparse.Namespace):
        ck.notes.append("a torchvision reference-script checkpoint")
        arch = getattr(args, "model", None)
        ck.arch = arch if isinstance(arch, str) else None
        ck.train_args = dict(vars(args))
    if "pytorch-lightning_version" in obj or "lightning_version" in obj:
        ck.notes.append("a Lightning checkpoint")
    if isinstance(obj.get("epoch"), int):
        ck.notes.append(f"epoch {obj['epoch']}")
    names = obj.get("classes")
    if isinstance(names, list | tuple) and names:
        ck.classes = [str(n) for n in names]
    if isinstance(obj.get("config"), dict):
        ck.config = obj["config"]
    return ck
