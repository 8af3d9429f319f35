"""The model preset registry: a name -> how to build the torchvision model.

Add a preset with ``register(Preset(...))``. ``build(num_classes, **kw)`` returns an untrained
``GeneralizedRCNN``; ``coco`` names the torchvision weights enum member for ``--weights coco``
(``coco_eps``: the BatchNorm eps torchvision's builder sets for those weights). Keypoint presets
take ``num_keypoints``; presets with ``takes_config`` rebuild from a config stored in their weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.errors import ModelError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    build: Callable[..., object]  # build(num_classes=..., **torchvision keywords) -> model
    default_classes: int
    coco: str | None = None  # "module.EnumName.MEMBER" of torchvision's weights API
    default_weights: str = "random"
    coco_eps: float | None = None  # torchvision's overwrite_eps(model, 0.0) for its v1 COCO weights
    keypoints: bool = False  # the builder takes num_keypoints
    takes_config: bool = False  # the builder takes config= (read from the weights file)


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(name, f"unknown model preset; choose one of {', '.join(PRESETS)}") from None


def _torchvision(builder_name: str):
    def build(num_classes: int = 91, **kw):
        from torchvision.models import detection

        builder = getattr(detection, builder_name)
        return builder(weights=None, weights_backbone=None, num_classes=num_classes, **kw)

    return build


def _alexnet_features():
    from torchvision.models import alexnet

    backbone = alexnet(weights=None).features
    backbone.out_channels = 256
    return backbone


def _seed_walkthrough(num_classes: int = 17, **kw):
    """The notebook's walkthrough cells: AlexNet features, 800x800 unresized, 1 level, RoIAlign 7x10."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import TwoMLPHead
    from torchvision.models.detection.rpn import AnchorGenerator, RPNHead
    from torchvision.ops import MultiScaleRoIAlign

    args = dict(
        min_size=800, max_size=800,
        rpn_fg_iou_thresh=0.5, rpn_bg_iou_thresh=0.5, rpn_batch_size_per_image=512,
        rpn_positive_fraction=0.5, rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000, rpn_nms_thresh=0.7,
    )
    args.update(kw)
    return FasterRCNN(
        _alexnet_features(), num_classes=num_classes,
        rpn_anchor_generator=AnchorGenerator(sizes=((128, 256, 512),), aspect_ratios=((0.5, 1, 2),)),
        rpn_head=RPNHead(in_channels=256, num_anchors=9),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=(7, 10), sampling_ratio=2),
        box_head=TwoMLPHead(in_channels=256 * 7 * 10, representation_size=1024),
        **args,
    )


def _seed_alexnet(num_classes: int = 17, **kw):
    """The notebook's assembled model: anchors 32..256 x 0.5/1/2, RoIAlign 4x4, 300/500."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.rpn import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    args = dict(min_size=300, max_size=500, image_mean=[0.485, 0.456, 0.406],
                image_std=[0.229, 0.224, 0.225])
    args.update(kw)
    return FasterRCNN(
        _alexnet_features(), num_classes=num_classes,
        rpn_anchor_generator=AnchorGenerator(sizes=((32, 64, 128, 256),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=4, sampling_ratio=1),
        **args,
    )


def _demo(num_classes: int = 4, config: dict | None = None, **kw):
    from core.demo.model import build_shapes_model

    return build_shapes_model({**(config or {}), "num_classes": num_classes}, **kw)


register(Preset("demo", "the project's shapes detector (circle, rectangle, triangle), trained by "
                "`make train`; weights shipped in assets/", _demo, 4, default_weights="demo", takes_config=True))
register(Preset("fasterrcnn_resnet50_fpn", "torchvision ResNet-50 FPN", _torchvision("fasterrcnn_resnet50_fpn"),
                91, coco="FasterRCNN_ResNet50_FPN_Weights.COCO_V1", coco_eps=0.0))
register(Preset("fasterrcnn_resnet50_fpn_v2", "torchvision ResNet-50 FPN v2",
                _torchvision("fasterrcnn_resnet50_fpn_v2"), 91, coco="FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1"))
register(Preset("fasterrcnn_mobilenet_v3_large_fpn", "torchvision MobileNetV3-Large FPN",
                _torchvision("fasterrcnn_mobilenet_v3_large_fpn"), 91,
                coco="FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"))
register(Preset("fasterrcnn_mobilenet_v3_large_320_fpn", "torchvision MobileNetV3-Large 320 FPN",
                _torchvision("fasterrcnn_mobilenet_v3_large_320_fpn"), 91,
                coco="FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1"))
register(Preset("maskrcnn_resnet50_fpn", "torchvision Mask R-CNN ResNet-50 FPN (boxes + instance masks)",
                _torchvision("maskrcnn_resnet50_fpn"), 91, coco="MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
                coco_eps=0.0))
register(Preset("maskrcnn_resnet50_fpn_v2", "torchvision Mask R-CNN ResNet-50 FPN v2 (boxes + instance masks)",
                _torchvision("maskrcnn_resnet50_fpn_v2"), 91, coco="MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1"))
register(Preset("keypointrcnn_resnet50_fpn", "torchvision Keypoint R-CNN ResNet-50 FPN (person + 17 COCO keypoints)",
                _torchvision("keypointrcnn_resnet50_fpn"), 2, coco="KeypointRCNN_ResNet50_FPN_Weights.COCO_V1",
                coco_eps=0.0, keypoints=True))
register(Preset("seed-walkthrough", "the seed notebook's walkthrough: AlexNet features, 800x800 unresized, "
                "anchors 128/256/512 x 0.5/1/2, RoIAlign 7x10, 17 classes", _seed_walkthrough, 17))
register(Preset("seed-alexnet", "the seed notebook's assembled model: AlexNet, anchors 32..256, "
                "RoIAlign 4x4, 300/500, 17 classes", _seed_alexnet, 17))

DEFAULT_PRESET = "demo"
