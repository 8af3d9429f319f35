"""One way to give a combo box new choices: only when they changed (text or data), keeping the
current choice where it is still among them, without a signal (the state already holds it)."""

from __future__ import annotations


def refill(combo, items) -> None:
    """``items``: [(text, data)]. ``combo`` None (a control this panel does not have): nothing."""
    if combo is None or [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())] == items:
        return
    current = combo.currentData()
    was = combo.blockSignals(True)
    try:
        combo.clear()
        for text, data in items:
            combo.addItem(text, data)
        combo.setCurrentIndex(max(combo.findData(current), 0) if current is not None else 0)
    finally:
        combo.blockSignals(was)
