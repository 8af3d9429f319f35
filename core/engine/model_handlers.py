"""The engine's requests about models and weights, for the app's model chooser (core.engine.server
handlers; the GUI process never imports torch, so whatever reads a checkpoint or torch's cache
happens here)::

    models    {}                       -> models {"presets": [{"name", "description", "default", "coco_file",
                                                    "coco_dir", "coco_mb", "weights": availability rows}]}
    suggest   {"path", "trust"}        -> suggested {"path", "trust", "fits", "arch", "what", "needs_trust", "error"}
    download  {"preset"}               -> progress {"done", "total"}... then downloaded {"preset", "path"}
                                          (or cancelled {"kind": "download"}, or error)
    cancel    {}                       stops a running download at its next chunk (nothing partial is kept)

``not_cached`` is the load request's check before it reads COCO weights: a preset whose file is not
in torch's cache answers one line that says so (and the app offers the download), never a fetch
nobody asked for.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.engine.server import Engine, Job, handles

PROGRESS_EVERY_S = 0.05  # progress messages at most this often (a chunk is 64 KiB)


def preset_rows() -> list[dict]:
    from core.models import presets
    from core.models import weights as w

    rows = []
    for name, p in presets.PRESETS.items():
        row = {"name": name, "description": p.description, "default": p.default_weights,
               "coco_file": None, "coco_dir": None, "coco_mb": None, "weights": w.availability(p)}
        if p.coco:
            f = w.coco_file(p)
            size = w.coco_weights(p).meta.get("_file_size")
            row.update(coco_file=f.name, coco_dir=str(f.parent), coco_mb=float(size) if size else None)
        rows.append(row)
    return rows


def _models(engine: Engine, job: Job) -> None:
    job.reply("models", {"presets": preset_rows()})


def suggestion(path: str, trust: bool) -> dict:
    """What the chooser says about a checkpoint: the presets its keys and shapes fit (the one the
    file names first), what it holds, or the one line why it cannot be used."""
    from core.errors import LensError
    from core.models import checkpoints, fit

    out = {"path": path, "trust": trust, "fits": [], "arch": None, "what": "", "error": None,
           "needs_trust": checkpoints.needs_trust(path)}
    try:
        ck = checkpoints.read(path, trust=trust)
    except LensError as err:
        out["error"] = str(err)
        return out
    sd = ck.state_dict if ck.module is None else ck.module.state_dict()
    fits = fit.fitting_presets(sd, ck.config)
    named = ck.arch if ck.arch in fits else named_by_file(path, fits)
    if named is not None:
        fits = [named, *[f for f in fits if f != named]]
    out.update(fits=fits, arch=named, what=ck.describe())
    return out


def named_by_file(path: str, fits: list[str]) -> str | None:
    """The preset among ``fits`` whose name the file's name holds (the longest: a file
    ``fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth`` names the 320 preset, which the non-320
    one's keys and shapes fit as well), or None."""
    stem = Path(path).name.lower()
    named = [f for f in fits if f.lower() in stem]
    return max(named, key=len) if named else None


def _suggest(engine: Engine, job: Job) -> None:
    job.reply("suggested", suggestion(job.get("path", str, default=""), job.body.get("trust") is True))


def _download(engine: Engine, job: Job) -> None:
    from core.models import download as dl
    from core.models import presets
    from core.models import weights as w

    preset = presets.get(job.get("preset", str, default=""))
    last = [0.0]

    def progress(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = now
            job.reply("progress", {"done": int(done), "total": None if total is None else int(total)})

    job.reply("status", {"text": f"downloading {w.coco_file(preset).name}…"})
    try:
        path = w.download_coco(preset, progress=progress, cancel=job.cancelled, bar=False)
    except dl.Cancelled as err:
        job.reply("cancelled", {"kind": "download", "at": str(err)})
        return
    job.reply("downloaded", {"preset": preset.name, "path": str(path)})


def _cancel(engine: Engine, job: Job) -> None:
    """Nothing to do here: putting it in the inbox cancelled the running download (or dropped a
    pending one)."""


def not_cached(name, weights) -> dict | None:
    """For a load of a preset's ``coco`` weights that torch's cache lacks: the error body (one line,
    plus the preset whose download the app may offer); None when there is nothing to fetch."""
    from core.models import presets
    from core.models import weights as w

    preset = presets.PRESETS.get(str(name))
    if weights != "coco" or preset is None or not preset.coco:
        return None
    f = w.coco_file(preset)
    if f.is_file():
        return None
    size = w.coco_weights(preset).meta.get("_file_size")
    mb = f" ({float(size):.0f} MB)" if size else ""
    return {"kind": "load", "download": preset.name,
            "message": f"{f.name}: COCO weights for {preset.name} are not cached{mb}; download them, or put "
                       f"{f.name} in {f.parent}"}


KINDS = (
    handles("models", _models, priority=1, supersedes=("models",)),
    handles("suggest", _suggest, priority=1, supersedes=("suggest",)),
    handles("download", _download, priority=0, supersedes=("download",)),
    handles("cancel", _cancel, priority=0, supersedes=("download",), cancels=("download",)),
)
