"""The initialise-then-track loops, timed: the one place adapters step a tracker through videos.

``track_frames`` initialises on the first frame and tracks the rest, yielding each
frame's output with the wall time of the tracker call alone: the next frame is pulled
from ``frames`` (decoded, read from disk) before the clock starts, and CUDA work is
synchronised before the clock stops.

``track_lockstep`` does the same for many videos at once: up to ``batch`` of them advance
together, one batched ``tracker.step`` per frame, and a video that ends hands its slot to
the next one. A frame's time there is the batched call's time divided among its videos.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

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


def track_frames(tracker, frames: Iterable[np.ndarray], region) -> Iterator[Step]:
    """``tracker.initialize(frame 0, region)``, then ``tracker.track`` on every later frame."""
    sync = synchroniser(getattr(tracker, "device", None))
    for index, image in enumerate(frames):
        output, seconds = _timed(sync, lambda: tracker.initialize(image, region) if index == 0
                                 else tracker.track(image))
        yield Step(index, image, output, seconds)


@dataclass
class _Slot:
    video: int
    frames: Iterator[np.ndarray]
    target: Any
    index: int = 0
    image: Optional[np.ndarray] = None   # the next frame, pulled but not yet tracked


def track_lockstep(tracker, videos: Iterable[tuple[Iterable[np.ndarray], Any]],
                   batch: int) -> Iterator[tuple[int, Step]]:
    """Track every (frames, region) of ``videos``, ``batch`` at a time, with
    ``tracker.start`` / ``tracker.step``; yields (video number, step) as frames finish.

    The steps of one video come in order; those of different videos interleave. A video
    that ends is replaced before the next batched step, so batches stay full."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    sync = synchroniser(getattr(tracker, "device", None))
    pending = enumerate(videos)
    slots: list[_Slot] = []
    while True:
        while len(slots) < batch and (job := next(pending, None)) is not None:
            video, (frames, region) = job
            frames = iter(frames)
            first = next(frames, None)
            if first is None:
                continue
            (target, output), seconds = _timed(sync, lambda: tracker.start(first, region))
            slots.append(_Slot(video, frames, target))
            yield video, Step(0, first, output, seconds)
        for slot in slots:
            if slot.image is None:
                slot.image = next(slot.frames, None)
        if any(slot.image is None for slot in slots):
            slots = [slot for slot in slots if slot.image is not None]
            continue  # fill the freed slots first
        if not slots:
            return
        outputs, seconds = _timed(sync, lambda: tracker.step([s.target for s in slots],
                                                             [s.image for s in slots]))
        for slot, output in zip(slots, outputs):
            slot.index += 1
            yield slot.video, Step(slot.index, slot.image, output, seconds / len(slots))
            slot.image = None
