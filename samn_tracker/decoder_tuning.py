"""First-frame tuning of the decoder (``TuningConfig``): a copy of the decoder's weights
trained for one target on crops of its first frame.

The decoder trained offline on 30 scenes segments whatever is salient near the crop's
centre; a few steps on the one annotated frame teach it this target against this
background (DAVIS 2016 val J&F 0.586 -> 0.663, docs/training.md). Only the decoder trains:
its inputs (query features, memory read-out, spatial map) are computed once, so a step
is a decoder forward and backward on ``batch`` crops. Targets that start together on a GPU
tune together, one pass a step over their stacked weights (``tune_stacked``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

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
    size = views.masks.shape[-1]

    def loss(pick: Tensor) -> Tensor:
        logits = functional_call(decoder, weights, (views.readout[pick], views.spatial_map[pick],
                                                    views.s8[pick], views.s4[pick], size))
        return segmentation_loss(logits, views.masks[pick])

    _fit(weights, loss, len(views.masks), cfg, generator)
    return {name: w.detach() for name, w in weights.items()}


def tune_decoders(decoder: nn.Module, views: Sequence[TuningViews], cfg: TuningConfig,
                  seed: int) -> list[DecoderWeights]:
    """``tune_decoder`` for each target on its own ``views``, each with a generator seeded by
    ``seed``. On a GPU the targets tune together (``tune_stacked``): a lockstep batch's
    starts would otherwise wait one after another for each one's steps, hundreds of small
    launches each. On a CPU one after another, where the stacked pass's grouped convolutions
    are slower (three ``lite`` targets, one thread: 13.9 s against 9.7)."""
    if len(views) <= 1 or views[0].masks.device.type == "cpu":
        return [tune_decoder(decoder, v, cfg, torch.Generator().manual_seed(seed)) for v in views]
    return tune_stacked(decoder, views, cfg, torch.Generator().manual_seed(seed))


def tune_stacked(decoder: nn.Module, views: Sequence[TuningViews], cfg: TuningConfig,
                 generator: torch.Generator) -> list[DecoderWeights]:
    """``tune_decoder`` of several targets at once: their copies of the weights stacked, and a
    step one ``vmap`` pass (a grouped convolution per layer) of every target's crops, the
    targets' losses summed. A target's gradient is its own loss's and Adam works weight by
    weight, so each target's weights are its tuning alone's within float rounding (which the
    steps grow: ``lite``'s masks on its views agree to IoU 0.999). Every target draws the same
    crops of its views, as each of their generators seeded alike would."""
    if len({len(v.masks) for v in views}) > 1:
        raise ValueError("targets tuned together need as many views each")
    stacked = TuningViews(*(torch.stack([getattr(v, f.name) for v in views]) for f in fields(TuningViews)))
    weights = {name: p.detach().expand(len(views), *p.shape).clone().requires_grad_()
               for name, p in decoder.named_parameters()}
    size = stacked.masks.shape[-1]

    def one(w: DecoderWeights, readout: Tensor, spatial_map: Tensor, s8: Tensor, s4: Tensor,
            masks: Tensor) -> Tensor:
        return segmentation_loss(functional_call(decoder, w, (readout, spatial_map, s8, s4, size)), masks)

    def loss(pick: Tensor) -> Tensor:
        return vmap(one)(weights, *(getattr(stacked, f.name)[:, pick] for f in fields(TuningViews))).sum()

    _fit(weights, loss, len(views[0].masks), cfg, generator)
    # each target's weights its own storage, not a view of the stack: a target that ends, or
    # is saved (``torch.save`` keeps a view's whole storage), holds only its own
    return [{name: w[i].detach().clone() for name, w in weights.items()} for i in range(len(views))]


def _fit(weights: DecoderWeights, loss: Callable[[Tensor], Tensor], views: int, cfg: TuningConfig,
         generator: torch.Generator) -> None:
    """``cfg.steps`` Adam steps on ``weights``, each on the loss of ``cfg.batch`` of the
    ``views`` drawn by ``generator``."""
    optimiser = torch.optim.Adam(weights.values(), lr=cfg.lr)
    device = next(iter(weights.values())).device
    with torch.enable_grad(), _subnormals_flushed():
        for _ in range(cfg.steps):
            pick = torch.randperm(views, generator=generator)[:cfg.batch].to(device)
            optimiser.zero_grad(set_to_none=True)
            loss(pick).backward()
            optimiser.step()


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
