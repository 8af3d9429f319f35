"""R-CNN Lens core: a Qt-free, staged and faithful Faster R-CNN trace.

Public API::

    model = core.load_model("demo")                 # LoadedModel; .module is the torchvision model
    model = core.load_model("fasterrcnn_resnet50_fpn", weights="random:1", device="cpu")
    tr = core.trace(model, "scene.png")             # or an HxWx3 uint8 RGB array
    tr2 = core.retrace(tr, box_nms_thresh=0.3)      # reruns only the stages after the change

``load_model(name, weights=..., device=..., trust=False, download=False, **torchvision keywords)``:
``name`` is a preset of ``core.models.presets.PRESETS``, ``auto`` (the preset a checkpoint fits) or a user
builder ``path/file.py:function`` / ``package.module:function`` (runs their code); ``weights`` is
``demo``, ``coco``, ``random``, ``random:SEED`` or a checkpoint file (``core.models.checkpoints``:
``weights_only=True``, safetensors; a whole pickled model only with ``trust``); ``device`` is
``cpu``, ``cuda`` or ``auto``. ``LoadedModel.summary`` says what was loaded.

A ``Trace`` (``core.tracing.types``) holds numpy arrays: image meta (original/resized/padded size and
scale), feature maps per level (FPN and the body under it), anchors per level, RPN objectness
logits and box deltas per level, proposals before NMS (with status, level, anchor and the kept
proposal that suppressed each dropped one, with the IoU) and after NMS (``keep``), the RoIAlign
output and box-head outputs (logits, softmax, class-specific refined boxes), detections before
and after NMS linked to their proposals, and time per stage. Every box set has its model-frame and
original-pixel copies. Mask R-CNN / Keypoint R-CNN traces also hold ``masks`` (``MaskHead``) and
``keypoints`` (``KeypointHead``). ``retrace`` takes torchvision's FasterRCNN keywords: ``rpn_pre_nms_top_n_test``,
``rpn_post_nms_top_n_test``, ``rpn_nms_thresh``, ``rpn_score_thresh``, ``box_score_thresh``,
``box_nms_thresh``, ``box_detections_per_img``.

User-facing failures raise ``core.errors.LensError`` whose message is one line naming the file.
Importing ``core`` is cheap: torch loads on first use of these names.
"""

from __future__ import annotations

from core.errors import ImageError, LensError, ModelError, WeightsError
from core.tracing.types import STAGES

__all__ = ["load_model", "trace", "retrace", "load_image", "LensError", "ImageError", "ModelError",
           "WeightsError", "STAGES", "PRESETS", "PARAMS"]


def __getattr__(name: str):
    if name == "load_model":
        from core.models.load import load_model

        return load_model
    if name in ("trace", "retrace"):
        from core.tracing import runner

        return getattr(runner, name)
    if name == "PARAMS":
        from core.models.params import PARAMS

        return PARAMS
    if name == "load_image":
        from core.tracing.images import load

        return load
    if name == "PRESETS":
        from core.models.presets import PRESETS

        return PRESETS
    raise AttributeError(name)
