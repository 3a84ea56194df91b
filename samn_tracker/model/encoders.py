"""Query and memory encoders with key/value heads at stride 16: the memory encoder runs a
backbone of its own on the frame and its mask, or reuses the query encoder's features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from samn_tracker.backbones import Backbone
from samn_tracker.batch_rows import take_rows


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

    def rows(self, rows: Sequence[int]) -> "QueryFeatures":
        """The features of crops ``rows``, in that order (all of them: these features)."""
        return QueryFeatures(*(take_rows(t, rows) for t in (self.key, self.value, self.s16, self.s8, self.s4)))

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

    def features(self, images: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
        """The backbone's stride-16 features of the frame with its mask."""
        stem = (self.backbone.stem_conv(images) + self.fg_stem(foreground)
                + self.bg_stem(1.0 - foreground))
        return self.backbone.forward_from_stem(stem)["s16"]

    def forward(self, images: torch.Tensor, foreground: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s16 = self.features(images, foreground)
        return self.key(s16), self.value(s16)


class QueryReuseMemoryEncoder(nn.Module):
    """A memory pass without a backbone of its own (``ModelConfig.memory_pass="query"``).

    A memorised frame has just been seen by the query encoder, so its stride-16 backbone
    features exist; what ``MemoryEncoder``'s second backbone pass adds to them is the mask.
    A small branch brings the foreground to stride 16, a residual block predicts how the
    mask changes the features (``s16 + fuse([s16, mask])``), and heads shaped like the
    memory encoder's read the result. Trained by distillation from a ``MemoryEncoder``
    (``samn distill``); a sixth of its cost on a CPU.
    """

    def __init__(self, channels: int, key_dim: int, value_dim: int, mask_channels: int = 32,
                 hidden: int = 64):
        super().__init__()
        self.mask = nn.Sequential(
            nn.AvgPool2d(4),
            nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, mask_channels, kernel_size=3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(mask_channels, mask_channels, kernel_size=3, padding=1))
        self.fuse = nn.Sequential(
            nn.Conv2d(channels + mask_channels, hidden, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=3, padding=1))
        self.key = _head(channels, key_dim)
        self.value = _head(channels, value_dim)

    def features(self, foreground: torch.Tensor, s16: torch.Tensor) -> torch.Tensor:
        """The stand-in for ``MemoryEncoder``'s backbone features (what distillation matches)."""
        return s16 + self.fuse(torch.cat([s16, self.mask(foreground)], dim=1))

    def forward(self, foreground: torch.Tensor, s16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(foreground, s16)
        return self.key(feats), self.value(feats)
