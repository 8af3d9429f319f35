"""Downloading a weights file as torch.hub does (a temporary file beside the target, the sha256
prefix its name carries checked, then a rename), plus what torch.hub lacks: a progress callback
and a cancel flag for the GUI. Nothing partial is left behind on failure or cancel. The file gets
the user's normal permissions (umask), not the temporary file's 0600.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from core.atomic import umask
from core.errors import WeightsError

CHUNK = 1 << 16
WATCH_S = 0.1  # how often a cancel is looked for while a read waits


class Unreachable(WeightsError):
    """The server could not be reached at all (offline, no DNS, refused): nothing was fetched."""


class Cancelled(WeightsError):
    """The user cancelled the download."""


def hash_prefix_of(name: str) -> str | None:
    """The sha256 prefix torchvision's file names carry (NAME-<hex>.pth), as torch.hub reads it."""
    import torch

    match = torch.hub.HASH_REGEX.search(name)
    return match.group(1) if match else None


def _watch(resp, cancel) -> threading.Event:
    """Cancel must not wait for a stalled connection's next chunk (up to the timeout): a watcher
    shuts the connection down as soon as ``cancel()`` says so, and the blocked read returns.
    Set the returned event to stop watching."""
    stop = threading.Event()
    if cancel is None:
        return stop
    try:  # a descriptor of our own for the connection, taken while it is open (never a reused number)
        sock = socket.socket(fileno=os.dup(resp.fileno()))
    except (OSError, ValueError, AttributeError):
        return stop

    def watch():
        with sock:
            while not stop.wait(WATCH_S):
                if cancel():
                    try:
                        sock.shutdown(socket.SHUT_RDWR)  # the connection itself: the blocked read returns
                    except OSError:
                        pass
                    return

    threading.Thread(target=watch, name="download-cancel", daemon=True).start()
    return stop


def fetch(url: str, dst: str | os.PathLike, *, hash_prefix: str | None = None,
          progress: Callable[[int, int | None], None] | None = None,
          cancel: Callable[[], bool] | None = None, bar: bool = False, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dst`` atomically. ``progress(done, total)`` is called after each
    chunk (total None when the server does not say); ``cancel()`` returning True stops it;
    ``bar`` shows a tqdm bar on stderr where stderr is a terminal."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "rcnn-lens"}),
                                      timeout=timeout)
    except urllib.error.HTTPError as err:
        raise WeightsError(dst.name, f"download failed: {url} answered HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise Unreachable(dst.name, f"cannot reach {url} ({reason})") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    pbar = None
    stop = _watch(resp, cancel)
    try:
        with resp, os.fdopen(fd, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if bar:
                import sys

                from tqdm import tqdm

                pbar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dst.name,
                            disable=None, file=sys.stderr, leave=False)
            sha = hashlib.sha256()
            done = 0
            while True:
                if cancel is not None and cancel():
                    raise Cancelled(dst.name, "download cancelled; nothing was saved")
                try:
                    chunk = resp.read(CHUNK)
                except Exception as err:  # noqa: BLE001 - IncompleteRead, reset, timeout mid-body
                    if cancel is not None and cancel():  # the watcher cut a stalled connection
                        raise Cancelled(dst.name, "download cancelled; nothing was saved") from None
                    raise WeightsError(dst.name, f"download failed after {done} bytes ({type(err).__name__}: "
                                                 f"{err}); nothing was saved") from None
                if not chunk:
                    if cancel is not None and cancel():
                        raise Cancelled(dst.name, "download cancelled; nothing was saved")
                    break
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if pbar is not None:
                    pbar.update(len(chunk))
                if progress is not None:
                    progress(done, total)
            if total is not None and done != total:
                raise WeightsError(dst.name, f"download failed: the connection closed after {done} of {total} "
                                             "bytes; nothing was saved")
            out.flush()
            os.fsync(out.fileno())
        digest = sha.hexdigest()
        if hash_prefix and not digest.startswith(hash_prefix):
            raise WeightsError(dst.name, f"download failed: sha256 {digest[:len(hash_prefix)]}... does not match "
                                         f"the expected {hash_prefix}; nothing was saved")
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, dst)
    finally:
        stop.set()
        if pbar is not None:
            pbar.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst
