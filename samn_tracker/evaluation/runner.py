"""One runner for every benchmark: shards, skips finished sequences, times every tracker call.

A benchmark supplies its sequences (frames + initial regions) and a writer that knows
its file layout. ``run_sequences`` takes this process's share of the sequences (``torchrun``
sets RANK / WORLD_SIZE / LOCAL_RANK; each rank takes ``sequences[rank::world]`` on
``cuda:LOCAL_RANK``), skips those whose results already exist, tracks the rest and hands
each finished sequence to the writer, which writes it atomically. Ctrl-C therefore loses
at most the sequences in progress, and re-running the same command resumes.

With ``batch`` > 1 a rank tracks that many targets in lockstep (``track_lockstep``): one
batched network pass per frame for all of them, each with its own memories, results
equal to one-at-a-time runs up to float rounding.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import numpy as np
import torch
from tqdm import tqdm

from samn_tracker import atomic
from samn_tracker.build import Overrides, build_tracker, tracker_config
from samn_tracker.datasets import read_frames
from samn_tracker.datasets.groundtruth import initial_box, read_text
from samn_tracker.datasets.prefetch import prefetched
from samn_tracker.devices import Rank
from samn_tracker.tracking_loop import lockstep_groups, track_frames, track_lockstep


class Tracker(Protocol):
    def initialize(self, image: np.ndarray, region) -> Any: ...
    def track(self, image: np.ndarray) -> Any: ...


TrackerFactory = Callable[[str], Tracker]
"""Builds a tracker on a device ("cpu", "cuda:0", ...); called once per process."""


@dataclass
class BenchmarkSequence:
    """Frames and the initial region of every target on frame 0 (one for box benchmarks)."""

    name: str
    frames: list[Path]
    targets: list[np.ndarray]          # box (4,) or bool mask HxW per target
    target_ids: list[int] = field(default_factory=lambda: [1])

    @classmethod
    def from_box_file(cls, name: str, frames: list[Path], box_file: Path) -> "BenchmarkSequence":
        """A box benchmark's sequence: line 1 of ``box_file`` checked now as a start
        (``initial_box``), so that a bad sequence stops the run before any is tracked."""
        return cls(name=name, frames=frames, targets=[initial_box(box_file, frames[0])])


@dataclass
class TargetRun:
    outputs: list[Any]                 # writer.keep(prediction) per frame; frame 0 from initialize()
    times: np.ndarray                  # seconds of each tracker call


@dataclass
class SequenceRun:
    sequence: BenchmarkSequence
    targets: list[TargetRun]

    @property
    def fps(self) -> float:
        """Tracker calls per second over all targets (image decoding not counted)."""
        seconds = sum(float(t.times.sum()) for t in self.targets)
        calls = sum(len(t.times) for t in self.targets)
        return calls / seconds if seconds > 0 else float("inf")


class ResultWriter(Protocol):
    def is_done(self, sequence: BenchmarkSequence) -> bool: ...
    def scorable(self, sequence: BenchmarkSequence) -> bool: ...
    def keep(self, prediction: Any) -> Any: ...
    def write(self, run: SequenceRun) -> None: ...


def samn_factory(preset: str = "lite", weights: Optional[str] = None, overrides: Overrides = (),
                 seed: int = 0, precision: str = "fp32") -> TrackerFactory:
    """Factory of the SAMN tracker (through the front door): the network is built once per
    process and re-initialised per sequence. The settings are checked now, before any
    sequence is read."""
    config = tracker_config(preset, overrides)
    return lambda device: build_tracker(config, weights, device=device, precision=precision, seed=seed)


def read_ahead(tracker, sequence: BenchmarkSequence):
    """The sequence's frames, read by a background thread (into pinned memory for a GPU)."""
    device = getattr(tracker, "device", None)
    return prefetched(read_frames(sequence.frames),
                      pin=device is not None and torch.device(device).type == "cuda")


def track_sequence(tracker: Tracker, sequence: BenchmarkSequence, keep: Callable[[Any], Any],
                   on_frame: Callable[[], None] = lambda: None) -> SequenceRun:
    """Track every target of ``sequence`` from frame 0 to the end, one target after another."""
    targets = []
    for region in sequence.targets:
        outputs, times = [], np.zeros(len(sequence.frames))
        for step in track_frames(tracker, read_ahead(tracker, sequence), region):
            times[step.index] = step.seconds
            outputs.append(keep(step.output))
            on_frame()
        targets.append(TargetRun(outputs=outputs, times=times))
    return SequenceRun(sequence=sequence, targets=targets)


def track_batched(tracker, sequences: Sequence[BenchmarkSequence], keep: Callable[[Any], Any],
                  batch: int, on_frame: Callable[[], None] = lambda: None,
                  groups: int = 1) -> Iterator[SequenceRun]:
    """Track every target of ``sequences``, ``batch`` targets in lockstep, in ``groups``
    (``track_lockstep``; the tracker needs ``start_all`` / ``step``, or ``launch`` / ``finish``
    for several groups); yields each sequence as soon as all its targets are done."""
    jobs = [(sequence, region) for sequence in sequences for region in sequence.targets]
    runs = [TargetRun(outputs=[], times=np.zeros(len(sequence.frames))) for sequence, _ in jobs]
    left = {id(sequence): len(sequence.targets) for sequence in sequences}
    videos = ((read_ahead(tracker, sequence), region) for sequence, region in jobs)
    for video, step in track_lockstep(tracker, videos, batch, groups):
        sequence, run = jobs[video][0], runs[video]
        run.times[step.index] = step.seconds
        run.outputs.append(keep(step.output))
        on_frame()
        if step.index == len(sequence.frames) - 1:
            left[id(sequence)] -= 1
            if not left[id(sequence)]:
                yield SequenceRun(sequence, [r for (s, _), r in zip(jobs, runs) if s is sequence])


