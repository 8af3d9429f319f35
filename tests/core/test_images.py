"""Reading images: any path, EXIF, grey, alpha, 16-bit, size guard, clear errors."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from core.errors import ImageError
from core.tracing.images import load, save_png


def test_unicode_path_and_rgb_order(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    p = tmp_path / "ünï cødé [1] #%.png"
    save_png(p, img)
    out = load(p)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 0, 0]


def test_grey_alpha_and_16bit(tmp_path):
    grey = np.full((10, 12), 77, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert load(tmp_path / "g.png")[0, 0].tolist() == [77, 77, 77]
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 2] = 255
    bgra[..., 3] = 0  # fully transparent, colour still there: alpha is dropped, not composited
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    out = load(tmp_path / "a.png")
    assert out.shape == (10, 12, 3) and out[0, 0].tolist() == [255, 0, 0]
    deep = np.full((10, 12, 3), 65535, np.uint16)
    deep[..., 0] = 257 * 10
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    out = load(tmp_path / "d.png")
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [255, 255, 10]


def test_exif_orientation_applied(tmp_path):
    from PIL import Image

    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:10, :, :] = 255  # white band at the top
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=95)
    out = load(p)
    assert out.shape == (60, 40, 3)
    assert out[:, -5:].mean() > 200 and out[:, :5].mean() < 50  # the band is now on the right


def _png_header_only(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_huge_header_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(60000, 60000))
    assert p.stat().st_size < 200
    with pytest.raises(ImageError, match=r"bomb.png: image too large: 60000x60000"):
        load(p)
    with pytest.raises(ImageError, match="too large"):
        load(_small(tmp_path), max_pixels=100)


def _small(tmp_path):
    p = tmp_path / "small.png"
    cv2.imwrite(str(p), np.zeros((20, 20, 3), np.uint8))
    return p


@pytest.mark.parametrize("content,problem", [(b"", "empty file"), (b"hello, not an image", "not an image"),
                                             (_png_header_only(10, 10)[:30], "")])
def test_not_an_image(tmp_path, content, problem):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError) as err:
        load(p)
    msg = str(err.value)
    assert msg.startswith(str(p) + ": ") and problem in msg and "\n" not in msg


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        load(tmp_path)
