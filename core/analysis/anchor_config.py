"""An anchor configuration: torchvision's ``AnchorGenerator(sizes, aspect_ratios)`` arguments, one
tuple of sizes and one of aspect ratios (h / w, torchvision's convention) per feature-map level.
Parsing what a person types, the checks (positive numbers, one entry per level), and the line to
paste. No torch here: the app's window parses and checks with it too.

    AnchorConfig.parse("16,24 / 32,48 / 64,96 / 128,192", "0.5, 1, 2", levels=4)
    AnchorConfig(((16, 24), (32, 48)), ((0.5, 1.0, 2.0),) * 2).paste()
    -> "AnchorGenerator(sizes=((16, 24), (32, 48)), aspect_ratios=((0.5, 1.0, 2.0), (0.5, 1.0, 2.0)))"
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from core.errors import LensError


def _num(v) -> float | int:
    """An int where the value is whole (sizes are ints in torchvision's signature), else a float."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


@dataclass(frozen=True)
class AnchorConfig:
    sizes: tuple  # per level: a tuple of sizes (sqrt of the anchor's area, in the model's frame)
    aspect_ratios: tuple  # per level: a tuple of h / w

    @property
    def levels(self) -> int:
        return len(self.sizes)

    def per_location(self) -> tuple[int, ...]:
        """Anchors per location on each level (``AnchorGenerator.num_anchors_per_location``)."""
        return tuple(len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios))

    def shared_ratios(self) -> bool:
        return len(set(self.aspect_ratios)) <= 1

    def paste(self) -> str:
        """The line to paste into a model's builder."""
        def tup(xs, num):
            inner = ", ".join(repr(num(x)) if not isinstance(x, tuple) else tup(x, num) for x in xs)
            return f"({inner},)" if len(xs) == 1 else f"({inner})"

        return f"AnchorGenerator(sizes={tup(self.sizes, _num)}, aspect_ratios={tup(self.aspect_ratios, float)})"

    def text(self) -> tuple[str, str]:
        """(sizes, ratios) as the app's fields show them: levels separated by ``/``."""
        sizes = " / ".join(", ".join(f"{_num(s)}" for s in lvl) for lvl in self.sizes)
        ratios = self.aspect_ratios[0] if self.shared_ratios() else None
        rtext = (", ".join(f"{_num(r)}" for r in ratios) if ratios is not None else
                 " / ".join(", ".join(f"{_num(r)}" for r in lvl) for lvl in self.aspect_ratios))
        return sizes, rtext

    def to_json(self) -> dict:
        return {"sizes": [[_num(s) for s in lvl] for lvl in self.sizes],
                "aspect_ratios": [[_num(r) for r in lvl] for lvl in self.aspect_ratios]}

    @classmethod
    def of(cls, sizes, aspect_ratios, levels: int | None = None, subject: str = "anchors") -> AnchorConfig:
        """From nested sequences as torchvision takes them (flat ratios: the same on every level;
        flat sizes: one size per level, as torchvision reads them), checked."""
        sizes = _nested(sizes, "sizes", subject)
        if sizes and not isinstance(sizes[0], tuple):  # flat: one level (a one-level model), else
            sizes = (sizes,) if levels == 1 else tuple((s,) for s in sizes)  # one size per level, as torchvision
        ratios = _nested(aspect_ratios, "aspect ratios", subject)
        if ratios and not isinstance(ratios[0], tuple):
            ratios = (ratios,) * len(sizes)
        elif len(ratios) == 1 and len(sizes) > 1:
            ratios = ratios * len(sizes)
        cfg = cls(tuple(tuple(_num(s) for s in lvl) for lvl in sizes),
                  tuple(tuple(float(r) for r in lvl) for lvl in ratios))
        cfg.check(levels, subject)
        return cfg

    @classmethod
    def parse(cls, sizes: str, aspect_ratios: str, levels: int | None = None, subject: str = "anchors"):
        """From text: ``"16,24 / 32,48"`` (levels separated by ``/`` or ``;``) or a Python literal
        ``"((16, 24), (32, 48))"``; ratios ``"0.5, 1, 2"`` (every level) or per level with ``/``."""
        return cls.of(_parse(sizes, "sizes", subject), _parse(aspect_ratios, "aspect ratios", subject),
                      levels, subject)

    def check(self, levels: int | None = None, subject: str = "anchors") -> None:
        """Refuse (LensError, one line): no levels, an empty level, a size or ratio that is not a
        positive finite number, ratio and size level counts that differ, or a level count other
        than the feature maps' (``levels``)."""
        if not self.sizes:
            raise LensError(subject, "no sizes given")
        for what, table in (("size", self.sizes), ("aspect ratio", self.aspect_ratios)):
            for i, lvl in enumerate(table):
                if not lvl:
                    raise LensError(subject, f"level {i} has no {what}s")
                for v in lvl:
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                        raise LensError(subject, f"{what} {v!r} on level {i} is not a positive number")
        if len(self.aspect_ratios) != len(self.sizes):
            raise LensError(subject, f"{len(self.sizes)} levels of sizes but {len(self.aspect_ratios)} of aspect ratios")
        if levels is not None and len(self.sizes) != int(levels):
            raise LensError(subject, f"{len(self.sizes)} levels of sizes, but the model has {levels} feature maps "
                                     f"(one tuple of sizes per level)")


def _nested(v, what: str, subject: str) -> tuple:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (v,)
    if not isinstance(v, (list, tuple)):
        raise LensError(subject, f"{what}: {v!r} is not a list of numbers")
    out = []
    for x in v:
        if isinstance(x, (list, tuple)):
            out.append(tuple(_scalar(y, what, subject) for y in x))
        else:
            out.append(_scalar(x, what, subject))
    if any(isinstance(x, tuple) for x in out) and not all(isinstance(x, tuple) for x in out):
        raise LensError(subject, f"{what}: mix of levels and numbers in {v!r}")
    return tuple(out)


def _scalar(x, what: str, subject: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise LensError(subject, f"{what}: {x!r} is not a number")
    return x


def _parse(text: str, what: str, subject: str):
    s = str(text).strip()
    if not s:
        raise LensError(subject, f"no {what} given")
    if s[0] in "([":
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise LensError(subject, f"{what}: cannot read {s!r}") from None
    levels = [p.strip() for p in s.replace(";", "/").split("/")]
    out = []
    for part in levels:
        try:
            out.append(tuple(float(x) for x in part.replace(",", " ").split()))
        except ValueError:
            raise LensError(subject, f"{what}: cannot read {part!r} as numbers") from None
    return tuple(out) if len(out) > 1 or "/" in s.replace(";", "/") else out[0]
