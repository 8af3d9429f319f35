"""The model process: its typed protocol (JSON header + raw frames), the request loop (``server``)
and the handlers of each request kind, assembled by ``main`` (``python -m core.engine FD``)."""
