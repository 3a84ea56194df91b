"""What enters the two memories, and when (the role of Cutie's ``MemoryManager``).

After each tracked frame the tracker reports the DCF's peak, the decoded mask and where
the target was; ``decide`` answers with the paper's interaction rules and this
project's additions:

* **uncertainty gate**: U_t = mean(queue of recent accepted peaks) / peak_t above the
  threshold keeps the frame out of both memories (and its peak out of the queue);
* **mask plausibility** (beyond the paper): a mask whose box jumps away from the DCF's
  peak (and, where ``mask_check.near`` says so, from the previous target), or whose area
  changes too fast, is neither used for the box nor memorised (unless it keeps growing,
  or for a tuned target shrinking, alike for a few frames near the peak: the target did);
* **appearance writes**: every ``memory.interval``-th frame is sampled into the memory,
  other frames replace the temporary "last frame" entry (``memory.last_frame``; every
  ``memory.last_frame_interval``-th frame only, to save memory-encoder passes);
* **DCF samples**: labelled at the mask's centroid, or at the DCF's own peak when
  there is no usable mask;
* **the box after a refused mask**: moved to the DCF's peak, or for a tuned target left
  where it was unless its mask is empty (``mask_check.refused_box``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch

from samn_tracker import regions
from samn_tracker.config import TrackerConfig
from samn_tracker.model.appearance_memory import AppearanceMemory, MemoryEntry

Write = Literal["sampled", "last"]
RESIZE_RUN_IOU = 0.7  # a refused resized mask's box this like the one before continues a run
Point = tuple[float, float]


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one frame."""

    uncertain: bool               # kept out of both memories
    trusted: bool                 # the mask is plausible: it sets the box
    appearance: Optional[Write]   # how the frame enters the appearance memory (None: not)
    dcf_label: Optional[Point]    # frame (x, y) of the DCF's new sample (None: no update)
    moved_to: Optional[Point]     # where an untrusted mask leaves the box (None: where it was)


