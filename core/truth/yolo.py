"""YOLO txt: one file per image, a line ``class cx cy w h`` (normalized to 0..1), or a segment
``class x1 y1 x2 y2 x3 y3 ...`` (its bounding box). Class names from ``classes.txt`` (one a line)
or ``data.yaml`` (``names:`` a list or an id -> name map; read with ``yaml.safe_load``) in the
labels' folder or one of the two folders above it. An empty label file is an image without
objects (YOLO's convention for background images)."""

from __future__ import annotations

from pathlib import Path

from core.errors import TruthError
from core.truth.common import TOLERANCE, Annotations, RawObject, number, read_capped

MAX_BYTES = 64 * 2**20
NAME_FILES = ("classes.txt", "data.yaml", "data.yml", "dataset.yaml")
SKIP = {"classes.txt", "train.txt", "val.txt", "test.txt", "valid.txt"}


def find_names_file(folder: Path, levels: int = 3) -> Path | None:
    """classes.txt or data.yaml in ``folder`` or the folders above it (``levels`` in all)."""
    d = folder
    for _ in range(levels):
        for n in NAME_FILES:
            if (d / n).is_file():
                return d / n
        if d.parent == d:
            break
        d = d.parent
    return None


def read_names(path: Path) -> list[str]:
    if path.suffix.lower() == ".txt":
        text = read_capped(path, MAX_BYTES, "a class list").decode("utf-8", "replace")
        names = [ln.strip() for ln in text.splitlines()]
        while names and not names[-1]:
            names.pop()
        if not names:
            raise TruthError(path, "empty class list")
        return names
    import yaml

    raw = read_capped(path, 4 * 2**20, "a YOLO data.yaml")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TruthError(path, f"not valid YAML{where}") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise TruthError(path, "'names' must map class ids (integers) to names") from None
        if ids != list(range(len(ids))):
            raise TruthError(path, "'names' ids must be 0, 1, 2, ... without gaps")
        names = [names[k] if k in names else names[str(k)] for k in ids]
    if not isinstance(names, list) or not names:
        raise TruthError(path, "no 'names' list of class names")
    return [str(n) for n in names]


def parse(path: Path, names: list[str], image_size_hw):
    """-> [RawObject] in pixels of an image of ``image_size_hw``."""
    h, w = image_size_hw
    text = read_capped(path, MAX_BYTES, "a YOLO label file", allow_empty=True)
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise TruthError(path, "not a text file (not UTF-8)") from None
    objects = []
    for k, line in enumerate(lines, start=1):
        tok = line.split()
        if not tok:
            continue
        ref = f"line {k}"
        cls = number(tok[0], path, f"{ref} class")
        if cls != int(cls) or not 0 <= cls < len(names):
            raise TruthError(path, f"{ref}: class {tok[0]} is not one of the {len(names)} classes (0..{len(names) - 1})")
        name = names[int(cls)]
        vals = [number(t, path, f"{ref} ('{name}')") for t in tok[1:]]
        if len(vals) == 4:
            cx, cy, bw, bh = vals
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
        elif len(vals) >= 6 and len(vals) % 2 == 0:
            xs, ys = vals[0::2], vals[1::2]
            box = (min(xs) * w, min(ys) * h, max(xs) * w, max(ys) * h)
        else:
            raise TruthError(path, f"{ref}: expected 'class cx cy w h' (or a segment 'class x1 y1 x2 y2 x3 y3 ...'), "
                                   f"got {len(tok)} values")
        if any(v < -TOLERANCE / min(w, h) or v > 1 + TOLERANCE / min(w, h) for v in vals):
            raise TruthError(path, f"{ref} ('{name}'): coordinates must be normalized to 0..1, got {' '.join(tok[1:])}")
        objects.append(RawObject(ref, name, box))
    return objects


class YoloFile(Annotations):
    format = "yolo"

    def __init__(self, source: Path, names_file: Path):
        super().__init__(source)
        self.names_file = names_file
        self.names = read_names(names_file)

    def image_names(self) -> list[str]:
        return [self.source.stem]

    def for_image(self, image_path, image_size_hw, class_names):
        if Path(image_path).stem != self.source.stem:
            return None
        return _build(self.source, self.names, image_size_hw, class_names)


class YoloFolder(Annotations):
    format = "yolo"

    def __init__(self, source: Path, names_file: Path, files: list[Path]):
        super().__init__(source)
        self.names_file = names_file
        self.names = read_names(names_file)
        self.files: dict[str, Path] = {}
        for f in files:
            self.files.setdefault(f.stem, f)

    def image_names(self) -> list[str]:
        return sorted(self.files)

    def for_image(self, image_path, image_size_hw, class_names):
        f = self.files.get(Path(image_path).stem)
        return None if f is None else _build(f, self.names, image_size_hw, class_names)


def _build(path: Path, names, image_size_hw, class_names):
    from core.truth.common import build

    return build(path, "yolo", parse(path, names, image_size_hw), None, path, image_size_hw, class_names)


def label_files(folder: Path) -> list[Path]:
    root = folder / "labels" if (folder / "labels").is_dir() else folder
    return sorted(p for p in root.rglob("*.txt") if p.name not in SKIP)


def looks_like_folder(folder: Path) -> bool:
    return find_names_file(folder, levels=2) is not None and bool(label_files(folder))


def open_file(path: Path) -> YoloFile:
    names = find_names_file(path.parent)
    if names is None:
        raise TruthError(path, "YOLO labels need class names: put classes.txt or data.yaml beside them "
                               "(or in a folder above)")
    return YoloFile(path, names)


def open_folder(folder: Path, names_file: Path | None = None) -> YoloFolder:
    names_file = names_file or find_names_file(folder, levels=2)
    if names_file is None:
        raise TruthError(folder, "YOLO labels need class names: no classes.txt or data.yaml")
    files = label_files(folder)
    if not files:
        raise TruthError(folder, "no YOLO .txt label files")
    return YoloFolder(folder, names_file, files)
