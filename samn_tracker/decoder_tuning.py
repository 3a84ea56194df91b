"""First-frame tuning of the decoder (``TuningConfig``): a copy of the decoder's weights
trained for one target on crops of its first frame.

The decoder trained offline on 30 scenes segments whatever is salient near the crop's
centre; a few steps on the one annotated frame teach it this target against this
background (DAVIS 2016 val J&F 0.586 -> 0.663, docs/training.md). Only the decoder trains:
its inputs (query features, memory read-out, spatial map) are computed once, so a step
is a decoder forward and backward on ``batch`` crops.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call

from samn_tracker.config import TuningConfig
from samn_tracker.train.losses import segmentation_loss

DecoderWeights = dict[str, Tensor]


@dataclass
class TuningViews:
    """The decoder's inputs for the first frame's crops, and their masks."""

    readout: Tensor      # (V, 2 dv, H16, W16)
    spatial_map: Tensor  # (V, 1, H16, W16)
    s8: Tensor
    s4: Tensor
    masks: Tensor        # (V, 1, S, S) in {0, 1}


def tune_decoder(decoder: nn.Module, views: TuningViews, cfg: TuningConfig,
                 generator: torch.Generator) -> DecoderWeights:
    """Adam on a copy of ``decoder``'s parameters; the module itself is not changed.
    ``generator`` (CPU) draws the crops of each step, so a seed gives the same weights."""
    weights = {name: p.detach().clone().requires_grad_() for name, p in decoder.named_parameters()}
    optimiser = torch.optim.Adam(weights.values(), lr=cfg.lr)
    size = views.masks.shape[-1]
    with torch.enable_grad(), _subnormals_flushed():
        for _ in range(cfg.steps):
            pick = torch.randperm(len(views.masks), generator=generator)[:cfg.batch].to(views.masks.device)
            logits = functional_call(decoder, weights, (views.readout[pick], views.spatial_map[pick],
                                                        views.s8[pick], views.s4[pick], size))
            loss = segmentation_loss(logits, views.masks[pick])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return {name: w.detach() for name, w in weights.items()}


@contextmanager
def _subnormals_flushed() -> Iterator[None]:
    """Flush subnormal floats to zero on this thread (a CPU's backward runs on it; other
    torch threads keep their mode), then put the mode back. The gradients of confidently
    classified pixels are subnormal, and x86 computes with those ~100x slower: on one
    thread this makes ``lite``'s tuning a fifth shorter. A flushed value is under 1.2e-38,
    far below what an Adam step resolves."""
    tiny = torch.tensor(torch.finfo(torch.float32).tiny)
    was_flushing = bool(tiny / 2 == 0)  # half the smallest normal float is subnormal
    if not torch.set_flush_denormal(True):  # no such mode on this CPU
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)
