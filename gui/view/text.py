"""Text -> pg.TextItem(s) anchored at their image position, screen-sized, with a background."""

from __future__ import annotations

import pyqtgraph as pg


class TextGroup(pg.ItemGroup):
    pass


def make(layer):
    group = TextGroup()
    c, bg = layer.colour, layer.background
    for x, y, s in layer.items:
        t = pg.TextItem(s, color=(c[0], c[1], c[2], c[3]), fill=pg.mkBrush(bg[0], bg[1], bg[2], bg[3]), anchor=(0, 0))
        t.setPos(x, y)
        t.setParentItem(group)
    return group
