"""The model chooser's rules, Qt-free and torch-free (gui/model_dialog.py shows them; the engine
answers what needs torch: core.engine.model_handlers).

What the chooser offers for each model (a preset, ``auto`` or the user's own builder), which
weights are here offline and which one is the default (a torchvision preset's is COCO when its file
is cached, else random, and the chooser says so), the one line that is wrong with an input before
anything loads, what to say about a checkpoint (the presets it fits), and what the view's banner
says (random weights; a flagged model whose trace differs from ``model(images)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelError, WeightsError
from core.models import builders, presets

AUTO = "auto"  # the preset a checkpoint's keys and shapes fit
BUILDER = "builder"  # the model list's entry for the user's own builder; also the weights it makes
CHECKPOINT = "checkpoint"  # the weights list's entry for a file
RANDOM_BANNER = "random weights: every stage shows noise"
NAMED = ("coco", "demo", BUILDER)
RUNS_CODE = ("Runs your code: the file is imported and the function called, as Python runs any script. "
             "Name only code you trust.")
TRUST_WARNING = ("Unpickling a whole model runs code from the file, which can do anything your account can. "
                 "Tick only for a file you made. Never remembered.")


@dataclass(frozen=True)
class Request:
    """What a model chooser asks for: load ``name`` with ``weights`` (None: the model's default;
    ``trust`` for a whole pickled model), after fetching ``download``'s COCO weights if set."""

    name: str
    weights: str | None
    trust: bool = False
    download: str | None = None


@dataclass(frozen=True)
class WeightsOption:
    spec: str  # coco, demo, random, random:SEED, builder or checkpoint
    label: str
    note: str = ""
    available: bool | None = None  # None: not known yet (the engine has not answered)


def is_random(spec: str | None) -> bool:
    return spec == "random" or (spec or "").startswith("random:")


def is_file_spec(spec: str | None) -> bool:
    """A weights spec that names a checkpoint file (not coco, demo, random[:SEED] or builder)."""
    return bool(spec) and spec not in NAMED and not is_random(spec)


def models() -> list[tuple[str, str, str]]:
    """(key, label, tooltip) of the model list: the presets, auto, the user's builder."""
    out = [(name, name, p.description) for name, p in presets.PRESETS.items()]
    out.append((AUTO, "auto: the preset the checkpoint fits", "the preset whose keys and shapes the checkpoint fits"))
    out.append((BUILDER, "your own builder (file.py:function)", RUNS_CODE))
    return out


def app_model(model: str | None, weights: str | None) -> str | None:
    """The app's --model as the command line reads it: a checkpoint and no model is ``auto``."""
    return model or (AUTO if is_file_spec(weights) else None)


def _fallback_rows(name: str) -> list[dict]:
    p = presets.PRESETS[name]
    rows = [{"spec": "demo", "available": None, "note": ""}] if name == "demo" else []
    if p.coco:
        rows.append({"spec": "coco", "available": None, "note": "asking the engine whether it is cached…"})
    return [*rows, {"spec": "random", "available": True, "note": "random init (every stage shows noise)"}]


def _note(row: dict, info: dict | None) -> str:
    spec, ok, info = row["spec"], row.get("available"), info or {}
    if spec == "coco" and ok is not None and info.get("coco_file"):
        where = f"{info['coco_file']} in {info['coco_dir']}"
        return (f"torchvision's COCO weights: {where}" if ok else
                f"not cached: Load downloads {info['coco_file']} from the model hub (or put it in "
                f"{info['coco_dir']} by hand)")
    if spec == "demo" and ok is not False:
        return ""  # the model's own description says where they come from
    if spec == "random":
        return "random init: every stage shows noise"
    return str(row.get("note") or "")


def _label(row: dict, info: dict | None) -> str:
    spec, ok = row["spec"], row.get("available")
    if spec == "coco":
        if ok is None:
            return "coco (checking the cache…)"
        mb = (info or {}).get("coco_mb")
        return "coco (cached)" if ok else f"coco (not cached: download{f' {mb:.0f} MB' if mb else ''})"
    if spec == "demo":
        return "demo (shipped)" if ok is not False else "demo (missing: make train)"
    if spec == "random":
        return "random (every stage shows noise)"
    return spec


