"""Benchmark sequences held in memory, and one timed pass of a tracker over them.

Frames are decoded once, before any clock starts, so every tracker is timed on the
same arrays and JPEG decoding is not charged to anyone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from samn_tracker.speed.probes import cuda_peak_mb, current_rss_mb, reset_cuda_peak
from samn_tracker.speed.trackers import BenchTracker
from samn_tracker.datasets.davis import box_groundtruth, boxes_file, davis_sequence
from samn_tracker.datasets.prefetch import pinned
from samn_tracker.errors import InputError
from samn_tracker.tracking_loop import track_frames


@dataclass
class BenchSequence:
    name: str
    frames: list[np.ndarray]
    boxes: np.ndarray                    # (N, 4) ground truth, zero rows where absent
    masks: Optional[list[np.ndarray]]    # bool HxW ground truth, None without annotations

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.frames[0].shape[:2]
        return w, h


def load_sequence(root: Path, name: str, max_frames: Optional[int] = None, pin: bool = False) -> BenchSequence:
    """A DAVIS sequence with ``boxes/<name>.txt`` as box ground truth (mask boxes without it).
    ``pin``: frames in page-locked memory, where ``samn eval``'s reader puts them for a GPU
    (an upload from pageable memory waits for the GPU's queue to drain)."""
    root = Path(root)
    if not (root / "JPEGImages").is_dir():
        raise InputError(f"{root} is not a DAVIS root (no JPEGImages/ folder)")
    seq = davis_sequence(root, name)
    count = len(seq) if max_frames is None else min(len(seq), max_frames)
    if count < 2:
        raise InputError(f"{name}: need at least 2 frames to track, got {count} (--max-frames)")
    frames = [pinned(seq.image(i)) if pin else seq.image(i) for i in range(count)]
    masks = None
    if seq.groundtruth is not None and all(m is not None for m in seq.groundtruth[:count]):
        masks = [np.asarray(m, dtype=bool) for m in seq.groundtruth[:count]]
    boxes = box_groundtruth(root, name, seq.frames[:count])[:count]
    if len(boxes) < count or boxes[0, 2] <= 0 or boxes[0, 3] <= 0:
        raise InputError(f"{boxes_file(root, name)}: {len(boxes)} boxes for {count} frames, or no "
                         "target on frame 0")
    return BenchSequence(name, frames, boxes.astype(np.float64), masks)


@dataclass
class TimedRun:
    """One timed pass of a tracker over a sequence: per-frame and per-stage times, outputs, memory."""

    name: str
    init_s: float
    frame_s: np.ndarray                              # per tracked frame 1..N-1
    stage_s: dict[str, np.ndarray]                   # per stage, per tracked frame
    boxes: np.ndarray                                # (N, 4) including frame 0
    masks: Optional[list[np.ndarray]]
    lost_frames: int
    rss_peak_mb: float
    cuda_peak_mb: float = 0.0
    host_s: dict[str, np.ndarray] = field(default_factory=dict)  # per host part, per tracked frame


def run_sequence(tracker: BenchTracker, seq: BenchSequence, keep_masks: bool = True,
                 progress: bool = True) -> TimedRun:
    """Initialise on frame 0 with the ground-truth box and track the rest, timing each call."""
    reset_cuda_peak(tracker.device)
    rss_peak = current_rss_mb()
    steps = track_frames(tracker, seq.frames, seq.boxes[0])
    first = next(steps)
    init_s, out = first.seconds, first.output
    boxes, masks = [out.box], [out.mask]
    frame_s = np.zeros(len(seq.frames) - 1)
    timers = []  # read after the pass: on a GPU, reading waits for the device
    lost = 0
    for step in tqdm(steps, total=len(frame_s), desc=f"{tracker.name} {seq.name}", leave=False,
                     disable=not progress or None):
        i, out = step.index - 1, step.output
        frame_s[i] = step.seconds
        timers.append(tracker.stage_timer())
        boxes.append(out.box)
        if keep_masks:
            masks.append(out.mask)
        lost += out.lost
        rss_peak = max(rss_peak, current_rss_mb())
    stage_s = {s: np.zeros(len(frame_s)) for s in tracker.stages}
    host_s = {p: np.zeros(len(frame_s)) for p in tracker.host_parts}
    for i, timer in enumerate(timers):
        times = timer()
        for name, seconds in (*stage_s.items(), *host_s.items()):
            seconds[i] = times.get(name, 0.0)
    has_masks = keep_masks and all(m is not None for m in masks)
    return TimedRun(seq.name, init_s, frame_s, stage_s, np.asarray(boxes, dtype=np.float64),
                       masks if has_masks else None, lost, rss_peak, cuda_peak_mb(tracker.device),
                       host_s=host_s)


def warm_up(tracker: BenchTracker, seq: BenchSequence, frames: int) -> None:
    """Run a few frames untimed: first calls pay for allocator growth, kernel selection
    (cuDNN / oneDNN) and lazy CUDA context set-up."""
    if frames <= 0:
        return
    short = BenchSequence(seq.name, seq.frames[:frames + 1], seq.boxes[:frames + 1], None)
    run_sequence(tracker, short, keep_masks=False, progress=False)


def speed_summary(runs: Sequence[Sequence[TimedRun]], stages: Sequence[str]) -> dict:
    """Speed of repeated passes (``runs[rep][seq]``): fps per pass and its spread, per-frame
    time statistics pooled over passes, and the mean time per stage."""
    per_pass = [sum(len(r.frame_s) for r in rep) / max(sum(float(r.frame_s.sum()) for r in rep), 1e-12)
                for rep in runs]
    frames = np.concatenate([r.frame_s for rep in runs for r in rep])
    stage_ms = {s: 1e3 * float(np.concatenate([r.stage_s[s] for rep in runs for r in rep]).mean())
                for s in stages}
    host_ms = {p: 1e3 * float(np.concatenate([r.host_s[p] for rep in runs for r in rep]).mean())
               for p in runs[0][0].host_s}
    mean_ms = 1e3 * float(frames.mean())
    summary = {
        "fps": float(np.median(per_pass)), "fps_min": float(min(per_pass)),
        "fps_max": float(max(per_pass)), "fps_per_pass": [float(v) for v in per_pass],
        "frames_per_pass": int(sum(len(r.frame_s) for r in runs[0])),
        "ms_per_frame": {"mean": mean_ms, "median": 1e3 * float(np.median(frames)),
                         "p90": 1e3 * float(np.percentile(frames, 90)),
                         "min": 1e3 * float(frames.min()), "max": 1e3 * float(frames.max())},
        "init_ms": 1e3 * float(np.mean([r.init_s for rep in runs for r in rep])),
        "stages_ms": stage_ms,
        "host_ms": host_ms,
        "rss_peak_mb": max(r.rss_peak_mb for rep in runs for r in rep),
        "cuda_peak_mb": max(r.cuda_peak_mb for rep in runs for r in rep),
        "lost_frames": int(sum(r.lost_frames for r in runs[0])),
    }
    if stages:
        summary["stages_ms"]["other"] = mean_ms - sum(stage_ms.values())
    return summary
