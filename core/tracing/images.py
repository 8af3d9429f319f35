"""Reading images safely: any path, any format OpenCV decodes, EXIF orientation applied,
grey to RGB, alpha dropped, 16-bit and float scaled to 8-bit, and a pixel limit checked from the
header before anything is decoded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.errors import ImageError

DEFAULT_MAX_PIXELS = 100_000_000
# OpenCV reads this once, at its first decode: our own limit plus OpenCV's refuse huge headers.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm",
                  ".pbm", ".pnm", ".jp2", ".exr", ".hdr", ".pic", ".sr", ".ras")


def header_size(path: Path, orientation: bool = False):
    """(width, height) from the file's header, without decoding pixels; None if unknown. With
    ``orientation``: (width, height, EXIF orientation tag, 1 when there is none)."""
    try:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None  # we apply our own limit; never decode here
        with Image.open(path) as im:
            size = int(im.size[0]), int(im.size[1])
            if not orientation:
                return size
            try:
                tag = int(im.getexif().get(0x0112, 1))
            except Exception:  # noqa: BLE001 - an unreadable EXIF block: as if none
                tag = 1
            return (*size, tag)
    except Exception:  # noqa: BLE001 - any format PIL cannot parse falls back to OpenCV's guard
        return None


def decoded_size(path) -> tuple[int, int] | None:
    """(height, width) that ``load`` will return, from the header alone; None when unknown, or when an
    EXIF orientation of 5-8 may turn it (OpenCV applies it for some formats only)."""
    got = header_size(Path(path), orientation=True)
    if got is None or got[2] in (5, 6, 7, 8):
        return None
    return got[1], got[0]


def load(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array, or raise ImageError with one clear line."""
    p = Path(path)
    if not p.exists():
        raise ImageError(p, "no such file")
    if p.is_dir():
        raise ImageError(p, "is a folder, not an image")
    try:
        data = np.fromfile(p, dtype=np.uint8)  # works for any characters in the path
    except OSError as err:
        raise ImageError(p, f"cannot read ({err.strerror or err})") from None
    if data.size == 0:
        raise ImageError(p, "empty file")
    size = header_size(p)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageError(p, f"image too large: {size[0]}x{size[1]} pixels is over the limit of "
                            f"{max_pixels / 1e6:g} megapixels")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as err:
        msg = str(err).strip().splitlines()[-1] if str(err).strip() else "decoder error"
        raise ImageError(p, f"cannot decode image ({msg})") from None
    if img is None:
        raise ImageError(p, "not an image OpenCV can read")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageError(p, f"image too large: {img.shape[1]}x{img.shape[0]} pixels is over the "
                            f"limit of {max_pixels / 1e6:g} megapixels")
    return to_rgb8(img)


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/grey array of any depth -> contiguous HxWx3 uint8 RGB."""
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        hi = float(np.nanmax(img)) if img.size else 1.0
        scale = 255.0 if hi <= 1.0 else 255.0 / hi
        img = np.clip(np.nan_to_num(img) * scale + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[..., 0], cv2.COLOR_GRAY2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def as_image(image) -> tuple[np.ndarray, str]:
    """An array or a path -> (HxWx3 uint8 RGB, name)."""
    if isinstance(image, (str, os.PathLike)):
        return load(image), str(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ImageError("<array>", f"expected an HxWx3 uint8 RGB array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr), "<array>"


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB(A) array as PNG atomically (temporary file in the same folder, then rename)."""
    p = Path(path)
    arr = rgb[..., [2, 1, 0, 3]] if rgb.shape[2] == 4 else rgb[..., ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ImageError(p, "cannot encode PNG")
    from core.atomic import write_bytes

    write_bytes(p, buf.tobytes())
