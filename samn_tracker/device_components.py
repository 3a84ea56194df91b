"""``regions.main_components`` on the masks' device, for a batch of masks at once.

On a GPU the lockstep's host threads spend most of a target's host work labelling its mask
with OpenCV, and wait for the GIL between the labelling's native calls (docs/bench.md).
Here the labelling is a few batched tensor operations instead, and the host gets back the
kept masks. The components are the same sets of pixels however they are found, so the kept
masks are those of ``main_components`` exactly (tested).

Each pixel starts labelled by its own place. In a round each pixel sees the largest label
among its 8 neighbours, along its row run and along its column run; every label then
learns the largest that any of its pixels saw, and follows that chain of labels twice
(label equivalence, as GPU labelling algorithms merge labels): all the pixels of a label
move at once, not a pixel's reach a round. A round that changes nothing means every
component holds one label. On DAVIS 2016's annotations (every 5th frame of 8 videos)
that took 2 or 3 rounds and one more to see it, at most 4 and a fifth; on tracked masks,
which are smoother, 1 or 2 and one more. So a fixed number of rounds runs without asking the
device how it went, and a mask still changing in the last one is left to the host
(``done`` False).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from samn_tracker.model.graphs import BatchBuckets, GraphedPass, Pass

ROUNDS = 5
JUMPS = 2  # how far along its chain of merged labels a label moves in a round
# Labels are pixel places held exactly in float32 (what ``max_pool2d`` takes): at most 2**24.
MOST_PIXELS = 2 ** 24


def keep_main_components(masks: Tensor, min_fraction: float, rounds: int = ROUNDS) -> tuple[Tensor, Tensor]:
    """(n, H, W) bool masks -> (each mask's largest 8-connected component and every
    component of at least ``min_fraction`` of its area; whether that mask's labels settled
    within ``rounds``). A mask that did not settle comes back as it is."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    n, height, width = masks.shape
    pixels = height * width
    if pixels > MOST_PIXELS:
        return masks, torch.zeros(n, dtype=torch.bool, device=masks.device)
    foreground = masks.float()
    runs = (_run_ids(masks, dim=2), _run_ids(masks, dim=1))
    labels = (torch.arange(1, pixels + 1, dtype=torch.float32, device=masks.device) * foreground.view(n, -1)).long()
    unmerged = torch.arange(pixels + 1, dtype=torch.float32, device=masks.device).expand(n, -1)
    for _ in range(rounds):
        before = labels
        seen = F.max_pool2d(labels.view(n, 1, height, width).float(), 3, stride=1, padding=1)[:, 0] * foreground
        for run in runs:
            seen = _run_max(seen, run)
        # a label's table entry: the largest label its pixels saw; merged labels' entries
        # only grow, so following the table twice moves a label two merges on
        merged = unmerged.clone().scatter_reduce_(1, labels, seen.view(n, -1), "amax")
        for _ in range(JUMPS):
            merged = merged.gather(1, merged.long())
        labels = merged.gather(1, labels).long()
    done = (labels == before).all(1)
    areas = torch.zeros(n, pixels + 1, device=masks.device).scatter_add_(1, labels, foreground.view(n, -1))[:, 1:]
    # float64 as regions.main_components: a component's area against the fraction of the largest
    keep = areas >= min_fraction * areas.amax(1, keepdim=True).double()
    kept = F.pad(keep, (1, 0)).gather(1, labels).view(n, height, width)
    return torch.where(done[:, None, None], kept, masks), done


class MainComponents:
    """``keep_main_components`` at one fraction, for masks pasted into frames. ``graphed``
    (on CUDA): the masks' block is first padded to a canvas of a few sizes (``canvas_side``
    of each side, at most the frame's), so that each canvas and padded batch has one shape
    and one CUDA graph (``BatchBuckets``; ``make``: how a bucket's runner is made, eager in
    tests on a CPU): the labelling's hundred kernels are then one launch. A canvas follows
    the block, not the frame, so a graph's buffers grow with the crops a step pastes, not
    with the frame: a lockstep of 32 full-HD videos would otherwise hold GBs per graph.
    The padding's zeros join no component, and a pixel's label, its place in row order, is
    ordered alike on any canvas: the kept masks, and whether they settled, are the same."""

    def __init__(self, min_fraction: float, graphed: bool = False,
                 make: Callable[[Pass, tuple[Tensor, ...], dict], Pass] = GraphedPass):
        self.min_fraction = min_fraction
        self.graphs: Optional[BatchBuckets] = BatchBuckets(keep_main_components, make) if graphed else None

    def __call__(self, masks: Tensor, frame: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """``keep_main_components`` of (n, h, w) masks, the blocks of frames of size ``frame``."""
        if self.graphs is None:
            return keep_main_components(masks, self.min_fraction)
        height, width = masks.shape[1:]
        canvas = F.pad(masks, (0, canvas_side(width, frame[1]) - width, 0, canvas_side(height, frame[0]) - height))
        kept, settled = self.graphs(canvas, min_fraction=self.min_fraction)
        return kept[:, :height, :width], settled


def canvas_side(length: int, frame_length: int) -> int:
    """The canvas side that holds ``length`` pixels: the next of 64, 96, 128, 192, 256, 384,
    ... (at most 1.5 times ``length``), or the frame's side where that is smaller."""
    side = 64
    while side < length:
        side = side * 3 // 2 if side & (side - 1) == 0 else side * 4 // 3  # a power of two, then 1.5 times one
    return min(side, frame_length)


def _run_ids(masks: Tensor, dim: int) -> tuple[Tensor, int]:
    """Each pixel's run of foreground along ``dim`` (2: rows, 1: columns) as an index unique
    in the batch, 0 for background ((n, H, W) int64), and how many indices there can be."""
    starts = masks.clone()
    ahead = starts.narrow(dim, 1, masks.shape[dim] - 1)
    ahead &= ~masks.narrow(dim, 0, masks.shape[dim] - 1)
    along = starts.cumsum(dim)
    lines = masks.numel() // masks.shape[dim]
    per_line = masks.shape[dim] // 2 + 2                      # more than a line's runs
    base = torch.arange(lines, device=masks.device) * per_line
    shape = list(masks.shape)
    shape[dim] = 1
    return (along + base.view(shape)) * masks, lines * per_line


def _run_max(labels: Tensor, runs: tuple[Tensor, int]) -> Tensor:
    """Each pixel's label raised to the largest of its run (``_run_ids``'s)."""
    ids, slots = runs
    top = torch.zeros(slots, device=labels.device).scatter_reduce_(0, ids.view(-1), labels.reshape(-1), "amax")
    return top.gather(0, ids.view(-1)).view_as(labels)
