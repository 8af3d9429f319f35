"""COCO weights downloads against a loopback HTTP server standing in for the model hub: the hash
prefix in the file name is checked, progress is reported, cancel works, and nothing partial is
ever left in the cache."""

import hashlib
import http.server
import os
import socket
import threading

import pytest
import torch

import core
from core.errors import WeightsError
from core.models import download as dl
from core.models import presets
from core.models import weights as w


class Hub(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    hits: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        self.hits.append(self.path)
        data = self.files.get(name)
        if data is None:
            self.send_error(404, "no such file")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "broken":  # the server goes away mid-body
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        for i in range(0, len(data), 1 << 14):
            self.wfile.write(data[i:i + (1 << 14)])


@pytest.fixture
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    Hub.files, Hub.hits = {}, []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Hub
    server.shutdown()
    server.server_close()


def named(data: bytes, stem: str = "weights", ext: str = ".pth") -> str:
    """A file name carrying its own sha256 prefix, as torchvision's do."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{ext}"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_reports_progress_and_respects_umask(hub, tmp_path):
    url, h = hub
    data = os.urandom(200_000)
    name = named(data)
    h.files[name] = data
    seen = []
    old = os.umask(0o027)
    try:
        out = dl.fetch(f"{url}/good/{name}", tmp_path / "cache" / name, hash_prefix=dl.hash_prefix_of(name),
                       progress=lambda done, total: seen.append((done, total)))
    finally:
        os.umask(old)
    assert out.read_bytes() == data and leftovers(tmp_path / "cache") == [name]
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert seen[-1] == (len(data), len(data)) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2


def test_wrong_hash_keeps_nothing(hub, tmp_path):
    url, h = hub
    data = b"not the file you think" * 1000
    name = "weights-0123abcd.pth"
    h.files[name] = data
    with pytest.raises(WeightsError) as err:
        dl.fetch(f"{url}/good/{name}", tmp_path / name, hash_prefix=dl.hash_prefix_of(name))
    assert str(err.value).startswith(f"{name}: download failed: sha256 ") and "does not match the expected 0123abcd" \
        in str(err.value)
    assert leftovers(tmp_path) == []


def test_broken_connection_keeps_nothing(hub, tmp_path):
    url, h = hub
    data = os.urandom(300_000)
    name = named(data)
    h.files[name] = data
    with pytest.raises(WeightsError) as err:
        dl.fetch(f"{url}/broken/{name}", tmp_path / name, hash_prefix=dl.hash_prefix_of(name))
    assert "download failed" in str(err.value) and "nothing was saved" in str(err.value)
    assert "\n" not in str(err.value) and leftovers(tmp_path) == []


def test_cancel_keeps_nothing(hub, tmp_path):
    url, h = hub
    data = os.urandom(400_000)
    name = named(data)
    h.files[name] = data
    seen = []
    with pytest.raises(dl.Cancelled, match="download cancelled; nothing was saved"):
        dl.fetch(f"{url}/good/{name}", tmp_path / name, progress=lambda d, t: seen.append(d), cancel=lambda: len(seen) >= 2)
    assert len(seen) == 2 and leftovers(tmp_path) == []


def test_unreachable_and_missing(hub, tmp_path):
    url, _ = hub
    with pytest.raises(WeightsError, match="answered HTTP 404"):
        dl.fetch(f"{url}/good/nothing.pth", tmp_path / "nothing.pth")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused, as offline
    with pytest.raises(dl.Unreachable, match="cannot reach"):
        dl.fetch(f"http://127.0.0.1:{port}/x.pth", tmp_path / "x.pth")
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def coco_like():
    """A state dict laid out as torchvision's COCO file of the MobileNetV3 320 preset (FrozenBatchNorm
    in the body: no num_batches_tracked), serialized."""
    import io

    import torchvision

    m = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
    sd = {k: v for k, v in m.state_dict().items()
          if not (k.startswith("backbone.body") and k.endswith("num_batches_tracked"))}
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue(), sd


def test_coco_downloads_on_first_use_into_torch_cache(hub, tmp_path, monkeypatch, coco_like):
    url, h = hub
    data, sd = coco_like
    name = named(data, "fasterrcnn_mobilenet_v3_large_320_fpn")
    h.files[name] = data
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(w, "coco_url", lambda preset: f"{url}/good/{name}")
    preset = presets.get("fasterrcnn_mobilenet_v3_large_320_fpn")
    assert w.availability(preset)[0] == {"spec": "coco", "available": False, "note": "not cached: downloads on first "
                                         f"use, or put {name} in {tmp_path / 'hub' / 'checkpoints'}"}
    with pytest.raises(WeightsError, match="not cached and no model hub is reachable"):
        core.load_model(preset.name, weights="coco")  # download=False: the core never fetches unasked
    seen = []
    model = core.load_model(preset.name, weights="coco", download=True, progress=lambda d, t: seen.append((d, t)))
    cached = tmp_path / "hub" / "checkpoints" / name
    assert cached.read_bytes() == data and seen[-1] == (len(data), len(data))
    assert model.class_names[1] == "person" and "downloaded" in model.summary
    k = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(model.module.state_dict()[k], sd[k])
    assert w.availability(preset)[0]["available"]
    n = len(h.hits)
    core.load_model(preset.name, weights="coco", download=True)  # cached now: no second download
    assert len(h.hits) == n


def test_coco_offline_is_todays_one_line(tmp_path, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(w, "coco_url", lambda preset: f"http://127.0.0.1:{port}/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
    with pytest.raises(WeightsError) as err:
        core.load_model("maskrcnn_resnet50_fpn", weights="coco", download=True)
    folder = tmp_path / "hub" / "checkpoints"
    assert str(err.value) == ("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth: COCO weights for maskrcnn_resnet50_fpn are not "
                              f"cached and no model hub is reachable; put maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth in "
                              f"{folder}")
    assert leftovers(folder) == []
