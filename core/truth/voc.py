"""Pascal VOC XML: one file per image (``Annotations/STEM.xml``), parsed with defusedxml (no DTD,
no entities: an entity bomb fails at once). ``difficult`` is kept as a flag. Boxes are 1-based pixel
indices: ``xmin - 1, ymin - 1, xmax, ymax`` in pixel-edge coordinates (detectron2's reading)."""

from __future__ import annotations

from pathlib import Path

from core.errors import TruthError
from core.truth.common import Annotations, RawObject, number, read_capped

MAX_BYTES = 16 * 2**20


def parse(path: Path):
    """-> (filename or None, declared (h, w) or None, [RawObject]); TruthError for a bad file."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    data = read_capped(path, MAX_BYTES, "a VOC annotation file")
    try:
        root = ElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise TruthError(path, "XML with a DTD or entity declarations is refused (a possible entity bomb)") from None
    except ParseError as err:
        line, col = getattr(err, "position", (0, 0))
        raise TruthError(path, f"not well-formed XML (line {line}, column {col})") from None
    if root.tag != "annotation":
        raise TruthError(path, f"not a VOC annotation (the root element is <{root.tag}>, not <annotation>)")
    filename = (root.findtext("filename") or "").strip() or None
    declared = None
    size = root.find("size")
    if size is not None and size.findtext("width") and size.findtext("height"):
        declared = (number(size.findtext("height"), path, "<size><height>"),
                    number(size.findtext("width"), path, "<size><width>"))
    objects = []
    for k, obj in enumerate(root.findall("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        ref = f"object {k}"
        if not name:
            raise TruthError(path, f"{ref}: no <name>")
        bb = obj.find("bndbox")
        if bb is None:
            raise TruthError(path, f"{ref} ('{name}'): no <bndbox>")
        vals = []
        for key in ("xmin", "ymin", "xmax", "ymax"):
            text = bb.findtext(key)
            if text is None:
                raise TruthError(path, f"{ref} ('{name}'): no <{key}>")
            vals.append(number(text, path, f"{ref} ('{name}') <{key}>"))
        xmin, ymin, xmax, ymax = vals
        diff = (obj.findtext("difficult") or "0").strip()
        objects.append(RawObject(ref, name, (xmin - 1.0, ymin - 1.0, xmax, ymax), difficult=diff in ("1", "true")))
    return filename, declared, objects


class VocFile(Annotations):
    format = "voc"

    def __init__(self, source: Path):
        super().__init__(source)
        self.filename, self.declared, self.objects = parse(source)

    def image_names(self) -> list[str]:
        return [self.filename or self.source.stem]

    def _objects(self, image_path: Path):
        if image_path.stem != self.source.stem and image_path.name != self.filename:
            return None
        return self.source, self.objects, self.declared


class VocFolder(Annotations):
    """A folder of VOC files, parsed one at a time when its image is asked for."""

    format = "voc"

    def __init__(self, source: Path, files: list[Path]):
        super().__init__(source)
        self.files = {f.stem: f for f in files}

    def image_names(self) -> list[str]:
        return sorted(self.files)

    def _objects(self, image_path: Path):
        f = self.files.get(image_path.stem)
        if f is None:
            return None
        _, declared, objects = parse(f)
        return f, objects, declared


def folder_files(folder: Path) -> list[Path]:
    """The .xml files of a VOC folder (or of its Annotations/ subfolder)."""
    files = sorted(folder.glob("*.xml"))
    if not files and (folder / "Annotations").is_dir():
        files = sorted((folder / "Annotations").glob("*.xml"))
    return files


def open_file(path: Path) -> VocFile:
    return VocFile(path)


def open_folder(folder: Path, files: list[Path] | None = None) -> VocFolder:
    files = folder_files(folder) if files is None else files
    if not files:
        raise TruthError(folder, "no VOC .xml files")
    return VocFolder(folder, files)
