"""The model engine: runs in its own process so that importing torch and the Python parts of a
trace never hold the GUI's GIL. Requests and replies are plain tuples over a multiprocessing pipe;
traces travel as numpy-only ``Trace`` objects (``_state`` stripped, suppression resolved).

Requests: ``("load", seq, name, weights, device)``, ``("trace", seq, image_rgb, name, params)``,
``("retrace", seq, params)``, ``("quit",)``. Replies: ``("loaded", seq, info)``,
``("trace", seq, trace)``, ``("error", seq, kind, message)``, ``("status", seq, text)``.
Before each request the engine drains the pipe and keeps only the newest of each kind, so a newer
request makes older ones stale; ``seq`` lets the GUI drop a stale reply that was already in flight.
"""

from __future__ import annotations

import os
import pickle
import traceback
from dataclasses import replace


def send_reply(conn, msg) -> None:
    """Pickle protocol 5 with the arrays out of band: the receiver reads them straight from the
    socket and unpickles without copying, so the GUI process never holds its GIL for a long copy
    (a ResNet-50 trace carries a few hundred MB of feature maps)."""
    buffers: list = []
    head = pickle.dumps(msg, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(len(buffers).to_bytes(4, "little") + head)
    for b in buffers:
        conn.send_bytes(b.raw())


def recv_reply(conn):
    first = conn.recv_bytes()
    n = int.from_bytes(first[:4], "little")
    buffers = [conn.recv_bytes() for _ in range(n)]
    return pickle.loads(first[4:], buffers=buffers)


def portable(tr):
    """A Trace that pickles without torch: suppression lineage resolved, tensors dropped."""
    tr.proposals.suppressed_by  # noqa: B018 - resolve the lazy lineage here, in the engine
    tr.detections.suppressed_by  # noqa: B018
    return replace(tr, _state=None)


def _coalesce(conn, first):
    """The newest pending request of each kind (a load or trace also drops older retraces)."""
    pending = [first]
    while conn.poll():
        pending.append(conn.recv())
    if any(r[0] == "quit" for r in pending):
        return [("quit",)]
    newest = {}
    for r in pending:
        newest[r[0]] = r
        if r[0] in ("load", "trace"):
            newest.pop("retrace", None)
    return [newest[k] for k in ("load", "trace", "retrace") if k in newest]


def serve(conn, threads: int = 0) -> None:
    """The engine process's main loop."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or os.cpu_count() or 1))
    model = None
    current = None  # the last full trace, for retrace
    while True:
        try:
            first = conn.recv()
        except (EOFError, OSError):
            return
        for req in _coalesce(conn, first):
            kind, seq = req[0], (req[1] if len(req) > 1 else 0)
            if kind == "quit":
                conn.close()
                return
            try:
                from .errors import LensError

                try:
                    if kind == "load":
                        send_reply(conn, ("status", seq, "loading torch and the model…"))
                        from .models import load_model

                        model = load_model(req[2], weights=req[3], device=req[4])
                        current = None
                        send_reply(conn, ("loaded", seq, {"name": model.name, "weights": model.weights,
                                                          "class_names": list(model.class_names),
                                                          "device": str(model.device)}))
                    elif kind == "trace":
                        if model is None:
                            raise LensError("model", "no model is loaded")
                        from .runner import trace

                        current = trace(model, req[2], **req[4])
                        current = replace(current, meta=replace(current.meta, name=req[3]))
                        send_reply(conn, ("trace", seq, portable(current)))
                    elif kind == "retrace":
                        if current is None:
                            raise LensError("retrace", "no trace to rerun yet")
                        from .runner import retrace

                        current = retrace(current, **req[2])
                        send_reply(conn, ("trace", seq, portable(current)))
                except LensError as err:
                    send_reply(conn, ("error", seq, kind, str(err)))
            except (BrokenPipeError, EOFError, OSError):
                return
            except Exception as err:  # noqa: BLE001 - report, keep serving
                send_reply(conn, ("error", seq, kind, f"{type(err).__name__}: {err}"))
                traceback.print_exc()


def main(argv=None) -> int:
    """``python -m core.engine FD``: serve requests on the inherited socket FD."""
    import sys
    from multiprocessing.connection import Connection

    args = sys.argv[1:] if argv is None else argv
    serve(Connection(int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
