"""``samn bench --profile N``: what a tracked frame asks of the machine (``torch.profiler``).

Stage times say where a frame's time goes, not why: on a GPU the question is whether the
device computes or waits for the host to launch work. This counts, per tracked frame,
kernel and graph launches, host-device copies and waits, the operators issued outside the
network passes (on any device; on a GPU nearly each is a launch), the device's busy time,
and lists the operators that take the host's and the device's time (the figures behind
docs/bench.md's "launches were the cost").
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from samn_tracker.devices import synchroniser
from samn_tracker.speed.batched import RecordedSteps, lockstep_videos
from samn_tracker.speed.runs import BenchSequence
from samn_tracker.speed.trackers import SamnBench
from samn_tracker.tracking_loop import track_lockstep

PASS = "samn network pass"
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cudaGraphLaunch")
TOP = 10


def profile_frames(tracker: SamnBench, seq: BenchSequence, frames: int, warmup: int) -> tuple[dict, str]:
    """Profile ``frames`` tracked frames of ``seq`` after ``warmup`` untimed ones (initialised
    on frame 0): the per-frame summary, and the operator tables as text."""
    count = min(frames, len(seq.frames) - 1 - warmup)
    if count < 1:
        raise ValueError(f"{seq.name}: {len(seq.frames)} frames leave none to profile after "
                         f"{warmup} warm-up frame(s)")
    tracker.initialize(seq.frames[0], seq.boxes[0])
    for image in seq.frames[1:warmup + 1]:
        tracker.track(image)
    sync = synchroniser(tracker.device)
    sync()
    start = time.perf_counter()
    with _profiler(tracker.device) as prof, _marked_passes(tracker.tracker):
        for image in seq.frames[warmup + 1:warmup + 1 + count]:
            tracker.track(image)
        sync()
    summary, tables = _summary(prof, count, time.perf_counter() - start)
    return {"sequence": seq.name, "frames": count, "warmup": warmup, **summary}, tables


def profile_lockstep(tracker, sequences: Sequence[BenchSequence], batch: int, groups: int,
                     steps: int, warmup: int) -> tuple[dict, str]:
    """``profile_frames`` for lockstep: ``batch`` videos (the sequences repeated) stepped in
    ``groups``, profiled from the ``warmup``-th step of the first video for ``steps`` more
    of its steps, per tracked frame (those the window's ``finish`` calls complete; with
    several groups the window's ends cut a group's step in two, so use a few steps)."""
    counted = RecordedSteps(tracker)
    videos = lockstep_videos(sequences, batch)
    sync = synchroniser(tracker.device)
    prof = _profiler(tracker.device)
    window = None
    with _marked_passes(tracker):
        for video, step in track_lockstep(counted, ((s.frames, s.boxes[0]) for s in videos), batch, groups):
            if video != 0 or step.index not in (warmup, warmup + steps):
                continue
            sync()
            if window is None:
                prof.start()
                window = (counted.finished, time.perf_counter())
            else:
                break
        if window is None:
            raise ValueError(f"{videos[0].name}: {len(videos[0].frames)} frames leave no step to "
                             f"profile after {warmup} warm-up step(s)")
        sync()
        prof.stop()
    frames = counted.finished - window[0]
    summary, tables = _summary(prof, frames, time.perf_counter() - window[1])
    return {"batch": batch, "groups": groups, "frames": frames, "warmup": warmup, **summary}, tables


def _profiler(device) -> profile:
    cuda = device.type == "cuda"
    return profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))


def _summary(prof: profile, count: int, seconds: float) -> tuple[dict, str]:
    """Per tracked frame: launches, operators outside the passes, copies, waits, device time,
    the top operators; and the profiler's tables."""
    operators = _operators_outside_passes(prof.events())
    events = prof.key_averages()
    device = _device_work(events)

    def per_frame(matching) -> dict[str, float]:
        return {e.key: e.count / count for e in events if matching(e.key)}

    def top(rows, field) -> list[list]:
        rows = sorted(rows, key=lambda e: getattr(e, field), reverse=True)[:TOP]
        return [[e.key, getattr(e, field) / 1e3 / count] for e in rows]

    summary = {
        "wall_ms_per_frame_profiled": 1e3 * seconds / count,  # the profiler adds its own cost
        "device_busy_ms_per_frame": sum(e.self_device_time_total for e in device) / 1e3 / count,
        "launches_per_frame": sum(e.count for e in events if e.key in LAUNCHES) / count,
        "operators_outside_passes_per_frame": operators / count,
        "copies_per_frame": per_frame(lambda key: key.startswith("Memcpy")),
        "waits_per_frame": per_frame(lambda key: "Synchronize" in key),
        "top_host_ms_per_frame": top([e for e in events if e.device_type == DeviceType.CPU], "self_cpu_time_total"),
        "top_device_ms_per_frame": top(device, "self_device_time_total"),
    }
    tables = events.table(sort_by="self_cpu_time_total", row_limit=30)
    if device:
        tables += "\n" + events.table(sort_by="self_cuda_time_total", row_limit=30)
    return summary, tables


@contextmanager
def _marked_passes(tracker) -> Iterator[None]:
    """Each network pass (``SAMNNetwork._run``) and front pass (``front_pass``: crops, query
    encoder and DCF scores, one graph on a GPU) of a ``SAMNTracker`` under a profiler range
    named ``PASS``, for the profiled frames only: outside them a pass pays nothing for it."""
    net, front = tracker.net, tracker._front
    run = net._run

    def marked(pass_fn):
        def call(*args, **kwargs):
            with record_function(PASS):
                return pass_fn(*args, **kwargs)
        return call

    net._run, tracker._front = marked(run), marked(front)
    try:
        yield
    finally:
        del net._run
        tracker._front = front


def _device_work(events) -> list:
    """The device rows of ``key_averages``: kernels, copies and operators, not the ``PASS``
    ranges, whose device time is that of the kernels inside them (counted once already)."""
    return [e for e in events if e.device_type == DeviceType.CUDA and e.key != PASS]


def _operators_outside_passes(events) -> int:
    """Top-level ATen operators issued outside the network passes: on a GPU those passes
    replay as CUDA graphs, and nearly every other operator is a kernel launch or a copy of
    its own, so this counts the per-frame work the host issues, on any device."""
    def counted(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name == PASS or parent.name.startswith("aten::"):
                return False
            parent = parent.cpu_parent
        return True

    return sum(1 for e in events if e.name.startswith("aten::") and counted(e))
