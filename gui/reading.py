"""Reading a results folder (an analysis, a comparison) off the GUI thread: a dataset's results can
be tens of MB. The result, or the one line why not, comes back on a Qt signal."""

from __future__ import annotations

import threading

from core.errors import LensError


def read_folder(folder: str, reader, signal, model: bool, name: str) -> None:
    """``reader(folder)`` on a thread of its own; ``signal.emit(result or None, error line, model)``."""

    def work():
        try:
            signal.emit(reader(folder), "", model)
        except LensError as err:
            signal.emit(None, str(err), model)
        except Exception as err:  # noqa: BLE001 - one line, the app goes on
            signal.emit(None, f"{folder}: cannot read ({type(err).__name__}: {err})", model)

    threading.Thread(target=work, daemon=True, name=name).start()
