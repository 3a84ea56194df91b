"""The initialise-then-track loops, timed: where adapters step a tracker through videos (the
TraX server, the got10k toolkit and ``samn bench --profile`` drive frames themselves).

``track_frames`` initialises on the first frame and tracks the rest, yielding each
frame's output with the wall time of the tracker call alone: the next frame is pulled
from ``frames`` (decoded, read from disk) before the clock starts. The initialisation is
timed with CUDA work synchronised on both sides. A tracked frame is not: the device work
a ``track`` call leaves queued (its memory writes) runs while the host starts the next
call, whose read-back waits for it, so that call's time holds it; the last frame's clock
stops after the device's queue is done, so the seconds add up to the tracking time.

``track_lockstep`` does the same for many videos at once: up to ``batch`` of them advance
together, one batched ``tracker.step`` per frame, and the videos that end hand their slots
to the next ones, which start together (``tracker.start_all``). A frame's time there is the
batched call's time divided among its videos.
Split into ``groups``, the batch's groups are stepped in turn so that one group's host
work overlaps another's device work.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from samn_tracker.devices import synchroniser


@dataclass
class Step:
    index: int          # 0: the initialisation frame
    image: np.ndarray
    output: Any         # what ``initialize`` / ``track`` returned
    seconds: float      # wall time of that call


def _timed(sync: Callable[[], None], call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()`` and its wall time, with queued device work finished on both sides."""
    sync()
    start = time.perf_counter()
    result = call()
    sync()
    return result, time.perf_counter() - start


def track_frames(tracker, frames: Iterable[np.ndarray], region, first_index: int = 0) -> Iterator[Step]:
    """``tracker.initialize(frame 0, region)``, then ``tracker.track`` on every later frame
    (one frame read ahead, to know the last). A frame that fails to read is raised after
    the frame before it is tracked and given out, so no good frame's output is lost.
    ``first_index`` > 0: ``frames`` start at that frame of a video whose target the tracker
    already follows (``resume``), so every one is tracked."""
    sync = synchroniser(getattr(tracker, "device", None))
    frames = iter(frames)
    image, index, failure = next(frames, None), first_index, None
    while image is not None:
        try:
            following = next(frames, None)
        except Exception as error:  # raised once this frame is out
            following, failure = None, error
        if index == 0:
            output, seconds = _timed(sync, lambda: tracker.initialize(image, region))
        else:
            start = time.perf_counter()
            output = tracker.track(image)
            if following is None:
                sync()
            seconds = time.perf_counter() - start
        yield Step(index, image, output, seconds)
        image, index = following, index + 1
    if failure is not None:
        raise failure


@dataclass
class _Slot:
    video: int
    frames: Iterator[np.ndarray]
    target: Any
    index: int = 0
    image: Optional[np.ndarray] = None   # the next frame, pulled but not yet tracked


