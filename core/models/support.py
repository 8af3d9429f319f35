"""Can the staged runner trace this model faithfully? Checked when a model is loaded.

The runner calls the model's own submodules in the order of ``GeneralizedRCNN.forward`` and
splits ``RegionProposalNetwork.filter_proposals`` and ``RoIHeads.postprocess_detections`` at NMS.
A model that overrides one of the methods the runner re-enacts (``forward``,
``filter_proposals``, ``postprocess_detections``, the transform's methods, ...) may compute
something else: such a model is traced and its first trace checked against ``model(images)``
(``core.tracing.types.ModelCheck`` in the trace says whether it was checked and equal). A model the
runner cannot walk at all (a pooler without ``featmap_names``, an anchor generator without sizes,
an RPN or RoI heads that are not torchvision's) is refused in one line naming what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ModelError

# the methods the runner re-enacts instead of calling, per torchvision base class
REENACTED = {
    "GeneralizedRCNN": ("forward", "eager_outputs"),
    "RegionProposalNetwork": ("forward", "filter_proposals", "pre_nms_top_n", "post_nms_top_n"),
    "RoIHeads": ("forward", "postprocess_detections", "has_mask", "has_keypoint"),
    "GeneralizedRCNNTransform": ("forward", "postprocess", "normalize", "resize", "batch_images", "torch_choice"),
}


@dataclass(frozen=True)
class Support:
    overrides: tuple[str, ...] = ()  # "Class.method" the model overrides: trace, then check the first trace

    @property
    def needs_check(self) -> bool:
        return bool(self.overrides)

    def describe(self) -> str:
        return "overrides " + ", ".join(self.overrides) if self.overrides else ""


def _bases():
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
    from torchvision.models.detection.roi_heads import RoIHeads
    from torchvision.models.detection.rpn import RegionProposalNetwork
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    return {"GeneralizedRCNN": GeneralizedRCNN, "RegionProposalNetwork": RegionProposalNetwork,
            "RoIHeads": RoIHeads, "GeneralizedRCNNTransform": GeneralizedRCNNTransform}


def _overridden(obj, base, methods) -> list[str]:
    out = []
    for m in methods:
        if m in vars(obj) or getattr(type(obj), m, None) is not getattr(base, m):
            out.append(f"{type(obj).__name__}.{m}")
    return out


def _pooler(obj, what: str, name: str) -> None:
    if obj is None:
        return
    names = getattr(obj, "featmap_names", None)
    if not isinstance(names, list | tuple) or not names:
        raise ModelError(name, f"cannot be traced: {what} ({type(obj).__name__}) has no featmap_names, so the "
                               "runner cannot tell which feature level each RoI pooled from")
    for attr in ("output_size", "sampling_ratio"):
        if not hasattr(obj, attr):
            raise ModelError(name, f"cannot be traced: {what} ({type(obj).__name__}) has no {attr}")


def inspect_model(module, name: str) -> Support:
    """Refuse (ModelError, one line) what the runner cannot walk; list what it must check."""
    bases = _bases()
    parts = {"GeneralizedRCNN": module, "RegionProposalNetwork": getattr(module, "rpn", None),
             "RoIHeads": getattr(module, "roi_heads", None), "GeneralizedRCNNTransform": getattr(module, "transform", None)}
    attr = {"RegionProposalNetwork": "rpn", "RoIHeads": "roi_heads", "GeneralizedRCNNTransform": "transform"}
    overrides: list[str] = []
    for key, obj in parts.items():
        if not isinstance(obj, bases[key]):
            raise ModelError(name, f"cannot be traced: its {attr.get(key, 'model')} is a {type(obj).__name__}, "
                                   f"not torchvision's {key}")
        overrides += _overridden(obj, bases[key], REENACTED[key])
    gen = module.rpn.anchor_generator
    for a in ("sizes", "aspect_ratios", "cell_anchors"):
        if not hasattr(gen, a):
            raise ModelError(name, f"cannot be traced: rpn.anchor_generator ({type(gen).__name__}) has no {a}, so "
                                   "the anchors cannot be drawn")
    rh = module.roi_heads
    _pooler(rh.box_roi_pool, "roi_heads.box_roi_pool", name)
    _pooler(getattr(rh, "mask_roi_pool", None), "roi_heads.mask_roi_pool", name)
    _pooler(getattr(rh, "keypoint_roi_pool", None), "roi_heads.keypoint_roi_pool", name)
    return Support(tuple(overrides))
