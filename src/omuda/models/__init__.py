"""Networks: MiT and EfficientNet-Lite0 backbones, the DAFormer head, the segmentor, and
weight loading."""

from omuda.models.daformer_head import DAFormerHead
from omuda.models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from omuda.models.mit import MixTransformer, mit_b0, mit_b1, mit_b2, mit_b3, mit_b4, mit_b5
from omuda.models.segmentor import (
    BACKBONE_NAMES,
    Segmentor,
    SegOutput,
    build_backbone,
    build_segmentor,
)
from omuda.models.weights import (
    LoadReport,
    load_backbone_weights,
    load_segmentor_weights,
    load_state_dict_file,
)

__all__ = [
    "BACKBONE_NAMES",
    "DAFormerHead",
    "EfficientNetLite0",
    "LoadReport",
    "MixTransformer",
    "SegOutput",
    "Segmentor",
    "build_backbone",
    "build_segmentor",
    "efficientnet_lite0",
    "load_backbone_weights",
    "load_segmentor_weights",
    "load_state_dict_file",
    "mit_b0",
    "mit_b1",
    "mit_b2",
    "mit_b3",
    "mit_b4",
    "mit_b5",
]