def track_lockstep(tracker, videos: Iterable[tuple[Iterable[np.ndarray], Any]],
                   batch: int, groups: int = 1) -> Iterator[tuple[int, Step]]:
    """Track every (frames, region) of ``videos``, ``batch`` at a time, with
    ``tracker.start_all`` / ``tracker.step``; yields (video number, step) as frames finish.

    The steps of one video come in order; those of different videos interleave. Videos
    that end are replaced once ``REFILL_SHARE`` of their group's slots are free (or the
    group is empty), all in one ``start_all`` call, whose time is divided among them.

    With ``groups`` > 1 the batch is split into that many groups, stepped in turn with
    ``tracker.launch`` / ``tracker.finish``: a group is launched before the group ahead of
    it is finished, so that group's host work overlaps the device work of the one just
    launched. A step's seconds are then the wall time of the tracker's calls since the
    previous step finished: they still add up to the time spent tracking."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if not 1 <= groups <= batch:
        raise ValueError(f"groups must be between 1 and the batch ({batch}), got {groups}")
    launch, finish = _halves(tracker, groups)
    sync = synchroniser(getattr(tracker, "device", None))
    pending = enumerate(videos)
    sizes = [batch // groups + (g < batch % groups) for g in range(groups)]
    refill_at = [max(1, math.ceil(size * REFILL_SHARE)) for size in sizes]
    slots: list[list[_Slot]] = [[] for _ in range(groups)]
    launched: list[Optional[tuple[Any, list[_Slot]]]] = [None] * groups
    unattributed = 0.0  # seconds in tracker calls since the last finished step

    def timed(call: Callable[[], Any]) -> Any:
        nonlocal unattributed
        start = time.perf_counter()
        result = call()
        unattributed += time.perf_counter() - start
        return result

    g = 0
    while True:
        if launched[g] is not None:
            (handle, members), launched[g] = launched[g], None
            outputs = timed(lambda: finish(handle))
            if all(entry is None for entry in launched):
                timed(sync)  # nothing to overlap with: this step's device work ends here
            seconds, unattributed = unattributed, 0.0
            for slot, output in zip(members, outputs):
                slot.index += 1
                yield slot.video, Step(slot.index, slot.image, output, seconds / len(members))
                slot.image = None
        group = slots[g]
        arrivals = []  # (video, its frames, its first frame, its region)
        while sizes[g] - len(group) >= refill_at[g] and len(group) + len(arrivals) < sizes[g] \
                and (job := next(pending, None)) is not None:
            video, (frames, region) = job
            frames = iter(frames)
            first = next(frames, None)
            if first is not None:
                arrivals.append((video, frames, first, region))
        if arrivals:
            timed(sync)  # work of steps in flight is theirs, not these initialisations'
            started, seconds = _timed(sync, lambda: tracker.start_all([a[2] for a in arrivals],
                                                                      [a[3] for a in arrivals]))
            for (video, frames, first, _), (target, output) in zip(arrivals, started):
                group.append(_Slot(video, frames, target))
                yield video, Step(0, first, output, seconds / len(arrivals))
        for slot in group:
            if slot.image is None:
                slot.image = next(slot.frames, None)
        if any(slot.image is None for slot in group):
            slots[g] = [slot for slot in group if slot.image is not None]
            continue  # fill the freed slots first
        if group:
            handle = timed(lambda: launch([s.target for s in group], [s.image for s in group]))
            launched[g] = handle, list(group)
        elif not any(slots) and all(entry is None for entry in launched):
            return
        g = (g + 1) % groups


# A group refills its free slots once this share of them is free (at least one): on a GPU a
# target's start is launches and waits (0.2-0.3 s alone on an H100), which a start of many
# targets shares, while a step with a few slots empty costs little less than a full one.
# Half a group keeps steps at least half full and starts targets that many at a time; at
# a batch of 2 a free slot is refilled at once. (Chosen, not yet measured on a GPU.)
REFILL_SHARE = 0.5
# The smallest batch that two groups split by default beside a GPU: measured at 32 only.
AUTO_GROUPS_MIN_BATCH = 8


def lockstep_groups(setting: Optional[int], batch: int, tracker) -> int:
    """``--groups``: as set, or (None) two beside a GPU for a batch of at least
    ``AUTO_GROUPS_MIN_BATCH`` when the tracker can launch and finish apart, else one. On an
    H100 at batch 32 two groups gave 12-15% more frames/s than one and four fewer
    (docs/bench.md); on a CPU the host work and the device work share the same cores."""
    if setting is not None:
        return setting
    device = getattr(tracker, "device", None)
    apart = hasattr(tracker, "launch") and hasattr(tracker, "finish")
    on_gpu = device is not None and torch.device(device).type == "cuda"
    return 2 if apart and on_gpu and batch >= AUTO_GROUPS_MIN_BATCH else 1


def _halves(tracker, groups: int) -> tuple[Callable, Callable]:
    """The tracker's ``launch`` and ``finish``; for one group a tracker with only ``step``
    will do (it is launched and finished in one call)."""
    if hasattr(tracker, "launch") and hasattr(tracker, "finish"):
        return tracker.launch, tracker.finish
    if groups > 1:
        raise ValueError(f"{type(tracker).__name__} has no launch / finish to step groups in turn")
    return tracker.step, lambda outputs: outputs
