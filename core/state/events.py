"""Events without Qt (like glue's callback properties): ``events.<name>.connect(fn)``, ``emit(*args)``
calls every subscriber in the order they connected. The app's state and its ground-truth side each
own a set; the window and the tests observe them."""

from __future__ import annotations


class Emitter:
    def __init__(self):
        self._subscribers: list = []

    def connect(self, fn) -> None:
        self._subscribers.append(fn)

    def disconnect(self, fn) -> None:
        self._subscribers.remove(fn)

    def emit(self, *args) -> None:
        for fn in list(self._subscribers):
            fn(*args)


class Events:
    def __init__(self, names):
        for n in names:
            setattr(self, n, Emitter())
