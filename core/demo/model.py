"""The demo detector's architecture: a small conv body + torchvision's FPN and Faster R-CNN.

Everything after the body is torchvision's own (``BackboneWithFPN``, ``FasterRCNN``), so every
stage the app shows for the demo model is the same code a COCO model runs.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from core.demo.shapes import CLASSES

DEFAULT_CONFIG: dict = {
    "arch": "shapes-fpn",
    "widths": [16, 32, 64, 96, 128],  # stem/4, layer1/4, layer2/8, layer3/16, layer4/32
    "fpn_channels": 64,
    "anchor_sizes": [[16, 24], [32, 48], [64, 96], [128, 192]],
    "aspect_ratios": [0.5, 1.0, 2.0],
    "min_size": [352, 384, 416, 448, 480],  # multi-scale in training; the last one at test time
    "test_min_size": 416,
    "max_size": 640,
    "representation_size": 256,
    "num_classes": len(CLASSES) + 1,
}


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _body(widths: list[int]) -> nn.Sequential:
    w0, w1, w2, w3, w4 = widths
    return nn.Sequential(OrderedDict(
        stem=nn.Sequential(_conv(3, w0, 2), _conv(w0, w1, 2)),
        layer1=nn.Sequential(_conv(w1, w1)),
        layer2=nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2)),
        layer3=nn.Sequential(_conv(w2, w3, 2), _conv(w3, w3)),
        layer4=nn.Sequential(_conv(w3, w4, 2), _conv(w4, w4)),
    ))


def build_shapes_model(config: dict | None = None, *, training: bool = False, **overrides) -> FasterRCNN:
    """Build the demo FasterRCNN from its config (the dict stored in the weights file)."""
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    widths = list(cfg["widths"])
    backbone = BackboneWithFPN(
        _body(widths),
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=widths[2:],
        out_channels=int(cfg["fpn_channels"]),
        extra_blocks=LastLevelMaxPool(),
    )
    sizes = tuple(tuple(int(s) for s in level) for level in cfg["anchor_sizes"])
    ratios = cfg["aspect_ratios"]  # one list for every level, or one per level (rcnn-lens anchors' suggestion)
    if ratios and isinstance(ratios[0], (list, tuple)):
        ratios = tuple(tuple(float(r) for r in level) for level in ratios)
    else:
        ratios = (tuple(float(r) for r in ratios),) * len(sizes)
    min_size = tuple(cfg["min_size"]) if training else int(cfg["test_min_size"])
    kwargs = dict(
        num_classes=int(cfg["num_classes"]),
        min_size=min_size,
        max_size=int(cfg["max_size"]),
        rpn_anchor_generator=AnchorGenerator(sizes, ratios),
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        representation_size=int(cfg["representation_size"]),
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=300,
        box_batch_size_per_image=128,
        box_detections_per_img=50,
        box_score_thresh=0.5,  # a clean picture by default; evaluation asks for 0.01
    )
    kwargs.update(overrides)
    rep = kwargs.pop("representation_size")
    if "box_head" not in kwargs:
        from torchvision.models.detection.faster_rcnn import TwoMLPHead
        kwargs["box_head"] = TwoMLPHead(backbone.out_channels * 7 * 7, rep)
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
        kwargs.setdefault("box_predictor", FastRCNNPredictor(rep, kwargs.pop("num_classes")))
    return FasterRCNN(backbone, **kwargs)
