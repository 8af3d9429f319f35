"""The engine process: the request kinds of every handler module, assembled here, served on the
socket the app passed (``python -m core.engine FD``)."""

from __future__ import annotations

import os
import sys

from core.engine import anchor_handlers, model_handlers, trace_handlers, truth_handlers
from core.engine.server import serve

KINDS = {k.name: k for mod in (trace_handlers, truth_handlers, model_handlers, anchor_handlers) for k in mod.KINDS}
ENRICHERS = truth_handlers.ENRICH + anchor_handlers.ENRICH  # the anchor what-if needs the truth first


def main(argv=None) -> int:
    """``python -m core.engine FD``: serve requests on the socket FD this process inherited."""
    import socket

    args = sys.argv[1:] if argv is None else argv
    fd = int(args[0])
    os.set_inheritable(fd, False)  # nothing this process starts gets the model's socket
    try:  # a background worker: the app's window gets the CPU first
        os.nice(int(os.environ.get("RCNN_LENS_ENGINE_NICE", "5")))
    except (OSError, ValueError):
        pass
    serve(socket.socket(fileno=fd), KINDS, ENRICHERS)
    return 0
