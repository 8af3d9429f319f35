"""Heavy parts of a trace: kept by the engine, fetched by the app when a stage needs them.

A *lean* trace (what the engine sends) holds a ``Withheld`` wherever a heavy array was: it knows
the array's shape and dtype (tables, captions and control bounds still work) and raises
``Missing`` on any read of its values, naming the part to fetch and the trace that holds it.
A row of a withheld array (``pooled[roi]``) can be fetched alone. ``fill`` puts fetched values
back. Paths address a trace generically: dataclass field names, dict keys and tuple indices, with
``"*"`` for every key or index (``("features", "*", "data")``).

The parts withheld by default are the ``HEAVY`` patterns: every feature map, the network's input
tensor, the RoIAlign output and the box head's large outputs. Another stage with a large array
adds its pattern with ``withhold(pattern)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

Path = tuple  # of str (a field or dict key) and int (a tuple index or an array row)

HEAVY: list[tuple] = [
    ("features", "*", "data"),
    ("meta", "input"),
    ("rpn", "*", "deltas"),
    ("box_head", "pooled"),
    ("box_head", "features"),
    ("box_head", "box_regression"),
    ("box_head", "refined"),
    ("masks", "pooled"),
    ("masks", "logits"),
    ("masks", "pasted"),
    ("keypoints", "pooled"),
    ("keypoints", "heatmaps"),
]


def withhold(pattern: tuple) -> None:
    """Send this part of every trace only on demand (a stage whose arrays are large)."""
    if tuple(pattern) not in HEAVY:
        HEAVY.append(tuple(pattern))


class Missing(LookupError):
    """A withheld part was read: fetch ``path`` from the trace ``source`` and draw again."""

    def __init__(self, path: Path, source: int):
        self.path, self.source = tuple(path), int(source)
        super().__init__(f"{'.'.join(str(p) for p in self.path)} of trace {self.source} is not here yet")


class Withheld:
    """Stands in for an array the engine kept: shape and dtype are known, values are not."""

    __slots__ = ("path", "shape", "dtype", "source", "rows")

    def __init__(self, path: Path, shape, dtype, source: int = 0, rows: dict | None = None):
        self.path = tuple(path)
        self.shape = tuple(int(v) for v in shape)
        self.dtype = np.dtype(dtype)
        self.source = int(source)
        self.rows = dict(rows or {})

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __repr__(self) -> str:
        return f"Withheld({'.'.join(map(str, self.path))}, {self.shape}, {self.dtype}, trace {self.source})"

    def _row(self, key) -> int | None:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and self.shape:
            i = int(key) + (self.shape[0] if int(key) < 0 else 0)
            if 0 <= i < self.shape[0]:
                return i
        return None

    def __getitem__(self, key):
        i = self._row(key)
        if i is None:
            raise Missing(self.path, self.source)
        if i in self.rows:
            return self.rows[i]
        raise Missing((*self.path, i), self.source)

    def __array__(self, *args, **kwargs):
        raise Missing(self.path, self.source)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise Missing(self.path, self.source)  # .mean(), .max(), .astype(), ...

    def _missing(self, *_args):
        raise Missing(self.path, self.source)

    # comparisons and arithmetic read the values too (``matched == g`` must not quietly be False)
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _missing
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _missing
    __and__ = __rand__ = __or__ = __ror__ = __invert__ = __neg__ = __abs__ = __bool__ = _missing
    __iter__ = __float__ = __int__ = _missing
    __hash__ = object.__hash__

    def with_row(self, i: int, value) -> Withheld:
        return Withheld(self.path, self.shape, self.dtype, self.source, {**self.rows, int(i): value})


# ---------------------------------------------------------------- paths
def _children(obj):
    """(key, child) pairs of a node: dataclass fields (the trace's private ``_`` fields and lazy
    values excluded), dict items, tuple/list items."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")]
    if isinstance(obj, dict):
        return list(obj.items())
    if isinstance(obj, (tuple, list)):
        return list(enumerate(obj))
    return []


def get_part(obj, path: Path):
    for key in path:
        if isinstance(obj, (np.ndarray, Withheld)):
            obj = obj[int(key)]
        elif dataclasses.is_dataclass(obj):
            obj = getattr(obj, key)
        else:
            obj = obj[key]
    return obj


def holds(obj, path: Path) -> bool:
    """Whether the values at ``path`` are here (not withheld, and not a row of a withheld array that
    has not come)."""
    try:
        return obj is not None and not isinstance(get_part(obj, path), Withheld)
    except (Missing, KeyError, IndexError, AttributeError):
        return False


def set_part(obj, path: Path, value):
    """A copy of ``obj`` with the part at ``path`` replaced (frozen dataclasses via replace)."""
    if not path:
        return value
    key, rest = path[0], tuple(path[1:])
    if isinstance(obj, Withheld):
        if rest:
            raise KeyError(path)
        return obj.with_row(int(key), value)
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{key: set_part(getattr(obj, key), rest, value)})
    if isinstance(obj, dict):
        return {**obj, key: set_part(obj[key], rest, value)}
    if isinstance(obj, tuple):
        return tuple(set_part(v, rest, value) if i == key else v for i, v in enumerate(obj))
    if isinstance(obj, list):
        return [set_part(v, rest, value) if i == key else v for i, v in enumerate(obj)]
    raise KeyError(path)


def expand(obj, pattern: tuple) -> list[Path]:
    """The concrete paths a pattern names in ``obj`` (``"*"``: every key or index)."""
    out: list[Path] = [()]
    for key in pattern:
        nxt = []
        for p in out:
            node = get_part(obj, p)
            if node is None:
                continue
            if key == "*":
                nxt += [(*p, k) for k, _ in _children(node)]
            elif any(k == key for k, _ in _children(node)):
                nxt.append((*p, key))
        out = nxt
    return out


def leaves(obj, path: Path = ()):
    """(path, Withheld) for every withheld part of ``obj``."""
    if isinstance(obj, Withheld):
        yield path, obj
        return
    for k, child in _children(obj):
        yield from leaves(child, (*path, k))


def heavy(trace, patterns=None) -> dict:
    """{path: array} of every heavy array of ``trace`` (the HEAVY patterns), in pattern order."""
    found = {}
    for pattern in patterns if patterns is not None else HEAVY:
        for path in expand(trace, pattern):
            arr = get_part(trace, path)
            if isinstance(arr, np.ndarray):
                found[path] = arr
    return found


def lean(trace, source):
    """(the trace with every heavy array withheld, {path: array}). ``source`` names the trace that
    holds the parts: one id for all, or ``source(path, array) -> id`` (a part a retrace did not
    change keeps the id of the trace that first sent it)."""
    kept = heavy(trace)
    out = trace
    for path, arr in kept.items():
        src = source(path, arr) if callable(source) else source
        out = set_part(out, path, Withheld(path, arr.shape, arr.dtype, src))
    return out, kept


def fill(trace, cache: dict):
    """Put fetched parts back: ``cache[(source, path)]`` = a whole array, or a row when the path
    ends with a row index. Returns the trace (the same object when nothing was filled)."""
    for path, w in list(leaves(trace)):
        whole = cache.get((w.source, path))
        if whole is not None:
            trace = set_part(trace, path, whole)
            continue
        for (src, p), v in cache.items():
            if src == w.source and len(p) == len(path) + 1 and p[:-1] == path and p[-1] not in w.rows:
                w = w.with_row(p[-1], v)
                trace = set_part(trace, path, w)
    return trace
