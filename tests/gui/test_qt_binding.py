"""Guard the pinned Qt binding: PySide6 6.12.0 decremented None's refcount in QPainter.drawRect,
which crashed the app (Python 3.11) after a few thousand boxes were painted."""

import sys

from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter


def test_painting_does_not_leak_references_to_none(qapp):
    img = QImage(64, 64, QImage.Format.Format_RGB32)
    p = QPainter(img)
    try:
        before = sys.getrefcount(None)
        for _ in range(2000):
            p.drawRect(QRectF(1, 1, 5, 5))
            p.drawText(QRectF(0, 0, 30, 10), 0, "x")
        assert sys.getrefcount(None) >= before
    finally:
        p.end()
