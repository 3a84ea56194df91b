"""``samn bench --profile N``: what a tracked frame asks of the machine (``torch.profiler``).

Stage times say where a frame's time goes, not why: on a GPU the question is whether the
device computes or waits for the host to launch work. This counts, per tracked frame,
kernel and graph launches, host-device copies and waits, the device's busy time, and
lists the operators that take the host's and the device's time (the figures behind
docs/bench.md's "launches were the cost").
"""
from __future__ import annotations

import time

from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from samn_tracker.devices import synchroniser
from samn_tracker.speed.runs import BenchSequence
from samn_tracker.speed.trackers import SamnBench

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
    cuda = tracker.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync = synchroniser(tracker.device)
    sync()
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for image in seq.frames[warmup + 1:warmup + 1 + count]:
            tracker.track(image)
        sync()
    seconds = time.perf_counter() - start
    events = prof.key_averages()
    device = [e for e in events if e.device_type == DeviceType.CUDA]

    def per_frame(matching) -> dict[str, float]:
        return {e.key: e.count / count for e in events if matching(e.key)}

    def top(rows, field) -> list[list]:
        rows = sorted(rows, key=lambda e: getattr(e, field), reverse=True)[:TOP]
        return [[e.key, getattr(e, field) / 1e3 / count] for e in rows]

    summary = {
        "sequence": seq.name, "frames": count, "warmup": warmup,
        "wall_ms_per_frame_profiled": 1e3 * seconds / count,  # the profiler adds its own cost
        "device_busy_ms_per_frame": sum(e.self_device_time_total for e in device) / 1e3 / count,
        "launches_per_frame": sum(e.count for e in events if e.key in LAUNCHES) / count,
        "copies_per_frame": per_frame(lambda key: key.startswith("Memcpy")),
        "waits_per_frame": per_frame(lambda key: "Synchronize" in key),
        "top_host_ms_per_frame": top([e for e in events if e.device_type == DeviceType.CPU], "self_cpu_time_total"),
        "top_device_ms_per_frame": top(device, "self_device_time_total"),
    }
    tables = events.table(sort_by="self_cpu_time_total", row_limit=30)
    if cuda:
        tables += "\n" + events.table(sort_by="self_cuda_time_total", row_limit=30)
    return summary, tables
