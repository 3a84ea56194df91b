"""Query and memory encoders: separate backbones with key/value heads at stride 16."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from samn_tracker.backbones import Backbone


@dataclass
class QueryFeatures:
    """What the query encoder gives for a batch of crops."""

    key: torch.Tensor    # (B, key_dim, H16, W16)
    value: torch.Tensor  # (B, value_dim, H16, W16)
    s16: torch.Tensor    # backbone features, also the DCF's input
    s8: torch.Tensor
    s4: torch.Tensor

    def select(self, index: int) -> "QueryFeatures":
        return self._take(slice(index, index + 1))

    def every(self, step: int) -> "QueryFeatures":
        """Crops 0, step, 2 step, ...: the segmentation crops when each target also has a DCF crop."""
        return self._take(slice(None, None, step))

    def _take(self, pick: slice) -> "QueryFeatures":
        return QueryFeatures(self.key[pick], self.value[pick], self.s16[pick], self.s8[pick],
                             self.s4[pick])


def _head(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class QueryEncoder(nn.Module):
    def __init__(self, backbone: Backbone, key_dim: int, value_dim: int):
        super().__init__()
        self.backbone = backbone
        channels = backbone.channels["s16"]
        self.key = _head(channels, key_dim)
        self.value = _head(channels, value_dim)

    def forward(self, images: torch.Tensor) -> QueryFeatures:
        feats = self.backbone(images)
        s16 = feats["s16"]
        return QueryFeatures(self.key(s16), self.value(s16), s16, feats["s8"], feats["s4"])


class MemoryEncoder(nn.Module):
    """Encodes (RGB crop, foreground, background) into a memory key and value.

    Each input has its own stem; the RGB stem is the backbone's first conv, the two
    mask stems are new 1-channel convs of the same geometry. Their sum enters the rest
    of the backbone.
    """

    def __init__(self, backbone: Backbone, key_dim: int, value_dim: int):
        super().__init__()
        self.backbone = backbone
        stem = backbone.stem_conv
        geometry = dict(kernel_size=stem.kernel_size, stride=stem.stride, padding=stem.padding,
                        bias=False)
        self.fg_stem = nn.Conv2d(1, stem.out_channels, **geometry)
        self.bg_stem = nn.Conv2d(1, stem.out_channels, **geometry)
        channels = backbone.channels["s16"]
        self.key = _head(channels, key_dim)
        self.value = _head(channels, value_dim)

    def forward(self, images: torch.Tensor, foreground: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stem = (self.backbone.stem_conv(images) + self.fg_stem(foreground)
                + self.bg_stem(1.0 - foreground))
        s16 = self.backbone.forward_from_stem(stem)["s16"]
        return self.key(s16), self.value(s16)
