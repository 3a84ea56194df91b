"""Long-video mode: a real sequence played forth and back to N frames, once with the
appearance memory capped and once without, recording per-frame time and memory.

Without a cap the memory gains an entry every ``memory.interval`` frames and the read
(attention over all stored positions) grows linearly; with the cap it stays bounded,
so the per-frame time late in the video should match the time early on. The median
over a window around frame ~100 and over a window near the end makes that claim checkable
from the JSON despite frame-to-frame noise. The late window starts a whole number of loops
after the early one, so both show the same source frames in the same order: what a frame
costs depends on its content (a frame whose mask is not trusted skips the memory write),
and unaligned windows would compare different content, not different video lengths.
Per-stage medians and the window means (which include the DCF's refit every
``dcf.update_interval`` frames, a cost that grows with its sample memory) say where any
difference comes from.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from tqdm import tqdm

from samn_tracker.speed.probes import cuda_allocated_mb, current_rss_mb
from samn_tracker.speed.runs import BenchSequence
from samn_tracker.speed.trackers import SamnBench
from samn_tracker.evaluation.box_measures import box_iou
from samn_tracker.tracking_loop import track_frames

EARLY_FRAME = 100
TOLERANCE = 0.10


def ping_pong(source_length: int, length: int) -> np.ndarray:
    """Frame indices 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... of length ``length``."""
    period = loop_period(source_length)
    if period == 0:
        return np.zeros(length, dtype=np.int64)
    phase = np.arange(length) % period
    return np.where(phase < source_length, phase, period - phase)


def windows(length: int, period: int = 0) -> dict[str, list[int]]:
    """[start, end) frame ranges: around frame ~100 (earlier for short runs) and near the end,
    in the same phase of a loop of ``period`` frames (0: the last frames)."""
    width = max(3, min(50, length // 6))
    centre = min(EARLY_FRAME, length // 3)
    start = max(1, centre - width // 2)
    late = length - width
    if period > 0 and (late - start) // period * period >= width:
        late = start + (late - start) // period * period
    return {"early": [start, start + width], "late": [late, late + width]}


def loop_period(source_length: int) -> int:
    """Frames after which ``ping_pong`` repeats itself (0: a one-frame source never changes)."""
    return 2 * (source_length - 1) if source_length > 1 else 0


def run_long(tracker: SamnBench, seq: BenchSequence, length: int, progress: bool = True) -> dict:
    """Per-frame records of one tracker over the looped sequence (frame 0 initialises)."""
    order = ping_pong(len(seq.frames), length)
    bounds = seq.size
    steps = track_frames(tracker, (seq.frames[i] for i in order), seq.boxes[0])
    next(steps)  # frame 0 initialises
    frame_ms, rss, cuda, entries, ious = [], [], [], [], []
    timers = []  # read after the run: on a GPU, reading waits for the device
    for step in tqdm(steps, total=length - 1, desc=f"{tracker.name} long", disable=not progress or None):
        index, out = order[step.index], step.output
        frame_ms.append(1e3 * step.seconds)
        timers.append(tracker.stage_timer())
        rss.append(current_rss_mb())
        cuda.append(cuda_allocated_mb(tracker.device))
        entries.append(tracker.memory_entries)
        gt = seq.boxes[index]
        ious.append(float(box_iou(out.box, gt, bounds)[0]) if gt[2] * gt[3] > 0 else float("nan"))
    read = [timer() for timer in timers]
    stages = {name: [1e3 * times.get(name, 0.0) for times in read] for name in tracker.stages}
    return {"frame_ms": frame_ms, "rss_mb": rss, "cuda_mb": cuda, "memory_entries": entries, "iou": ious,
            "stage_ms": stages}


def summarise(records: dict, spans: dict[str, list[int]]) -> dict:
    def window(values: list[float], name: str, reduce=np.median) -> float:
        start, end = spans[name]
        return float(reduce(values[start - 1:end - 1]))  # records start at frame 1

    times = records["frame_ms"]
    early, late = window(times, "early"), window(times, "late")
    early_mean, late_mean = window(times, "early", np.mean), window(times, "late", np.mean)
    iou = np.asarray(records["iou"])
    return {"early": {"frames": spans["early"], "median_ms": early, "mean_ms": early_mean},
            "late": {"frames": spans["late"], "median_ms": late, "mean_ms": late_mean},
            "late_over_early": late / early,
            "late_over_early_mean": late_mean / early_mean,
            "stage_ms": {name: {"early_median": window(values, "early"), "late_median": window(values, "late"),
                                "early_mean": window(values, "early", np.mean),
                                "late_mean": window(values, "late", np.mean)}
                         for name, values in records["stage_ms"].items()},
            "rss_mb": {"early": window(records["rss_mb"], "early"), "late": window(records["rss_mb"], "late"),
                       "max": float(max(records["rss_mb"]))},
            "cuda_mb_max": float(max(records["cuda_mb"])),
            "memory_entries_last": int(records["memory_entries"][-1]),
            "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else None}


def long_benchmark(make_tracker: Callable[[int | None], SamnBench], seq: BenchSequence, length: int,
                   cap: int, progress: bool = True) -> dict:
    """Capped run first, so the uncapped run's allocator high-water mark does not hide its RSS."""
    period = loop_period(len(seq.frames))
    spans = windows(length, period)
    runs = {}
    for name, max_entries in (("cap", cap), ("no_cap", None)):
        tracker = make_tracker(max_entries)
        records = run_long(tracker, seq, length, progress)
        runs[name] = {"memory_max_entries": max_entries, **summarise(records, spans),
                      "details": tracker.details, "per_frame": records}
        del tracker
    return {"windows": spans, "loop_period": period, "runs": runs, "claim": judged_claim(runs, spans, cap)}


def judged_claim(runs: dict, spans: dict[str, list[int]], cap: int) -> dict:
    """The flat-time claim on the capped run; ``holds`` None, with ``why``, where the cap
    never evicted an entry (the uncapped memory never held more): both runs are then the
    same run, and the claim would judge the video's content, not the cap."""
    ratio = runs["cap"]["late_over_early"]
    claim = {"text": f"with the cap, per-frame time at frame ~{spans['late'][1]} is within "
                     f"{TOLERANCE:.0%} of frame ~{sum(spans['early']) // 2}", "ratio": ratio}
    most = [max(runs[name]["per_frame"]["memory_entries"]) for name in ("cap", "no_cap")]
    if most[1] <= most[0]:
        return {**claim, "holds": None,
                "why": f"the cap ({cap} sampled entries) was never reached (the uncapped memory held at "
                       f"most {most[1]} entries, first and last frame included); use a longer --long "
                       "or a smaller --cap"}
    return {**claim, "holds": bool(ratio <= 1 + TOLERANCE)}

