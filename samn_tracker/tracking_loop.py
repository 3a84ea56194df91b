"""The initialise-then-track loop, timed: the one place adapters step a tracker through a video.

``track_frames`` initialises on the first frame and tracks the rest, yielding each
frame's output with the wall time of the tracker call alone: the next frame is pulled
from ``frames`` (decoded, read from disk) before the clock starts, and CUDA work is
synchronised before the clock stops.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from samn_tracker.devices import synchroniser


@dataclass
class Step:
    index: int          # 0: the initialisation frame
    image: np.ndarray
    output: Any         # what ``initialize`` / ``track`` returned
    seconds: float      # wall time of that call


def track_frames(tracker, frames: Iterable[np.ndarray], region) -> Iterator[Step]:
    """``tracker.initialize(frame 0, region)``, then ``tracker.track`` on every later frame."""
    sync = synchroniser(getattr(tracker, "device", None))
    for index, image in enumerate(frames):
        sync()
        start = time.perf_counter()
        output = tracker.initialize(image, region) if index == 0 else tracker.track(image)
        sync()
        yield Step(index, image, output, time.perf_counter() - start)
