"""User-facing errors: one clear line that names the file (or thing) and the problem."""


class LensError(Exception):
    """An error meant for the user: ``str(err)`` is one line naming the file and the problem."""

    def __init__(self, subject: object, problem: str):
        self.subject = str(subject)
        self.problem = problem
        super().__init__(f"{self.subject}: {problem}")


class ImageError(LensError):
    """An image that cannot be read."""


class WeightsError(LensError):
    """Weights or a checkpoint that cannot be loaded."""


class ModelError(LensError):
    """An unknown preset or a bad model option."""


class TruthError(LensError):
    """An annotation file (COCO, VOC, YOLO) that cannot be read or does not fit its image."""