def weights_options(model: str, info: dict | None = None, current: str | None = None) -> list[WeightsOption]:
    """The weights list for ``model`` (a preset key, AUTO or BUILDER); ``info`` is the engine's row
    for a preset (core.engine.model_handlers.preset_rows), None while it has not answered; ``current``
    a random:SEED to keep in the list."""
    if model == AUTO:
        return [WeightsOption(CHECKPOINT, "checkpoint file", "auto needs a checkpoint to match", True)]
    if model == BUILDER:
        return [WeightsOption(BUILDER, "as your builder makes them", "", True),
                WeightsOption(CHECKPOINT, "checkpoint file", "loaded into your builder's model", True)]
    rows = (info or {}).get("weights") or _fallback_rows(model)
    out = [WeightsOption(r["spec"], _label(r, info), _note(r, info), r.get("available")) for r in rows]
    if is_random(current) and current != "random":
        out.append(WeightsOption(current, f"{current} (every stage shows noise)", "random init with this seed", True))
    return [*out, WeightsOption(CHECKPOINT, "checkpoint file", "a .pt/.pth/.ckpt/.safetensors file", True)]


def default_weights(model: str, info: dict | None = None) -> tuple[str, str]:
    """(spec, why) the chooser starts with: a checkpoint for auto, the builder's own weights, the
    demo's shipped ones, a torchvision preset's COCO weights when cached, else random."""
    if model == AUTO:
        return CHECKPOINT, ""
    if model == BUILDER:
        return BUILDER, ""
    p = presets.PRESETS[model]
    rows = {r["spec"]: r for r in (info or {}).get("weights") or []}
    if model == "demo":
        return "demo", ""
    if p.coco:
        coco = rows.get("coco")
        if coco is None:
            return "random", "checking whether COCO weights are cached…"
        if coco.get("available"):
            return "coco", "default: COCO weights (cached)"
        return "random", ("default: random weights, because COCO weights are not cached (every stage shows noise); "
                          "choose coco to download them")
    return p.default_weights, "default: random weights (this preset has no COCO weights)"


def initial(name: str | None, weights: str | None) -> tuple[str, str, str | None, str]:
    """(model key, builder text, weights spec or None for the default, checkpoint path) showing a
    choice in the chooser."""
    name = name or presets.DEFAULT_PRESET
    if builders.is_spec(name):
        model, builder = BUILDER, name
    else:
        model, builder = (name if name == AUTO or name in presets.PRESETS else presets.DEFAULT_PRESET), ""
    if is_file_spec(weights):
        return model, builder, CHECKPOINT, str(weights)
    return model, builder, weights, ""


def request(model: str, builder: str, weights: str, checkpoint: str, trust: bool,
            info: dict | None = None) -> Request:
    """The load request for the chooser's fields, or LensError: the one line that is wrong (a
    builder that is not file.py:function, a file that is not there, auto without a checkpoint)."""
    if model == BUILDER:
        name = builder.strip()
        if not name:
            raise ModelError("builder", "name your builder as path/to/file.py:function or package.module:function")
        if not builders.is_spec(name):
            raise ModelError(name, "expected a builder as path/to/file.py:function or package.module:function")
        target, _, is_file = builders.parse(name)
        if is_file and not Path(target).expanduser().is_file():
            raise ModelError(target, "no such builder file")
    elif model == AUTO or model in presets.PRESETS:
        name = model
    else:
        raise ModelError(model, "unknown model")
    if weights == CHECKPOINT:
        path = checkpoint.strip()
        if not path:
            raise WeightsError("checkpoint", "choose a checkpoint file")
        p = Path(path).expanduser()
        if not p.exists():
            raise WeightsError(path, "no such checkpoint file")
        if p.is_dir():
            raise WeightsError(path, "is a folder, not a checkpoint")
        return Request(name, path, bool(trust))
    if model == AUTO:
        raise WeightsError(AUTO, "needs a checkpoint file to match")
    if weights == BUILDER:
        return Request(name, None)
    download = None
    if weights == "coco" and model in presets.PRESETS:
        row = next((r for r in (info or {}).get("weights") or [] if r["spec"] == "coco"), None)
        download = model if row is not None and row.get("available") is False else None
    return Request(name, weights, False, download)


