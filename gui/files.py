"""The images the app pages through, read off the GUI thread.

``rcnn-lens a.png b.png c.png`` pages through those three; one image or a folder pages through its
folder (the folder's first image opens). Paging skips the app's own exports (``*.lens.png``) and
files that do not read as images (named once in a message), and a newer request wins over a read
still running."""

from __future__ import annotations

import bisect
import re
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.errors import LensError
from core.tracing.images import IMAGE_SUFFIXES, load

EXPORT_SUFFIX = ".lens.png"


def natural(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def is_candidate(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.lower().endswith(EXPORT_SUFFIX)


def folder_images(folder: Path) -> list[Path]:
    try:
        return sorted((p for p in folder.iterdir() if is_candidate(p) and p.is_file()), key=natural)
    except OSError:
        return []


def resolve(args: list[str]) -> tuple[str | None, list[str] | None, str | None]:
    """The command line's IMAGE arguments -> (first image, the explicit list to page through or
    None to page through the first image's folder, a problem to report or None)."""
    if not args:
        return None, None, None
    if len(args) == 1 and Path(args[0]).is_dir():
        imgs = folder_images(Path(args[0]))
        if not imgs:
            return None, None, f"{args[0]}: no images in this folder"
        return str(imgs[0]), None, None
    if len(args) == 1:
        return args[0], None, None
    files = []
    for a in args:
        files += [str(p) for p in folder_images(Path(a))] if Path(a).is_dir() else [a]
    return (files[0] if files else None), files, None


class _Bridge(QObject):
    opened = Signal(int, str, object)  # generation, path, rgb
    failed = Signal(int, str, str)  # generation, path, message
    skipped = Signal(int, list)  # generation, [(path, message)]
    edge = Signal(int, str)  # generation, "first" | "last"
    done = Signal()  # a read ended


class Images(QObject):
    """Reads images in a worker thread; results arrive as signals on the GUI thread."""

    opened = Signal(str, object)  # path, HxWx3 uint8 RGB
    failed = Signal(str, str)  # path, one-line message
    skipped = Signal(str)  # a message naming the unreadable files paging went past
    edge = Signal(str)  # "first image of the folder" ...

    def __init__(self, explicit: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.explicit = [str(p) for p in explicit] if explicit else None
        self.current: str | None = None
        self.bad: set[str] = set()
        self._gen = 0
        self._busy = 0
        self._b = _Bridge()
        self._b.opened.connect(self._opened)
        self._b.failed.connect(self._failed)
        self._b.skipped.connect(lambda g, items: g == self._gen and self.skipped.emit(_skip_message(items)))
        self._b.edge.connect(lambda g, which: g == self._gen and self.edge.emit(which))
        self._b.done.connect(self._done)

    @property
    def reading(self) -> bool:
        return self._busy > 0

    def listing(self) -> list[str]:
        if self.explicit is not None:
            return list(self.explicit)
        if not self.current:
            return []
        return [str(p) for p in folder_images(Path(self.current).parent)]

    def open(self, path: str) -> None:
        """Read ``path`` (a message if it cannot be read; the current image stays). An image from
        outside the command line's list pages through its own folder from then on."""
        if self.explicit is not None and str(path) not in self.explicit:
            self.explicit = None
        self._run([str(path)], report_all=True)

    def step(self, step: int) -> None:
        """The next (step=1) or previous (-1) readable image of the list or folder."""
        files = self.listing()
        cur = self.current
        if cur in files:
            i = files.index(cur)
            order = files[i + 1:] if step > 0 else files[:i][::-1]
        else:  # the current file is gone (or not an image): go on from where it would sort
            i = bisect.bisect_left([natural(Path(f)) for f in files], natural(Path(cur or "")))
            order = files[i:] if step > 0 else files[:i][::-1]
        if not order:
            self.edge.emit(self._edge_text(step))
            return
        self._run(order, report_all=False, step=step)

    def _edge_text(self, step: int) -> str:
        where = "list" if self.explicit is not None else "folder"
        return f"{'last' if step > 0 else 'first'} image of the {where}"

    def _run(self, paths: list[str], report_all: bool, step: int = 0) -> None:
        self._gen += 1
        gen = self._gen
        self._busy += 1
        threading.Thread(target=self._work, args=(gen, paths, report_all, step), daemon=True,
                         name="image-reader").start()

    def _work(self, gen: int, paths: list[str], report_all: bool, step: int) -> None:
        skipped = []
        try:
            for p in paths:
                if gen != self._gen:
                    return  # a newer request came
                if not report_all and p in self.bad:
                    continue
                try:
                    rgb = load(p)
                except LensError as err:
                    if report_all:
                        self._b.failed.emit(gen, p, str(err))
                        return
                    self.bad.add(p)
                    skipped.append((p, err.problem))
                    continue
                self._b.opened.emit(gen, p, rgb)
                if skipped:  # after the image: its arrival clears older messages, not this one
                    self._b.skipped.emit(gen, skipped)
                return
            if skipped:
                self._b.skipped.emit(gen, skipped)
            self._b.edge.emit(gen, self._edge_text(step))
        finally:
            self._b.done.emit()

    def _opened(self, gen: int, path: str, rgb) -> None:
        if gen == self._gen:
            self.current = path
            self.opened.emit(path, rgb)

    def _failed(self, gen: int, path: str, message: str) -> None:
        if gen == self._gen:
            self.current = path  # paging goes on from here (the image shown stays)
            self.failed.emit(path, message)

    def _done(self) -> None:
        self._busy -= 1


def _skip_message(items: list) -> str:
    names = ", ".join(f"{Path(p).name} ({why})" for p, why in items[:3])
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return f"skipped {len(items)} unreadable file{'s' if len(items) != 1 else ''}: {names}{more}"
