"""The stage panel's rows drawn with ground truth (anchor targets, RoI targets, loss): their
controls and the bounds the trace gives them (its levels, its truth objects, the RoIs sampled).
A mixin of gui.panels.stages.StagePanel (its ``_combo``/``_spin``/``_check``/``_opacity``)."""

from __future__ import annotations

from .combos import refill

ALL_LEVELS = "all levels"
EVERY_OBJECT = "every object"


class TrainingRows:
    def _build_anchor_targets(self, form, stage):
        self._combo(form, stage, "level", "level", [(ALL_LEVELS, None)])
        self._combo(form, stage, "gt", "object", [(EVERY_OBJECT, None)])
        self._combo(form, stage, "show", "anchors", [("the minibatch (sampled)", "sampled"),
                                                     ("every positive", "positive"),
                                                     ("all labelled (+ ignored)", "all")])
        self._check(form, stage, "lines", "lines to objects")
        self._check(form, stage, "predicted", "predicted boxes")
        self._tip(stage, "lines", "a line from each positive anchor to the object it was matched to")
        self._tip(stage, "predicted", "the box each positive anchor's predicted deltas decode to (box_coder.decode)")
        self._opacity(form, stage)

    def _build_roi_targets(self, form, stage):
        self._combo(form, stage, "gt", "object", [(EVERY_OBJECT, None)])
        self._combo(form, stage, "show", "RoIs", [("the minibatch (sampled)", "sampled"),
                                                  ("every positive", "positive")])
        self._check(form, stage, "predicted", "predicted boxes")
        self._tip(stage, "predicted", "each sampled positive RoI's predicted box for its target class")
        self._opacity(form, stage)

    def _build_loss(self, form, stage):
        self._combo(form, stage, "level", "level", [("the level that pays most", None)])
        self._combo(form, stage, "mode", "heatmap", [("loss_objectness share", "share"),
                                                     ("cross-entropy if drawn", "bce")])
        self._spin(form, stage, "rois", "costliest RoIs", 0, 100_000)
        self._combo(form, stage, "colormap", "colormap", self._cmaps())
        self._opacity(form, stage)

    def _tip(self, stage, key, text) -> None:
        self.controls[(stage, key)].setToolTip(text)

    def _bounds_training(self, state) -> None:
        """Level, object and RoI choices from the trace (its truth and training view)."""
        tr = state.trace
        levels = list(tr.levels)
        for stage, first in (("anchor_targets", ALL_LEVELS), ("loss", "the level that pays most")):
            refill(self.controls.get((stage, "level")), [(first, None), *[(f"level {lv}", lv) for lv in levels]])
        t = tr.truth
        objects = [(EVERY_OBJECT, None)]
        if t is not None:
            objects += [(f"{i}: {t.names[i]}" + ("" if t.known[i] else " (not a model class)"), i)
                        for i in range(len(t))]
        for stage in ("anchor_targets", "roi_targets"):
            refill(self.controls.get((stage, "gt")), objects)
        rois = self.controls.get(("loss", "rois"))
        if rois is not None and tr.training is not None:
            rois.setMaximum(max(len(tr.training.roi.sampled), int(state.settings["loss"]["rois"])))
