"""Atomic writes: a temporary file in the target's folder, then a rename; never a partial file."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from core.errors import LensError

_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask (reading it means setting it: under a lock, never two threads at once)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise LensError(p, f"cannot write ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; a normal new file respects the umask
        os.replace(tmp, p)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise LensError(p, f"cannot write ({err.strerror or err})") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
