"""Per-stage times of one tracker call, without making the device wait.

On a CPU a stage is timed with the wall clock. On CUDA it is bracketed by two events on
the current stream and the elapsed times are read only when asked for (after the call),
so timing adds no synchronisation inside the step: the GPU-resident step stays resident.
Host parts are timed with the wall clock on any device: on a GPU they say where the host
spends a step (issuing work, waiting for the read-back, its own work), which the device's
stage times cannot.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch


class StageClock:
    def __init__(self, device: torch.device, stages: Sequence[str], host_parts: Sequence[str] = ()):
        self.stages = tuple(stages)
        # the stream looked up once: ``Event.record()`` without one looks it up per call,
        # which cost more host time than the record itself (a GPU step records 19 events)
        self._stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
        self._seconds: dict[str, float] = dict.fromkeys(self.stages, 0.0)
        self._host: dict[str, float] = dict.fromkeys(host_parts, 0.0)
        self._events: list[tuple[str, object, object]] = []

    def host(self, part: str):
        """Wall time of a host part of the call (see the module)."""
        return _wall_clock(self._host, part)

    def host_times(self) -> dict[str, float]:
        """Seconds per host part."""
        return dict(self._host)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._stream is None:
            with _wall_clock(self._seconds, name):
                yield
            return
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(self._stream)
        try:
            yield
        finally:
            end.record(self._stream)
            self._events.append((name, start, end))

    def times(self) -> dict[str, float]:
        """Seconds per stage since ``reset`` (waits for the last recorded CUDA event)."""
        if self._events:
            self._events[-1][2].synchronize()
            for name, start, end in self._events:
                self._seconds[name] += start.elapsed_time(end) / 1000.0
            self._events = []
        return dict(self._seconds)


@contextmanager
def _wall_clock(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Adds the wall time of the ``with`` block to ``seconds[name]``."""
    begin = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] += time.perf_counter() - begin
