"""Typed engine messages: a JSON header and raw array frames. No pickle in either direction.

On the wire a message is ``b"RCNL"``, the header's length (4 bytes, little-endian), the header
(UTF-8 JSON), then one raw frame per array (C order, little-endian)::

    {"kind": "trace", "seq": 7, "body": <value>, "frames": [["float32", [3, 800, 1088]], ...]}

Values: ``null``, booleans, numbers and strings are JSON's own; a list is a JSON list; a tuple
is ``{"$t": [...]}``; a dict ``{"$d": [[key, value], ...]}``; an array ``{"$a": frame number}``;
an instance of a registered frozen dataclass ``{"$c": "Name", "f": {field: value}}`` (only
registered names decode, only with their own fields, built by their constructor); a few other
registered types (``$x``) carry their own codec. Frames have a fixed set of dtypes and size caps,
so a message from anywhere can at worst be refused, never run code or exhaust memory unasked.

A new result type (a Mask R-CNN head, ground truth, training targets) travels once its class is
registered: ``register(MaskHead)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import struct
import threading

import numpy as np

MAGIC = b"RCNL"
DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64")
MAX_HEADER = 32 << 20  # bytes of JSON
MAX_FRAME = 4 << 30  # bytes in one array
MAX_TOTAL = 8 << 30  # bytes of arrays in one message
MAX_FRAMES = 100_000
MAX_DIMS = 8
MAX_DIM = 1 << 31  # the largest dimension (numpy refuses shapes whose element count overflows, even empty)
_CHUNK = 1 << 22


class ProtocolError(Exception):
    """A message that is not one of ours (bad magic, size over a cap, unknown type or dtype)."""


TYPES: dict[str, type] = {}
CODECS: dict[str, tuple] = {}  # name -> (type, encode(obj) -> value, decode(value) -> obj)


def register(cls: type, name: str | None = None) -> type:
    """Allow a frozen dataclass on the wire under ``name`` (default: its class name)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    TYPES[name or cls.__name__] = cls
    return cls


def register_codec(cls: type, name: str, encode, decode) -> None:
    CODECS[name] = (cls, encode, decode)


# ---------------------------------------------------------------- encoding
class _Encoder:
    def __init__(self):
        self.frames: list[np.ndarray] = []
        self._names = {cls: name for name, cls in TYPES.items()}
        self._codecs = {cls: (name, enc) for name, (cls, enc, _) in CODECS.items()}

    def value(self, v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, np.ndarray):
            return {"$a": self.array(v)}
        if isinstance(v, np.generic):
            return self.value(v.item())
        if isinstance(v, tuple):
            return {"$t": [self.value(x) for x in v]}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {"$d": [[self.value(k), self.value(x)] for k, x in v.items()]}
        cls = type(v)
        if cls in self._codecs:
            name, enc = self._codecs[cls]
            return {"$x": name, "v": self.value(enc(v))}
        if cls in self._names:
            return {"$c": self._names[cls],
                    "f": {f.name: self.value(getattr(v, f.name)) for f in dataclasses.fields(v)}}
        raise ProtocolError(f"cannot send a {cls.__module__}.{cls.__qualname__}: not a registered type")

    def array(self, a: np.ndarray) -> int:
        if a.dtype.name not in DTYPES:
            raise ProtocolError(f"cannot send an array of dtype {a.dtype}")
        if a.ndim > MAX_DIMS:
            raise ProtocolError(f"cannot send an array of {a.ndim} dimensions")
        self.frames.append(np.ascontiguousarray(a, a.dtype.newbyteorder("<")))
        return len(self.frames) - 1


def encode(kind: str, seq: int, body) -> tuple[bytes, list[np.ndarray]]:
    enc = _Encoder()
    head = {"kind": str(kind), "seq": int(seq), "body": enc.value(body),
            "frames": [[f.dtype.name, list(f.shape)] for f in enc.frames]}
    data = json.dumps(head, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_HEADER:
        raise ProtocolError(f"header of {len(data)} bytes is over the cap of {MAX_HEADER}")
    return MAGIC + struct.pack("<I", len(data)) + data, enc.frames


# ---------------------------------------------------------------- decoding
def _frame_specs(raw) -> list[tuple[np.dtype, tuple]]:
    if not isinstance(raw, list) or len(raw) > MAX_FRAMES:
        raise ProtocolError("bad frame list")
    specs, total = [], 0
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and item[0] in DTYPES
                and isinstance(item[1], list) and len(item[1]) <= MAX_DIMS
                and all(type(d) is int and 0 <= d <= MAX_DIM for d in item[1])):
            raise ProtocolError(f"bad frame {str(item)[:80]}")
        dt = np.dtype(item[0]).newbyteorder("<")
        n = math.prod(item[1]) * dt.itemsize  # Python integers: a size that would wrap in int64 stays huge
        if n > MAX_FRAME:
            raise ProtocolError(f"a frame of {n} bytes is over the cap of {MAX_FRAME}")
        total += n
        if total > MAX_TOTAL:
            raise ProtocolError(f"frames of over {MAX_TOTAL} bytes")
        specs.append((dt, tuple(item[1])))
    return specs