def run_sequences(sequences: Sequence[BenchmarkSequence], tracker_factory: TrackerFactory,
                  writer: ResultWriter, shard: Optional[Rank] = None, device: str = "auto",
                  progress: bool = True, batch: int = 1, groups: Optional[int] = 1) -> dict[str, float]:
    """Track this shard's unfinished sequences (``batch`` targets at a time, in ``groups``);
    returns the fps of each sequence tracked now."""
    shard = shard or Rank.from_env()
    mine = shard.take(sequences)
    todo = [s for s in mine if not writer.is_done(s)]
    prefix = f"[rank {shard.rank}/{shard.world}] " if shard.world > 1 else ""
    if len(todo) < len(mine):
        print(f"{prefix}{len(mine) - len(todo)} of {len(mine)} sequences already done, skipping them",
              file=sys.stderr)
    fps: dict[str, float] = {}
    if not todo:
        return fps
    tracker = tracker_factory(str(shard.device(device)))
    groups = lockstep_groups(groups, batch, tracker)
    total = sum(len(s.frames) * len(s.targets) for s in todo)
    with tqdm(total=total, unit="frame", desc=f"{prefix}tracking", disable=not progress,
              dynamic_ncols=True) as bar:
        def one_at_a_time() -> Iterator[SequenceRun]:
            for sequence in todo:
                bar.set_postfix_str(sequence.name)
                yield track_sequence(tracker, sequence, writer.keep, on_frame=lambda: bar.update(1))

        runs = one_at_a_time() if batch == 1 else track_batched(
            tracker, todo, writer.keep, batch, on_frame=lambda: bar.update(1), groups=groups)
        started = time.perf_counter()
        for run in runs:
            writer.write(run)
            fps[run.sequence.name] = run.fps
            bar.write(f"{prefix}{run.sequence.name}: {run.fps:.1f} fps")
    if batch > 1:
        frames = sum(len(s.frames) * len(s.targets) for s in todo)
        in_groups = f" in {groups} groups" if groups > 1 else ""
        print(f"{prefix}batch {batch}{in_groups}: {frames / (time.perf_counter() - started):.1f} frames/s "
              "in all (reading frames included)", file=sys.stderr)
    return fps


def wait_for_all(sequences: Sequence[BenchmarkSequence], writer: ResultWriter,
                 poll_seconds: float = 5.0) -> None:
    """Block until every sequence has results (rank 0 waiting for the other ranks' shares)."""
    missing = [s for s in sequences if not writer.is_done(s)]
    if missing:
        print(f"waiting for {len(missing)} sequences from the other ranks", file=sys.stderr)
    while missing:
        time.sleep(poll_seconds)
        missing = [s for s in missing if not writer.is_done(s)]


class BoxWriter:
    """Per-sequence ``x,y,w,h`` rows (``%.3f``, row 0 = the given box) and per-frame
    seconds (``%.8f``). The box file is written last, so it marks a finished sequence;
    subclasses say where the two files go."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def result_file(self, name: str) -> Path:
        raise NotImplementedError

    def time_file(self, name: str) -> Path:
        raise NotImplementedError

    def is_done(self, sequence: BenchmarkSequence) -> bool:
        """Its box file holds a row for every frame: one cut short (a copy, a disk) is not
        packed into a submission or skipped by a resume, but tracked again."""
        path = self.result_file(sequence.name)
        if not path.is_file():
            return False
        return sum(1 for row in read_text(path).splitlines() if row.strip()) == len(sequence.frames)

    def scorable(self, sequence: BenchmarkSequence) -> bool:
        """What ``--score-only`` takes: a finished file (the servers' zips want every row)."""
        return self.is_done(sequence)

    def keep(self, prediction: Any) -> np.ndarray:
        return np.array(prediction.box, dtype=np.float64)

    def write(self, run: SequenceRun) -> None:
        (target,) = run.targets
        boxes = np.stack(target.outputs)
        boxes[0] = run.sequence.targets[0]
        name = run.sequence.name
        atomic.write_text(self.time_file(name), "".join(f"{t:.8f}\n" for t in target.times))
        atomic.write_text(self.result_file(name), "".join(
            ",".join(f"{v:.3f}" for v in box) + "\n" for box in boxes))


class OnePassWriter(BoxWriter):
    """``<seq>.txt`` and ``times/<seq>.txt`` in one folder, the layout of the OTB and LaSOT
    toolkits' result files and of pysot's results."""

    def result_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.txt"

    def time_file(self, name: str) -> Path:
        return self.run_dir / "times" / f"{name}.txt"

    def scorable(self, sequence: BenchmarkSequence) -> bool:
        """A result file, of any length: the toolkits' scoring cuts a longer one and names a
        short one, as they read published trackers' results."""
        return self.result_file(sequence.name).is_file()

    def time_files(self, names: Sequence[str]) -> list[Path]:
        """Each sequence's seconds per frame: ours, or got10k's ``times/<seq>_time.txt``."""
        ours = [self.time_file(name) for name in names]
        return [path if path.is_file() else path.with_name(f"{path.stem}_time.txt") for path in ours]
