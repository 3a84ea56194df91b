"""A tracked frame's device work before the memory read, as one function of tensors: the
crops, the query encoder, every target's DCF scores and peak, and the DCF's map on the
segmentation crop's grid (the decoder's spatial map).

Everything it needs from the host comes in as tensors (the frames, where each crop lies,
each target's folded filter, where the DCF map is resampled), so its shapes are fixed for
a frame size and batch. With device frame operations (``frame_ops="torch"``, the CUDA
default) the tracker runs it as one pass: on CUDA replayed from one CUDA graph per frame
size and padded batch (``model/graphs.py``), where the same work issued operator by
operator cost some twenty launches and their Python each frame. On a CPU it runs as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from samn_tracker.frame_ops import DeviceFrames, grids_from_axes, unit_float
from samn_tracker.model.encoders import QueryFeatures
from samn_tracker.model.spatial_memory import SpatialMemory

# What the pass gives for the decoder's spatial map: the DCF's scores clamped to [0, 1] on
# the segmentation crop's grid ("resampled" from a separate DCF crop, or "same" crop), or
# nothing ("none": the tracker draws the distance map or zeros itself).
SpatialOutput = Literal["resampled", "same", "none"]


@dataclass
class Front:
    """The pass's outputs for n targets."""

    seg_crops: Tensor        # (n, 3, S, S)
    query: QueryFeatures     # of the segmentation crops
    dcf_features: Tensor     # (n, C, H16, W16) of the DCF crops
    peaks: Tensor | None     # (n, 6) ``SpatialMemory.peak_values`` (with a DCF)
    spatial: Tensor | None   # (n, 1, H16, W16) unless ``spatial`` is "none"

    @classmethod
    def of(cls, outputs: tuple[Tensor, ...], dcf: bool, spatial: SpatialOutput) -> "Front":
        """From ``front_pass``'s tuple (and the same options)."""
        seg_crops, key, value, s16, s8, s4, dcf_features, *rest = outputs
        peaks = rest.pop(0) if dcf else None
        return cls(seg_crops, QueryFeatures(key, value, s16, s8, s4), dcf_features, peaks,
                   rest.pop(0) if spatial != "none" else None)


def front_pass(query_pass, frames: Tensor, crop_axes: Tensor, scorers: Tensor, spatial_axes: Tensor,
               dcf: bool, spatial: SpatialOutput) -> tuple[Tensor, ...]:
    """``query_pass``: the network's query encoder (``SAMNNetwork.query_pass``). ``frames``
    (n, H, W, 3) uint8; ``crop_axes`` (n, k, 2, S): each target's k crops (segmentation, then
    DCF; ``DeviceFrames.crop_axes``); ``scorers`` (n, k*k, C): each target's folded filter
    (with ``dcf``); ``spatial_axes`` (n, 2, H16): where the segmentation grid's cells lie on
    the DCF crop's grid, in [-1, 1] (for "resampled"). Rows are independent.
    Returns ``Front.of``'s tuple: seg crops, the five query features, the DCF crops'
    features, then the peaks (with ``dcf``) and the spatial map (unless "none")."""
    images = unit_float(frames)
    per_target = crop_axes.shape[1]
    crops = [DeviceFrames.sample_crops(images, crop_axes[:, j]) for j in range(per_target)]
    batch = crops[0] if per_target == 1 else torch.stack(crops, dim=1).flatten(0, 1)
    key, value, s16, s8, s4 = query_pass(batch)
    outputs = [crops[0]] + [t[::per_target] for t in (key, value, s16, s8, s4)]
    dcf_features = s16[per_target - 1::per_target]
    outputs.append(dcf_features)
    if dcf:
        responses = SpatialMemory.scores(scorers, dcf_features)
        outputs.append(SpatialMemory.peak_values(responses))
        if spatial != "none":
            outputs.append(resampled_scores(responses, spatial_axes if spatial == "resampled" else None))
    return tuple(outputs)


def resampled_scores(responses: Tensor, axes: Tensor | None) -> Tensor:
    """(n, 1, H16, W16): DCF scores (n, h, w) clamped to [0, 1], and with ``axes`` (n, 2, H16)
    (columns, rows) resampled onto the segmentation crop's grid (zero beyond the DCF crop)."""
    responses = responses.clamp(0.0, 1.0)[:, None]
    if axes is None:
        return responses
    return F.grid_sample(responses, grids_from_axes(axes[:, 0], axes[:, 1]), align_corners=True,
                         padding_mode="zeros")
