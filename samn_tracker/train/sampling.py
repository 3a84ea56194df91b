"""From clips to the cropped tensors the training loop consumes.

Crops come from ``samn_tracker.crops`` so training sees exactly the tracker's inputs:
frame 0 is cropped around its true box (the tracker is initialised with the truth),
frames 1-2 around a jittered box, because at test time their crop is centred on the
previous estimate, not on the truth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from samn_tracker.crops import CropWindow, crop_image, crop_mask, jittered_window, window_around
from samn_tracker.errors import InputError
from samn_tracker.regions import mask_to_box
from samn_tracker.train.clips import Clip, ClipSource


@dataclass
class CropSample:
    images: torch.Tensor  # (3, 3, S, S) float RGB in [0, 1], not normalised
    masks: torch.Tensor  # (3, 1, S, S) float {0, 1}
    memory_mask0: torch.Tensor  # (1, S, S): GT mask of frame 0, or its filled GT box


def box_init_clip(clip: Clip) -> Clip:
    """Box-to-segmentation sample: frame 0 three times; its box is memorised, its mask
    is the target."""
    return Clip([clip.frames[0]] * 3, [clip.masks[0]] * 3, box_init=True, name=clip.name)


def box_in_crop(box: np.ndarray, window: CropWindow) -> np.ndarray:
    """Filled (S, S) float rectangle of the crop pixels whose centres lie in the box
    (pixel columns x..x+w-1), at least one pixel wide."""
    x, y, w, h = box
    u0, v0 = window.to_crop(x - 0.5, y - 0.5)
    u1, v1 = window.to_crop(x + w - 0.5, y + h - 0.5)
    size = window.out_size
    left, top = (min(max(math.ceil(c), 0), size - 1) for c in (u0, v0))
    right, bottom = (min(max(math.ceil(c), lo + 1), size) for c, lo in ((u1, left), (v1, top)))
    rect = np.zeros((size, size), dtype=np.float32)
    rect[top:bottom, left:right] = 1.0
    return rect


def make_crop_sample(clip: Clip, crop_size: int, search_factor: float, rng: np.random.Generator,
                     centre_jitter: float = 0.25, scale_jitter: float = 0.25) -> CropSample:
    """Crop the three frames; a frame whose object is absent is cropped where the last
    visible box was (its target mask is then empty)."""
    box0 = mask_to_box(clip.masks[0])
    if box0 is None:
        raise InputError(f"clip {clip.name or '?'}: the object is not visible in frame 0")
    first = window_around(box0, search_factor, crop_size)
    windows, box = [first], box0
    for mask in clip.masks[1:]:
        visible = mask_to_box(mask)
        box = visible if visible is not None else box
        windows.append(first if clip.box_init else
                       jittered_window(box, search_factor, crop_size, rng, centre_jitter, scale_jitter))
    images = np.stack([crop_image(f, w) for f, w in zip(clip.frames, windows)])
    masks = np.stack([crop_mask(m, w) >= 0.5 for m, w in zip(clip.masks, windows)])
    memory0 = box_in_crop(box0, first) if clip.box_init else masks[0]
    return CropSample(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0),
        masks=torch.from_numpy(masks).float().unsqueeze(1),
        memory_mask0=torch.from_numpy(np.asarray(memory0, dtype=np.float32))[None],
    )


class ClipDataset(Dataset):
    """Mix of clip sources, cropped. Sample ``index`` depends only on (seed, epoch, index),
    so it is the same in any DataLoader worker and after a resume."""

    def __init__(self, sources: Sequence[ClipSource], weights: Sequence[float] | None = None,
                 crop_size: int = 256, search_factor: float = 4.0, length: int | None = None,
                 seed: int = 0, box_init_prob: float = 0.01, centre_jitter: float = 0.25,
                 scale_jitter: float = 0.25):
        if not sources:
            raise InputError("ClipDataset needs at least one clip source")
        weights = [1.0] * len(sources) if weights is None else [float(w) for w in weights]
        if len(weights) != len(sources) or min(weights) < 0 or sum(weights) <= 0:
            raise InputError(f"mixing weights {weights} must be one non-negative number per "
                             f"source ({len(sources)}) with a positive sum")
        self.sources = list(sources)
        self.probabilities = np.asarray(weights) / sum(weights)
        self.crop_size = crop_size
        self.search_factor = search_factor
        self.length = length if length is not None else sum(len(s) for s in self.sources)
        self.seed = seed
        self.epoch = 0
        self.box_init_prob = box_init_prob
        self.centre_jitter = centre_jitter
        self.scale_jitter = scale_jitter

    def set_epoch(self, epoch: int) -> None:
        """New draws for every epoch (call it like DistributedSampler.set_epoch); sources
        with a schedule (growing frame gaps) follow it."""
        self.epoch = epoch
        for source in self.sources:
            if hasattr(source, "set_epoch"):
                source.set_epoch(epoch)

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> tuple[Clip, np.random.Generator]:
        """The uncropped clip of sample ``index`` and the generator that goes on to crop it."""
        if not 0 <= index < self.length:
            raise IndexError(f"sample {index} outside 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        source = self.sources[int(rng.choice(len(self.sources), p=self.probabilities))]
        clip = source.clip(int(rng.integers(len(source))), rng)
        return (box_init_clip(clip) if rng.random() < self.box_init_prob else clip), rng

    def __getitem__(self, index: int) -> CropSample:
        clip, rng = self.clip(index)
        return make_crop_sample(clip, self.crop_size, self.search_factor, rng,
                                self.centre_jitter, self.scale_jitter)
