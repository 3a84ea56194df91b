"""``samn bench --batch N``: aggregate throughput of N targets tracked in lockstep.

The measured sequences are repeated in turn until there are N videos, so that a batch
of 32 can be filled from the four eval sequences; frames are decoded before the clock
starts. Throughput counts tracked frames over the time spent in batched steps (like the
one-at-a-time fps, initialisations are not in it); the whole run's rate is reported too.
Where the passes are CUDA graphs, a first untimed pass makes them (``batched_throughput``).
Accuracy comes from each sequence's first copy and is set next to the
one-at-a-time pass of the same run: batching must not change it beyond float rounding.
Every copy's mean box IoU is kept too: copies differ only in their place in the batch, so
a spread among them is the batch's rounding (or a defect), not the sequence.
Stage times (``SAMNTracker.clock`` of every batched step, read after the pass) are given per tracked frame,
so the share of the per-target host work (``postprocess``) can be read next to the network's.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from samn_tracker.devices import synchroniser
from samn_tracker.speed.accuracy import accuracy, box_ious
from samn_tracker.speed.runs import BenchSequence, TimedRun
from samn_tracker.tracker import HOST_PARTS, STAGES
from samn_tracker.tracking_loop import track_lockstep

COMPARED = ("ao", "sr50", "mean_iou", "success_auc", "jf")


class RecordedSteps:
    """The tracker, recording the batched steps it finishes (initialisations not): their
    stage clocks and how many targets they moved. The clocks are read after the run:
    reading a CUDA clock waits for its step's device work, which between steps would stop
    the groups of ``--groups`` from overlapping."""

    def __init__(self, tracker):
        self.tracker, self.device = tracker, tracker.device
        self.clocks = []
        self.finished = 0  # targets moved a frame on

    def start_all(self, images, regions):
        return self.tracker.start_all(images, regions)

    def launch(self, targets, images):
        return self.tracker.launch(targets, images)

    def finish(self, launched):
        self.clocks.append(launched.clock)
        self.finished += len(launched.targets)
        return self.tracker.finish(launched)

    def seconds(self) -> dict[str, float]:
        """Seconds per stage and per host part over the recorded steps."""
        totals = dict.fromkeys(STAGES + HOST_PARTS, 0.0)
        for clock in self.clocks:
            for name, seconds in (*clock.times().items(), *clock.host_times().items()):
                totals[name] += seconds
        return totals


def lockstep_videos(sequences: Sequence[BenchSequence], batch: int) -> list[BenchSequence]:
    """The sequences repeated in turn to fill a batch (at least each of them once)."""
    return [sequences[i % len(sequences)] for i in range(max(batch, len(sequences)))]


def batched_throughput(tracker, sequences: Sequence[BenchSequence], batch: int, alone: dict,
                       progress: bool = True, groups: int = 1, warm: Optional[bool] = None) -> dict:
    """Track ``max(batch, len(sequences))`` videos ``batch`` at a time with a SAMN tracker
    (``start`` / ``launch`` / ``finish``), in ``groups`` that overlap (``track_lockstep``);
    ``alone`` is the one-at-a-time accuracy of the same sequences.

    ``warm`` (by default where the tracker makes CUDA graphs): an untimed pass first. A
    lockstep batch shrinks as its videos end, and each padded batch size a pass meets
    makes its graph on first use (cuDNN's setup and the capture, some 0.1 s each): once
    per run, which over a benchmark of hundreds of videos is nothing, but over these few
    would be a large share of the time. That pass's rate is reported beside the timed one."""
    videos = lockstep_videos(sequences, batch)
    first = _lockstep_pass(tracker, sequences, videos, batch, groups, progress) \
        if (tracker.cuda_graphs if warm is None else warm) else None
    timed = _lockstep_pass(tracker, sequences, videos, batch, groups, progress)
    together = timed["accuracy"]
    tracked = timed["tracked"]
    return {"batch": batch, "groups": groups, "videos": len(videos), "tracked_frames": tracked,
            "frames_per_s": tracked / timed["step_seconds"], "seconds_with_init": timed["seconds"],
            "frames_per_s_with_init": timed["frames"] / timed["seconds"],
            "frames_per_s_first_pass": None if first is None else tracked / first["step_seconds"],
            "stages_ms_per_frame": {name: 1e3 * timed["clock_seconds"][name] / tracked for name in STAGES},
            "host_ms_per_frame": {name: 1e3 * timed["clock_seconds"][name] / tracked for name in HOST_PARTS},
            "accuracy": {k: together[k] for k in COMPARED}, "sequences": together["sequences"],
            "change_from_one_at_a_time": {k: None if together[k] is None or alone[k] is None
                                          else together[k] - alone[k] for k in COMPARED}}


def _lockstep_pass(tracker, sequences: Sequence[BenchSequence], videos: Sequence[BenchSequence],
                   batch: int, groups: int, progress: bool) -> dict:
    """One lockstep pass over ``videos``: its times, stage times and accuracy."""
    # Box and mask of each sequence's first copy, all that accuracy needs: a prediction holds
    # a full-frame mask (and, with ``probability_maps``, its probability), and keeping every
    # one (a batch of 32 at 480p: some 1 GB, 3 GB with probabilities) would time the host's
    # memory growth, not the tracker.
    outputs: list[list] = [[] for _ in sequences]
    boxes: list[list] = [[] for _ in videos]
    lost = [0] * len(sequences)
    frames = sum(len(s.frames) for s in videos)
    step_seconds = 0.0
    sync = synchroniser(tracker.device)
    recorded = RecordedSteps(tracker)
    sync()
    start = time.perf_counter()
    with tqdm(total=frames, desc=f"batch {batch}", leave=False, disable=not progress or None) as bar:
        for video, step in track_lockstep(recorded, ((s.frames, s.boxes[0]) for s in videos), batch, groups):
            boxes[video].append(step.output.box)
            if video < len(sequences):
                outputs[video].append((step.output.box, step.output.mask))
                lost[video] += int(step.index > 0 and not step.output.from_mask)
            step_seconds += step.seconds if step.index else 0.0
            bar.update(1)
    sync()
    seconds = time.perf_counter() - start
    runs = [TimedRun(s.name, 0.0, np.zeros(len(s.frames) - 1), {}, np.array([box for box, _ in out]),
                     [mask for _, mask in out], n_lost, 0.0) for s, out, n_lost in zip(sequences, outputs, lost)]
    together = accuracy(runs, sequences)
    for seq, video_boxes in zip(videos, boxes):
        copy_iou = float(box_ious(np.array(video_boxes), seq).mean())
        together["sequences"][seq.name].setdefault("copies_mean_iou", []).append(copy_iou)
    tracked = frames - len(videos)
    return {"tracked": tracked, "frames": frames, "step_seconds": step_seconds, "seconds": seconds,
            "clock_seconds": recorded.seconds(), "accuracy": together}
