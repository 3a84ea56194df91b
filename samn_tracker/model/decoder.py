"""STM-style mask decoder with the spatial memory's map as a positional encoding."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)
        self.skip = nn.Conv2d(in_dim, out_dim, 3, padding=1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        return (x if self.skip is None else self.skip(x)) + r


class Refine(nn.Module):
    """Merges a finer encoder skip with the upsampled coarser decoder state."""

    def __init__(self, skip_dim: int, dim: int):
        super().__init__()
        self.skip = nn.Sequential(nn.Conv2d(skip_dim, dim, 3, padding=1), ResBlock(dim, dim))
        self.merge = ResBlock(dim, dim)

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        s = self.skip(skip)
        up = F.interpolate(coarse, size=s.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge(s + up)


class Decoder(nn.Module):
    """Read-out (stride 16) -> refine with stride-8 and stride-4 skips -> 2-class logits.

    ``fusion`` says how the spatial map enters: "sum" adds it to every channel (the
    paper), "cat" concatenates it as one more channel (ablation), "none" ignores it.
    """

    def __init__(self, in_dim: int, skip8_dim: int, skip4_dim: int, dim: int, fusion: str = "sum"):
        super().__init__()
        if fusion not in ("sum", "cat", "none"):
            raise ValueError(f"unknown spatial fusion {fusion!r}")
        self.fusion = fusion
        self.conv_in = nn.Conv2d(in_dim, dim, 3, padding=1)
        self.res_in = ResBlock(dim, dim)
        self.fuse = nn.Conv2d(dim + 1, dim, 3, padding=1) if fusion == "cat" else None
        self.refine8 = Refine(skip8_dim, dim)
        self.refine4 = Refine(skip4_dim, dim)
        self.pred = nn.Conv2d(dim, 2, 3, padding=1)

    def forward(self, readout: torch.Tensor, spatial_map: Optional[torch.Tensor],
                s8: torch.Tensor, s4: torch.Tensor, out_size: int) -> torch.Tensor:
        """Returns logits (B, 2, out_size, out_size); channel 1 is the foreground."""
        x = self.res_in(self.conv_in(readout))
        if spatial_map is not None and self.fusion == "sum":
            x = x + spatial_map
        elif spatial_map is not None and self.fusion == "cat":
            x = self.fuse(torch.cat([x, spatial_map], dim=1))
        x = self.refine4(s4, self.refine8(s8, x))
        # Two channels upsample ~4x faster from a contiguous tensor than channels-last
        # (on a CPU, where channels-last bilinear works per pixel), to the same numbers.
        logits = self.pred(F.relu(x)).contiguous()
        return F.interpolate(logits, size=(out_size, out_size), mode="bilinear",
                             align_corners=False)


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) logits -> (B, 1, H, W) foreground probability."""
    return logits.softmax(dim=1)[:, 1:2]