@dataclass(frozen=True)
class Suggestion:
    text: str
    uses: tuple[str, ...] = ()  # presets to offer, one "Use ..." button each, the preferred first
    level: str = "info"  # info, warn or error


MAX_USES = 3


def suggestion(reply: dict, model: str) -> Suggestion:
    """What to say about a checkpoint (the engine's ``suggested`` reply) with ``model`` chosen. Every
    preset it fits is named; the one the checkpoint names (its ``args.model`` or its file name) first."""
    if reply.get("error"):
        text = for_app(str(reply["error"]))
        if reply.get("needs_trust") and not reply.get("trust"):
            text += ". If you made this file, tick “Trust this file”."
        return Suggestion(text, (), "error")
    fits = list(reply.get("fits") or [])
    named = reply.get("arch") if reply.get("arch") in fits else None
    what = f" ({reply['what']})" if reply.get("what") else ""
    if not fits:
        return Suggestion(f"fits no preset{what}: for a model of your own choose “your own builder”", (),
                          "warn" if model != BUILDER else "info")
    says = f"; the checkpoint names {named}" if named else ""
    if model == AUTO:
        also = f"; also fits {', '.join(fits[1:])}" if len(fits) > 1 else ""
        return Suggestion(f"auto will load {fits[0]}{says}{also}{what}", (), "info")
    if model == BUILDER:
        return Suggestion(f"its keys fit the preset{'s' if len(fits) > 1 else ''} {_and(fits)}{says}{what}",
                          tuple(fits[:MAX_USES]), "info")
    others = [f for f in fits if f != model]
    if model in fits:
        if named is not None and named != model:
            return Suggestion(f"fits {model} and {_and(others)}{says}{what}", (named,), "warn")
        also = f"; also fits {_and(others)}" if others else ""
        return Suggestion(f"fits {model}{also}{what}", tuple(others[:MAX_USES]), "info")
    return Suggestion(f"this checkpoint fits {_and(fits)}, not {model}{says}{what}", tuple(fits[:MAX_USES]), "warn")


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def for_app(message: str) -> str:
    """A core message in the app's words where the command line's differ."""
    return (message.replace("pass --trust", "tick “Trust this file”")
            .replace("(loaded with --trust)", "(loaded trusting the file)"))


def remember(info: dict) -> bool:
    """Whether the app may load this model again at its next start: not when it runs the user's
    code (a builder, a trusted pickle), which happens only when they ask for it each time."""
    return not info.get("trusted") and not builders.is_spec(str(info.get("name") or ""))


def check_text(tr) -> str:
    """The trace's model check in words ("" for a model of torchvision's own modules: the runner
    is held equal to ``model(images)`` by the tests)."""
    c = getattr(tr, "check", None)
    if c is None:
        return ""
    if c.checked and c.equal:
        return f"check: {c.detail}"
    if c.checked:
        return f"check: NOT equal to model(images): {c.detail}"
    return f"check: {c.detail}"


def _first_differed(c) -> bool:
    return c.equal is False or (not c.checked and "the first trace was: equal to model(images)" not in c.detail)


def banner(tr, random_weights: bool) -> str:
    """The view's banner: random weights; a trace that differs (or whose model's first trace
    differed) from ``model(images)``. "" when there is nothing to warn about."""
    lines = [RANDOM_BANNER] if random_weights else []
    c = getattr(tr, "check", None)
    if c is not None and _first_differed(c):
        lines.append(f"not what the model computes: {c.detail} (it overrides {', '.join(c.overrides)})"
                     if c.checked else f"unchecked: {c.detail} (it overrides {', '.join(c.overrides)})")
    return "\n".join(lines)