class MemoryManager:
    """The appearance memory of one target, the queue of accepted DCF peaks, and the rules
    that decide what is written to them and to the DCF."""

    def __init__(self, cfg: TrackerConfig, first: MemoryEntry):
        self.cfg = cfg
        self.appearance = AppearanceMemory(keep_first=cfg.memory.keep_first,
                                           max_entries=cfg.memory.max_entries)
        self.appearance.set_first(first)
        self.peaks: deque[float] = deque(maxlen=cfg.uncertainty.queue_length)
        self._resized: list[np.ndarray] = []  # boxes of the latest masks refused only for their size
        self._resize_grew = False                # whether those grew (else they shrank)

    def __len__(self) -> int:
        return len(self.appearance)

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (1, dk, N) and values (1, dv, N) of every stored frame."""
        return self.appearance.keys_values()

    def replace_first(self, entry: MemoryEntry) -> None:
        """Box-to-segmentation: the refined first mask replaces the box mask."""
        self.appearance.set_first(entry)

    def decide(self, frame: int, peak: float, mask: regions.MaskCounts, previous_box: np.ndarray,
               dcf_centre: Optional[Point], tuned_decoder: bool = False) -> Decision:
        """Apply the rules to one tracked frame (records an accepted peak). ``mask``: the
        mask's row and column counts, which give its box and centroid; ``tuned_decoder``:
        whether it came from a decoder tuned on this target's first frame."""
        mask_box = mask.box
        use_dcf = self.cfg.use_dcf
        uncertain = self.is_uncertain(peak) if use_dcf else False
        if use_dcf and not uncertain:
            self.peaks.append(peak)
        trusted = self.mask_agrees(mask_box, previous_box, dcf_centre, tuned_decoder)
        moved_to = dcf_centre if self.follows_peak(mask_box, tuned_decoder) else None
        if uncertain:
            return Decision(True, trusted, None, None, moved_to)
        label = mask.centroid() if trusted and mask_box is not None else dcf_centre
        return Decision(False, trusted, self.appearance_write(frame) if trusted else None,
                        label if use_dcf else None, moved_to)

    def follows_peak(self, mask_box: Optional[np.ndarray], tuned_decoder: bool) -> bool:
        """Whether a refused mask leaves the box at the DCF's peak (``mask_check.refused_box``):
        with ``"auto"``, for an untuned target, or a tuned one whose decoder found nothing."""
        refused_box = self.cfg.mask_check.refused_box
        if refused_box == "auto":
            return not tuned_decoder or mask_box is None
        return refused_box == "peak"

    def mean_peak(self) -> float:
        """The mean of the accepted DCF peaks (the queue must not be empty)."""
        # np.mean's pairwise sum and division, without its Python layers: this runs per
        # target and frame, holding the GIL that a lockstep's host threads share
        return float(np.add.reduce(np.fromiter(self.peaks, np.float64, len(self.peaks))) / len(self.peaks))

    def is_uncertain(self, peak: float) -> bool:
        u = self.cfg.uncertainty
        if not u.enabled or not self.peaks:
            return False
        if peak <= 0:
            return True
        return self.mean_peak() / peak > u.threshold

    def mask_agrees(self, box: Optional[np.ndarray], previous_box: np.ndarray,
                    dcf_centre: Optional[Point], tuned_decoder: bool = False) -> bool:
        """Whether a mask with this box (None: empty) is plausible next to the previous
        target and the DCF's peak (``MaskCheckConfig``). A mask near the previous target but
        not the peak is kept only at about the same size: a run of growing masks needs the
        DCF's word, or a mask that spreads onto a neighbour would be taken for growth."""
        check = self.cfg.mask_check
        if not check.enabled:
            return True
        reach = check.max_centre_shift * float(np.sqrt(previous_box[2] * previous_box[3]))
        near_peak = box is not None and _within(box, dcf_centre, reach)
        by_previous = check.near == "peak_or_previous" or (check.near == "auto" and tuned_decoder)
        near_previous = (box is not None and by_previous
                         and _within(box, regions.box_centre(previous_box), reach))
        if not (near_peak or near_previous):
            self._resized.clear()
            return False
        ratio = box[2] * box[3] / max(previous_box[2] * previous_box[3], 1e-6)
        if 1.0 / check.max_area_change <= ratio <= check.max_area_change:
            self._resized.clear()
            return True
        if not near_peak:
            self._resized.clear()
            return False
        return self._kept_resizing(box, grew=ratio > 1.0, tuned_decoder=tuned_decoder)

    def _kept_resizing(self, box: np.ndarray, grew: bool, tuned_decoder: bool) -> bool:
        """A mask refused for growing (shrinking) too fast: accepted once such masks, each
        like the one before, have come ``accept_growth_after`` (``accept_shrink_after``, for
        a tuned target only) frames in a row."""
        run = self._resized
        if run and (grew != self._resize_grew or regions.iou_boxes(run[-1], box) < RESIZE_RUN_IOU):
            run.clear()
        run.append(box)
        self._resize_grew = grew
        check = self.cfg.mask_check
        if grew:
            after = check.accept_growth_after
        else:
            after = check.accept_shrink_after if tuned_decoder else 0
        if after and len(run) >= after:
            run.clear()
            return True
        return False

    def appearance_write(self, frame: int) -> Optional[Write]:
        """Sampled every ``interval`` frames, else the temporary last-frame entry (if kept,
        on every ``last_frame_interval``-th frame)."""
        memory = self.cfg.memory
        if memory.interval > 0 and frame % memory.interval == 0:
            return "sampled"
        return "last" if memory.last_frame and frame % memory.last_frame_interval == 0 else None

    def memorise(self, entry: MemoryEntry, write: Write) -> None:
        if write == "sampled":
            self.appearance.add_sampled(entry)
        else:
            self.appearance.set_last(entry)


def _within(box: np.ndarray, point: Optional[Point], reach: float) -> bool:
    """Whether the box's centre is within ``reach`` of the point (None: no DCF, anywhere)."""
    if point is None:
        return True
    x, y = regions.box_centre(box)
    return float(np.hypot(x - point[0], y - point[1])) <= reach
