"""Reset-based and anchor-based VOT experiments that run TraX trackers with vot-toolkit 0.9,
and an unsupervised one whose transformers have a cache.

The toolkit's own ``supervised`` and ``multistart`` experiments cannot execute in 0.9.0
(runtimes return a list of object states where the experiments expect one state, and
``multistart`` builds its queries from the wrong type); ``realtime`` variants also pass
``None`` where the TraX runtime wants an empty list. Its ``unsupervised`` experiment runs,
but builds its transformers when the stack is read, before the workspace gives the
experiment its storage, so they get no cache, and the ``redetection`` transformer of the
VOT-LT stacks stops ("Local cache is required"); that transformer, once it runs, makes
sequences as long as the two images it generates allow (5 frames of the target in place)
instead of ``length`` frames, the rest with the target moved to the corner, as its earlier
releases did, and puts the moved target's ground truth where the patch's corner would be,
not where the target's pixels are. These subclasses keep the toolkit's
attributes, result names and file layout, so the toolkit's analyses (which check
``isinstance`` against the parent classes) read their results unchanged. Stacks name
them by full path, e.g. ``type: samn_tracker.vot.experiments.SupervisedExperiment``.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

from vot.dataset import Frame, Sequence
from vot.dataset.common import read_sequence
from vot.dataset.proxy import FrameMapSequence
from vot.experiment import multirun, multistart, transformer
from vot.region import Rectangle, Special, calculate_overlap
from vot.region.io import read_trajectory, write_trajectory
from vot.tracker import ObjectStatus, Tracker, Trajectory
from vot.utilities import arg_hash, to_number


class RealtimeSession:
    """Simulated real-time clock around an online runtime (VOT realtime experiments).

    A frame arrives every ``interval`` seconds; while the tracker is still busy with an
    earlier frame, the last reported state is repeated. The first ``grace`` slow
    answers are forgiven, as in the toolkit.
    """

    def __init__(self, runtime, grace: int, interval: float):
        self._runtime = runtime
        self._grace = grace
        self._interval = interval
        self._countdown = grace
        self._debt = 0.0
        self._last: Optional[ObjectStatus] = None

    def _account(self, status: ObjectStatus, elapsed: float) -> None:
        if elapsed > self._interval and self._countdown > 0:
            self._countdown -= 1
            self._debt = 0.0
        else:
            self._debt = max(0.0, elapsed - self._interval)
        self._last = status

    def initialize(self, frame: Frame, state: ObjectStatus) -> tuple[ObjectStatus, float]:
        self._countdown = self._grace
        status, elapsed = _initialize(self._runtime, frame, state)
        self._account(status, elapsed)
        return status, elapsed

    def update(self, frame: Frame) -> tuple[ObjectStatus, float]:
        if self._debt > self._interval:
            self._debt -= self._interval
            return self._last, 0.0
        status, elapsed = _update(self._runtime, frame)
        self._account(status, elapsed)
        return status, elapsed


class DirectSession:
    """Online runtime used frame by frame with single-object calls."""

    def __init__(self, runtime):
        self._runtime = runtime

    def initialize(self, frame: Frame, state: ObjectStatus) -> tuple[ObjectStatus, float]:
        return _initialize(self._runtime, frame, state)

    def update(self, frame: Frame) -> tuple[ObjectStatus, float]:
        return _update(self._runtime, frame)


def _initialize(runtime, frame: Frame, state: ObjectStatus) -> tuple[ObjectStatus, float]:
    statuses, elapsed = runtime.initialize(frame, [state])
    return _single(statuses), elapsed


def _update(runtime, frame: Frame) -> tuple[ObjectStatus, float]:
    statuses, elapsed = runtime.update(frame, [])
    return _single(statuses), elapsed


def _single(statuses) -> ObjectStatus:
    if isinstance(statuses, ObjectStatus):
        return statuses
    if not statuses:
        return ObjectStatus(Special(Trajectory.UNKNOWN), {})
    return statuses[0]


def _properties(status: ObjectStatus, elapsed: float) -> dict:
    properties = dict(status.properties or {})
    properties["time"] = elapsed
    return properties


class _SessionMixin:
    """Opens the runtime and wraps it for (simulated) real-time use if configured."""

    def _session(self, runtime, sequence: Sequence):
        if self.realtime is None:
            return DirectSession(runtime)
        grace = to_number(self.realtime.grace, min_n=0)
        fps = to_number(self.realtime.fps, min_n=0, conversion=float)
        return RealtimeSession(runtime, grace, 1.0 / float(sequence.metadata("fps", fps)))


class SupervisedExperiment(_SessionMixin, multirun.SupervisedExperiment):
    """VOT2013–2019 reset-based experiment: re-initialise ``skip_initialize`` frames
    after each failure (overlap <= ``failure_overlap``)."""

    def execute(self, tracker: Tracker, sequence: Sequence, force: bool = False,
                callback: Optional[Callable] = None) -> None:
        if len(sequence.objects()) != 1:
            raise ValueError("SupervisedExperiment only works on single-target sequences.")
        results = self.results(tracker, sequence)
        with tracker.runtime() as runtime:
            session = self._session(runtime, sequence)
            for repetition in range(1, self.repetitions + 1):
                name = f"{sequence.name}_{repetition:03d}"
                if Trajectory.exists(results, name) and not force:
                    continue
                if self._can_stop(tracker, sequence):
                    return
                self._run(session, sequence).write(results, name)
                if callback:
                    callback(repetition / self.repetitions)

    def _run(self, session, sequence: Sequence) -> Trajectory:
        trajectory = Trajectory(len(sequence))
        frame = 0
        while frame < len(sequence):
            groundtruth = sequence.groundtruth(frame)
            if groundtruth.is_empty():
                frame += 1  # nothing to initialise on; the frame stays "unknown"
                continue
            _, elapsed = session.initialize(sequence.frame(frame), ObjectStatus(groundtruth, {}))
            trajectory.set(frame, Special(Trajectory.INITIALIZATION), {"time": elapsed})
            frame += 1
            while frame < len(sequence):
                status, elapsed = session.update(sequence.frame(frame))
                overlap = calculate_overlap(status.region, sequence.groundtruth(frame), sequence.size)
                if overlap <= self.failure_overlap:
                    trajectory.set(frame, Special(self.FAILURE), _properties(status, elapsed))
                    frame = self._restart_frame(sequence, frame + self.skip_initialize)
                    break
                trajectory.set(frame, status.region, _properties(status, elapsed))
                frame += 1
        return trajectory

    def _restart_frame(self, sequence: Sequence, frame: int) -> int:
        while frame < len(sequence) and any(t in self.skip_tags for t in sequence.tags(frame)):
            frame += 1
        return frame


class MultiStartExperiment(_SessionMixin, multistart.MultiStartExperiment):
    """VOT2020+ anchor-based experiment: one run per anchor, forward to the end or
    backward to the first frame; results stored in run order as ``<seq>_<anchor:08d>``."""

    def execute(self, tracker: Tracker, sequence: Sequence, force: bool = False,
                callback: Optional[Callable] = None) -> None:
        results = self.results(tracker, sequence)
        forward, backward = multistart.find_anchors(sequence, self.anchor)
        if not forward and not backward:
            raise RuntimeError(f"Sequence {sequence.name} does not contain any anchors")
        runs = [(a, False) for a in forward] + [(a, True) for a in backward]
        with tracker.runtime() as runtime:
            session = self._session(runtime, sequence)
            for done, (anchor, reverse) in enumerate(runs, start=1):
                name = f"{sequence.name}_{anchor:08d}"
                if Trajectory.exists(results, name) and not force:
                    continue
                order = list(reversed(range(anchor + 1))) if reverse else list(range(anchor, len(sequence)))
                self._run(session, FrameMapSequence(sequence, order)).write(results, name)
                if callback:
                    callback(done / len(runs))

    @staticmethod
    def _run(session, proxy: Sequence) -> Trajectory:
        trajectory = Trajectory(len(proxy))
        _, elapsed = session.initialize(proxy.frame(0), ObjectStatus(proxy.groundtruth(0), {}))
        trajectory.set(0, Special(Trajectory.INITIALIZATION), {"time": elapsed})
        for frame in range(1, len(proxy)):
            status, elapsed = session.update(proxy.frame(frame))
            trajectory.set(frame, status.region, _properties(status, elapsed))
        return trajectory


class UnsupervisedExperiment(multirun.UnsupervisedExperiment):
    """The toolkit's, with the workspace's transformer cache handed to transformers that
    have none (the toolkit's own place for it, ``cache/transformer``)."""

    def transform(self, sequences):
        if self._storage is not None:
            cache = self._storage.substorage("cache").substorage("transformer")
            for each in self.transformers:
                if each._cache is None:
                    each._cache = cache
        return super().transform(sequences)


class Redetection(transformer.Redetection):
    """The toolkit's re-detection sequence at the length the stack gives: ``initialization``
    frames of the first image, then the target alone in the corner of a padded frame until
    ``length`` (0.9.0 stops after the first part: its map counts the two generated images).

    The toolkit pastes a square patch of side ``2 * half`` cut around the target's centre
    (cx, cy) into the canvas's bottom-right corner and moves the ground truth by the patch's
    place; the target lies further by its place in the patch, ``half - cx`` (as Pillow's crop
    rounds ``cx - half``), which is added here: the frame's box then covers the target."""

    def __call__(self, sequence: Sequence) -> list[Sequence]:
        [generated] = super().__call__(sequence)  # the two images, in the cache unless there already
        source = generated._source
        folder = self._cache.directory(self, arg_hash(sequence.name, **self.dump()))
        groundtruth = os.path.join(folder, "groundtruth.txt")
        first, written = read_trajectory(groundtruth)
        box = Rectangle.convert(first)
        half = int(max(box.width, box.height) * self.scaling / 2)
        cx, cy = box.center()
        width, height = (int(side * self.scaling) for side in sequence.size)
        moved = first.move(width - 2 * half - round(cx - half), height - 2 * half - round(cy - half))
        if str(written) != str(moved):  # once per cache, and whole: another process may be reading it
            write_trajectory(groundtruth + ".tmp", [first, moved])
            os.replace(groundtruth + ".tmp", groundtruth)
            source = read_sequence(folder)
        frames = [0] * self.initialization + [1] * (self.length - self.initialization)
        return [FrameMapSequence(source, frames)]
