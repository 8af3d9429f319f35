"""Helpers shared by the core and GUI tests: the model hub on loopback (COCO downloads without
the internet, through RCNN_LENS_WEIGHTS_MIRROR) and a whole pickled model made in its own process."""

import http.server
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Hub(http.server.BaseHTTPRequestHandler):
    """Serves ``data`` under any file name; after ``first`` bytes it waits for ``go`` (a test's
    moment to cancel)."""

    data = b""
    first = 1 << 62
    go = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        try:
            self.wfile.write(self.data[: self.first])
            if self.first < len(self.data):
                self.go.wait(60)
                self.wfile.write(self.data[self.first:])
        except OSError:
            pass  # the client went away (cancelled)


@contextmanager
def serve_hub(monkeypatch, tmp_path):
    """(Hub, torch's checkpoint folder, the server); TORCH_HOME and the mirror point at them (an
    engine process started meanwhile inherits both)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    Hub.data, Hub.first, Hub.go = b"not the weights" * 40_000, 1 << 62, threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("RCNN_LENS_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/models/")
    try:
        yield Hub, tmp_path / "torch" / "hub" / "checkpoints", server
    finally:
        Hub.go.set()
        server.shutdown()
        server.server_close()


def save_whole_pickle(path) -> None:
    """``torch.save(model)`` of a tiny Faster R-CNN, made in a process of its own (the GUI tests'
    process never imports torch)."""
    subprocess.run([sys.executable, "-c", "import sys, torch; sys.path.insert(0, 'tests/core'); from tiny_models "
                    f"import tiny_faster_rcnn; torch.save(tiny_faster_rcnn(), {str(path)!r})"], cwd=ROOT, check=True)
