"""Tiny torchvision detectors for tests (random weights, milliseconds per trace), also usable as
user builders: ``--model tests/core/tiny_models.py:tiny_mask_rcnn``."""

from collections import OrderedDict

from torch import nn
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

CH = 32
LEVELS = ["0", "1", "2"]


def backbone(norm=nn.BatchNorm2d) -> BackboneWithFPN:
    def conv(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1), norm(o), nn.ReLU())

    body = nn.Sequential(OrderedDict(stem=conv(3, 16), layer1=conv(16, 24), layer2=conv(24, 32), layer3=conv(32, 48)))
    return BackboneWithFPN(body, {"layer1": "0", "layer2": "1", "layer3": "2"}, [24, 32, 48], CH,
                           extra_blocks=LastLevelMaxPool())


def _common(**kw) -> dict:
    args = dict(min_size=96, max_size=128, box_score_thresh=0.0, box_detections_per_img=12,
                rpn_anchor_generator=AnchorGenerator(((16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 4),
                box_roi_pool=MultiScaleRoIAlign(LEVELS, 7, 2))
    args.update(kw)
    return args


def tiny_faster_rcnn() -> FasterRCNN:
    return FasterRCNN(backbone(), num_classes=3, **_common())


def tiny_frozen_bn() -> FasterRCNN:
    """Frozen BatchNorm in the backbone (as torchvision builds a pretrained one): training mode
    computes the features eval mode does."""
    return FasterRCNN(backbone(FrozenBatchNorm2d), num_classes=3, **_common())


def tiny_multiscale() -> FasterRCNN:
    """Trained at several sizes: the transform draws one in training (the last one in eval)."""
    return FasterRCNN(backbone(), num_classes=3, **_common(min_size=(64, 80, 96, 112)))


def tiny_mask_rcnn() -> MaskRCNN:
    return MaskRCNN(backbone(), num_classes=None, box_predictor=FastRCNNPredictor(1024, 3), mask_roi_pool=MultiScaleRoIAlign(LEVELS, 14, 2),
                    mask_head=MaskRCNNHeads(CH, [CH, CH], 1), mask_predictor=MaskRCNNPredictor(CH, CH, 3), **_common())


def tiny_keypoint_rcnn(num_keypoints: int = 17) -> KeypointRCNN:
    return KeypointRCNN(backbone(), num_classes=2, keypoint_roi_pool=MultiScaleRoIAlign(LEVELS, 14, 2),
                        keypoint_head=KeypointRCNNHeads(CH, [CH, CH]),
                        keypoint_predictor=KeypointRCNNPredictor(CH, num_keypoints), **_common())


class TopOne(RoIHeads):
    """RoI heads that keep only the best detection: a model whose output is not what the trace
    re-enacts (its first trace is checked against model(images), and differs)."""

    def postprocess_detections(self, *args):
        boxes, scores, labels = super().postprocess_detections(*args)
        return [b[:1] for b in boxes], [s[:1] for s in scores], [lab[:1] for lab in labels]


def top_one() -> FasterRCNN:
    m = tiny_faster_rcnn()
    m.roi_heads.__class__ = TopOne
    return m
