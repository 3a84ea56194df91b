"""The trackers the benchmark compares, behind one small interface.

SAMN is built through the front door (``samn_tracker.build_tracker``) and reports its
own per-stage times (``SAMNTracker.clock``, read after the pass so that reading them does
not stop the device between frames); OpenCV's trackers are timed as a whole.
Every tracker gets RGB frames and a box on frame 0, as a user would give it, and answers
a box (and a mask when it segments).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import cv2
import numpy as np
import torch

from samn_tracker.build import Overrides, build_tracker
from samn_tracker.errors import InputError
from samn_tracker.opencv_contrib import CONTRIB_FIX, contrib_factory, missing_contrib
from samn_tracker.tracker import HOST_PARTS, STAGES
from samn_tracker.weights import sha256_file

SAMN_PRESETS = {"samn_lite": "lite", "samn_paper": "paper"}
OPENCV_TRACKERS = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}
TRACKER_NAMES = tuple(SAMN_PRESETS) + tuple(OPENCV_TRACKERS)


@dataclass
class Output:
    box: np.ndarray               # (4,) x, y, w, h
    mask: Optional[np.ndarray]    # bool HxW, None for box trackers
    lost: bool = False            # no estimate of its own: OpenCV reported failure, or
                                  # SAMN's mask check refused the mask (the DCF moved the box)


class BenchTracker(Protocol):
    name: str
    device: torch.device
    stages: tuple[str, ...]       # names of the stage times (empty: not split)
    host_parts: tuple[str, ...]   # names of the host wall times of a call (empty: not split)
    details: dict                 # config, weights, ... for the JSON

    def initialize(self, image: np.ndarray, box: np.ndarray) -> Output: ...
    def track(self, image: np.ndarray) -> Output: ...

    def stage_timer(self) -> Callable[[], dict[str, float]]:
        """The last call's seconds per stage and per host part, given when called: later,
        so that on a GPU reading them does not wait for the device between calls."""


class SamnBench:
    def __init__(self, name: str, weights: Optional[str | Path], overrides: Overrides, device: str,
                 precision: str = "fp32"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.tracker = build_tracker(SAMN_PRESETS[name], weights, overrides, device, precision)
        self.name = name
        self.device = self.tracker.device
        self.stages, self.host_parts = STAGES, HOST_PARTS
        cfg = self.tracker.cfg
        self.details = {"preset": cfg.name, "crop_size": cfg.crop_size, "backbone": cfg.model.backbone,
                        "precision": precision, "device": str(self.device),
                        "memory_max_entries": cfg.memory.max_entries,
                        "weights": None if self.tracker.weights is None else str(self.tracker.weights),
                        "weights_sha256": None if self.tracker.weights is None else sha256_file(self.tracker.weights),
                        "trained": self.tracker.weights is not None,
                        "warnings": [str(w.message) for w in caught]}

    def initialize(self, image: np.ndarray, box: np.ndarray) -> Output:
        pred = self.tracker.initialize(image, box)
        return Output(pred.box, pred.mask)

    def track(self, image: np.ndarray) -> Output:
        pred = self.tracker.track(image)
        return Output(pred.box, pred.mask, lost=not pred.from_mask)

    def stage_timer(self) -> Callable[[], dict[str, float]]:
        clock = self.tracker.clock
        return lambda: {**clock.times(), **clock.host_times()}

    @property
    def memory_entries(self) -> int:
        return self.tracker.memory_entries


class OpenCVBench:
    """CSRT / KCF from opencv-contrib. A frame it reports as lost keeps the previous box."""

    def __init__(self, name: str):
        create: Optional[Callable] = contrib_factory(name)
        if create is None:
            raise InputError(f"{missing_contrib(name)}; fix: {CONTRIB_FIX}")
        self._create = create
        self._tracker = None
        self._box = np.zeros(4)
        self.name = name
        self.device = torch.device("cpu")
        self.stages: tuple[str, ...] = ()
        self.host_parts: tuple[str, ...] = ()
        self.details = {"opencv": cv2.__version__}

    def initialize(self, image: np.ndarray, box: np.ndarray) -> Output:
        self._tracker = self._create()  # a fresh tracker per sequence, as OpenCV expects
        x, y, w, h = (int(round(v)) for v in box)
        self._tracker.init(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), (x, y, max(w, 1), max(h, 1)))
        self._box = np.array([x, y, max(w, 1), max(h, 1)], dtype=np.float64)
        return Output(self._box.copy(), None)

    def track(self, image: np.ndarray) -> Output:
        ok, rect = self._tracker.update(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if ok:
            self._box = np.asarray(rect, dtype=np.float64)
        return Output(self._box.copy(), None, lost=not ok)

    def stage_timer(self) -> Callable[[], dict[str, float]]:
        return dict  # not split into stages


def bench_tracker(name: str, device: str = "auto", weights: Optional[str] = None,
                  overrides: Overrides = (), precision: str = "fp32") -> BenchTracker:
    """``samn_lite`` / ``samn_paper`` (with ``overrides``: ``KEY=VALUE`` strings or dotted
    keys) / ``csrt`` / ``kcf``."""
    if name in SAMN_PRESETS:
        return SamnBench(name, weights, overrides, device, precision)
    if name in OPENCV_TRACKERS:
        return OpenCVBench(name)
    raise InputError(f"unknown tracker {name!r}; choose from {', '.join(TRACKER_NAMES)}")