class _Decoder:
    def __init__(self, frames: list[np.ndarray]):
        self.frames = frames

    def value(self, v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict) or len(v) not in (1, 2):
            raise ProtocolError("bad value")
        if "$a" in v:
            i = v["$a"]
            if type(i) is not int or not 0 <= i < len(self.frames):
                raise ProtocolError("bad frame reference")
            return self.frames[i]
        if "$t" in v and isinstance(v["$t"], list):
            return tuple(self.value(x) for x in v["$t"])
        if "$d" in v and isinstance(v["$d"], list):
            out = {}
            for pair in v["$d"]:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ProtocolError("bad dict item")
                k = self.value(pair[0])
                if not isinstance(k, (str, int, float, bool, tuple, type(None))) or not _hashable(k):
                    raise ProtocolError("bad dict key")
                out[k] = self.value(pair[1])
            return out
        if isinstance(v.get("$c"), str) and isinstance(v.get("f"), dict):
            cls = TYPES.get(v["$c"])
            if cls is None:
                raise ProtocolError(f"unknown type {str(v['$c'])[:40]!r}")
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            if not set(v["f"]) <= names:
                raise ProtocolError(f"unknown fields of {v['$c']}")
            kwargs = {k: self.value(x) for k, x in v["f"].items()}
            try:
                return cls(**kwargs)
            except Exception as err:  # noqa: BLE001 - a constructor refusing its values
                raise ProtocolError(f"bad {v['$c']}: {type(err).__name__}: {err}") from None
        if isinstance(v.get("$x"), str) and v["$x"] in CODECS:
            return CODECS[v["$x"]][2](self.value(v.get("v")))
        raise ProtocolError("bad value")


def _hashable(k) -> bool:
    try:
        hash(k)
    except TypeError:  # a tuple holding a list
        return False
    return True


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    _recv_into(sock, memoryview(buf))
    return bytes(buf)


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` from the socket (recv_into releases the GIL: no long copy in Python)."""
    got, n = 0, len(view)
    while got < n:
        k = sock.recv_into(view[got:got + _CHUNK])
        if k == 0:
            raise EOFError("the other end closed the connection")
        got += k


def decode_header(raw: bytes) -> dict:
    try:
        head = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ProtocolError(f"header is not JSON ({type(err).__name__})") from None
    if not (isinstance(head, dict) and isinstance(head.get("kind"), str) and type(head.get("seq")) is int):
        raise ProtocolError("header lacks kind and seq")
    return head


def recv(sock: socket.socket) -> tuple[str, int, object]:
    """One message: (kind, seq, body). Raises EOFError when the other end closed, ProtocolError
    when what came is not a message of ours (the connection is then out of step: close it)."""
    first = _recv_exact(sock, 8)
    if first[:4] != MAGIC:
        raise ProtocolError("not an R-CNN Lens message")
    (n,) = struct.unpack("<I", first[4:])
    if n > MAX_HEADER:
        raise ProtocolError(f"header of {n} bytes is over the cap of {MAX_HEADER}")
    head = decode_header(_recv_exact(sock, n))
    frames = []
    for dt, shape in _frame_specs(head.get("frames", [])):
        a = np.empty(shape, dt)
        if a.nbytes:
            _recv_into(sock, memoryview(a).cast("B") if a.ndim else memoryview(a.reshape(1)).cast("B"))
        frames.append(a)
    try:
        body = _Decoder(frames).value(head.get("body"))
    except RecursionError:
        raise ProtocolError("value nested too deeply") from None
    return head["kind"], head["seq"], body


class Channel:
    """One end of the engine's socket: ``send`` from any thread (one message at a time),
    ``recv`` from one reader thread."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, kind: str, seq: int, body=None) -> None:
        head, frames = encode(kind, seq, body)
        with self._lock:
            self.sock.sendall(head)
            for f in frames:
                if f.nbytes:
                    self.sock.sendall(memoryview(f).cast("B") if f.ndim else memoryview(f.reshape(1)).cast("B"))

    def recv(self):
        return recv(self.sock)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------- the core's types
def _register_core() -> None:
    from core.analysis import verdicts
    from core.analysis.anchor_types import AnchorWhatIf
    from core.tracing import types as stages
    from core.tracing.parts import Withheld
    from core.training import types as training_types
    from core.truth.types import Truth

    for cls in (stages.ImageMeta, stages.FeatureLevel, stages.AnchorLevel, stages.RPNLevel, stages.Proposals,
                stages.Detections, stages.BoxHead, stages.MaskHead, stages.KeypointHead, stages.ModelCheck,
                stages.Trace, Truth, training_types.AnchorTargets, training_types.RoITargets, training_types.Training,
                verdicts.ObjectPath, verdicts.DetectionError, verdicts.Diagnosis, AnchorWhatIf):
        register(cls)
    # a resolved lazy value travels as its value
    register_codec(stages.Lazy, "Lazy", lambda lz: lz.get(), _resolved)
    register_codec(Withheld, "Withheld",
                   lambda w: {"path": w.path, "shape": w.shape, "dtype": w.dtype.name, "source": w.source},
                   _withheld)


def _resolved(value):
    from core.tracing.types import Lazy

    return Lazy(lambda: value)


def _withheld(v):
    from core.tracing.parts import Withheld

    if not (isinstance(v, dict) and isinstance(v.get("path"), tuple) and isinstance(v.get("shape"), tuple)
            and v.get("dtype") in DTYPES and type(v.get("source")) is int):
        raise ProtocolError("bad Withheld")
    return Withheld(v["path"], v["shape"], v["dtype"], v["source"])


_register_core()
