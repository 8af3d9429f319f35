"""Truth for a command-line run over many images: ``--annotations`` opened once, or each image's
own file beside it. Before the model loads, each image's boxes are checked against the size in its
header (a bad file fails within a second): a bad ``--annotations`` ends the run, a bad file beside
an image is reported in one line and the image traced without truth. Names the model lacks are
reported once at the end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from core.errors import TruthError
from core.truth.beside import beside, find_for_image
from core.truth.sources import open_annotations
from core.truth.types import Truth, missing_warnings


class TruthLookup:
    def __init__(self, annotations=None, images=(), report=print, enabled: bool = True):
        """``report(line)`` prints one line (stderr). Raises TruthError for a bad ``annotations``."""
        self.report = report
        self.enabled = enabled
        self.annotations = open_annotations(annotations) if (enabled and annotations) else None
        self.failed: set[str] = set()
        self.missing: Counter = Counter()  # over all images
        if enabled:
            for img in images:
                self._check(img)

    def _check(self, img) -> None:
        """Open the image's own file and check its boxes against the size in the image's header, now,
        before the model loads. A bad entry in ``--annotations`` raises (the file the user named cannot
        be used: as if it were malformed); a bad file beside the image is reported, the image traced
        without truth."""
        from core.tracing.images import decoded_size

        try:
            ann = self.annotations if self.annotations is not None else beside(Path(img))
            size = decoded_size(img) if ann is not None else None
            if size is not None:
                ann.for_image(img, size, ())  # no class names: only the boxes and the declared size
        except TruthError as err:
            if self.annotations is not None:
                raise
            self._fail(img, err)

    def _fail(self, image, err: TruthError) -> None:
        if str(image) not in self.failed:
            self.failed.add(str(image))
            self.report(str(err))

    def truth(self, image, image_size_hw, class_names) -> Truth | None:
        """The image's truth, or None (nothing found, or a bad file: reported, counted in ``failed``)."""
        if not self.enabled or str(image) in self.failed:
            return None
        try:
            t = find_for_image(image, image_size_hw, class_names, self.annotations)
        except TruthError as err:
            self._fail(image, err)
            return None
        if t is None:
            if self.annotations is not None:
                self.report(f"{image}: no entry in {self.annotations.source}; traced without truth")
            return None
        self.missing.update(t.missing())
        return t

    def warnings(self) -> list[str]:
        """``SOURCE: 3 objects of 'person': not a class of this model``, once per name over the run."""
        prefix = str(self.annotations.source) if self.annotations is not None else "annotations"
        return [f"{prefix}: {line}" for line in missing_warnings(self.missing)]
