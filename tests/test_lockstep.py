"""Batched tracking: targets stepped together give what they give one at a time.

The shipped ``lite`` weights segment these sequences, so memory writes happen and are
batched too; the videos have different lengths, so a finished video hands its slot on.
"""
from __future__ import annotations

import sys
from itertools import islice

import cv2
import numpy as np
import pytest
import torch

from samn_tracker import build_tracker, regions
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.errors import InputError
from samn_tracker.evaluation.runner import BenchmarkSequence, track_batched
from samn_tracker.model.spatial_memory import SpatialMemory
from samn_tracker.tracker import SAMNTracker
from samn_tracker.tracking_loop import track_frames, track_lockstep

from conftest import SHORT_TUNING

# They start from masks, so each target tunes its own decoder (SHORT_TUNING).
VIDEOS = (("blackswan", 9), ("car-shadow", 5), ("cows", 7))


def read_frames(sequence, count):
    return (sequence.image(i) for i in range(count))


def videos(root):
    for name, count in VIDEOS:
        sequence = davis_sequence(root, name)
        yield read_frames(sequence, count), sequence.groundtruth[0]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def tracker():
    return build_tracker("lite", device="cpu", overrides=SHORT_TUNING)


@pytest.fixture(scope="module")
def one_at_a_time(tracker, davis_root):
    return [[step.output for step in track_frames(tracker, frames, region)]
            for frames, region in videos(davis_root)]


def test_lockstep_equals_one_at_a_time(tracker, one_at_a_time, davis_root):
    batched = [[] for _ in VIDEOS]
    order = []
    for video, step in track_lockstep(tracker, videos(davis_root), batch=2):
        assert step.index == len(batched[video])  # each video's frames in order
        assert step.seconds > 0
        batched[video].append(step.output)
        order.append(video)
    assert [len(outputs) for outputs in batched] == [frames for _, frames in VIDEOS]
    # two videos share each step; cows takes car-shadow's slot as soon as it ends
    assert order[:13] == [0, 1] + [0, 1] * 4 + [2] + [0, 2]
    for alone, together in zip(one_at_a_time, batched):
        for a, b in zip(alone, together):
            assert a.mask.any()
            assert mask_iou(a.mask, b.mask) > 0.99
            assert np.allclose(a.box, b.box, atol=0.5)
            assert a.uncertain == b.uncertain
            assert b.confidence == pytest.approx(a.confidence, abs=1e-3)


def test_groups_stepped_in_turn_equal_one_at_a_time(tracker, one_at_a_time, davis_root):
    """Two groups (of 2 and 1 videos) launched and finished in turn: each group's host work
    would overlap the other's device work on a GPU; the results are those of lockstep."""
    batched = [[] for _ in VIDEOS]
    for video, step in track_lockstep(tracker, videos(davis_root), batch=3, groups=2):
        assert step.index == len(batched[video]) and step.seconds > 0
        batched[video].append(step.output)
    assert [len(outputs) for outputs in batched] == [frames for _, frames in VIDEOS]
    for alone, together in zip(one_at_a_time, batched):
        for a, b in zip(alone, together):
            assert mask_iou(a.mask, b.mask) > 0.99 and np.allclose(a.box, b.box, atol=0.5)
            assert a.uncertain == b.uncertain
    with pytest.raises(ValueError, match="groups"):
        next(track_lockstep(tracker, videos(davis_root), batch=2, groups=3))


def test_lockstep_with_device_frame_ops_equals_one_at_a_time(davis_root):
    """The GPU's crop and paste-back path (batched across targets), run on the CPU."""
    tracker = build_tracker("lite", device="cpu", overrides=["frame_ops=torch", "tuning.steps=0"])
    alone = [[step.output for step in track_frames(tracker, frames, region)]
             for frames, region in videos(davis_root)]
    batched = [[] for _ in VIDEOS]
    for video, step in track_lockstep(tracker, videos(davis_root), batch=3):
        batched[video].append(step.output)
    for one, together in zip(alone, batched):
        assert len(one) == len(together)
        for a, b in zip(one, together):
            assert a.mask.any() and mask_iou(a.mask, b.mask) > 0.99
            assert np.allclose(a.box, b.box, atol=0.5)


@pytest.mark.parametrize("frame_ops", ["opencv", "torch"])
def test_host_work_in_threads_gives_the_same_outputs_as_on_the_calling_thread(davis_root, frame_ops):
    """Per-target host work (each map built in its frame, masks, policy, boxes) in a pool
    changes nothing, bit for bit."""
    runs = {}
    for threads in (1, 3):
        tracker = build_tracker("lite", overrides={**SHORT_TUNING, "host_threads": threads, "frame_ops": frame_ops,
                                                    "probability_maps": True}, device="cpu")
        runs[threads] = [(video, step.output) for video, step in
                         track_lockstep(tracker, videos(davis_root), batch=3)]
        assert (tracker._host_pool is None) == (threads == 1)
    assert [v for v, _ in runs[1]] == [v for v, _ in runs[3]]
    for (_, a), (_, b) in zip(runs[1], runs[3]):
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.box, b.box)
        assert np.array_equal(a.polygon, b.polygon) and a.confidence == b.confidence
        assert np.array_equal(a.probability, b.probability) and a.uncertain == b.uncertain


def test_masks_read_back_alone_track_as_with_their_probabilities(davis_root):
    """With ``probability_maps`` off (the default) a device step reads back masks made on the
    device, not the maps: masks, boxes and the memory policy's decisions are the same as
    with the maps read back, bit for bit, in lockstep groups."""
    runs = {}
    for keep in (True, False):
        tracker = build_tracker("lite", overrides={**SHORT_TUNING, "frame_ops": "torch", "probability_maps": keep},
                                device="cpu")
        runs[keep] = [(video, step.output) for video, step in
                      track_lockstep(tracker, videos(davis_root), batch=3, groups=2)]
    assert [v for v, _ in runs[True]] == [v for v, _ in runs[False]]
    for (_, kept), (_, alone) in zip(runs[True], runs[False]):
        assert np.array_equal(kept.mask, alone.mask) and np.array_equal(kept.box, alone.box)
        assert kept.confidence == alone.confidence and kept.uncertain == alone.uncertain
        assert kept.from_mask == alone.from_mask
        assert alone.probability is None and kept.probability.shape == kept.mask.shape
    assert sum(o.mask.any() for _, o in runs[False]) > 0.9 * len(runs[False])  # real masks compared


@pytest.mark.parametrize("settings", [{}, {"use_dcf": False, "mask_min_component": 0.0}],
                         ids=["lite", "no-dcf-no-components"])
def test_masks_and_counts_made_on_the_device_track_as_made_on_the_host(davis_root, monkeypatch, settings):
    """The device's masks and row and column counts against the host's from the same maps
    (the maps' values read back, the device's masks and counts ignored): the same tracks,
    bit for bit; without a DCF the confidence is the mean probability over the mask."""
    from samn_tracker.frame_ops import FrameMap

    def track():
        tracker = build_tracker("lite", overrides={**SHORT_TUNING, "frame_ops": "torch", "probability_maps": True,
                                                    **settings},
                                device="cpu")
        return [step.output for _, step in track_lockstep(tracker, videos(davis_root), batch=3, groups=2)]

    def above_on_the_host(frame_map, threshold):
        mask = np.zeros(frame_map.shape, dtype=bool)
        mask[frame_map.footprint] = frame_map.block > threshold
        return mask

    device_made = track()
    monkeypatch.setattr(FrameMap, "counts_above", lambda frame_map, threshold: None)
    monkeypatch.setattr(FrameMap, "above", above_on_the_host)
    host_made = track()
    for ours, theirs in zip(device_made, host_made, strict=True):
        assert np.array_equal(ours.mask, theirs.mask) and np.array_equal(ours.box, theirs.box)
        assert ours.confidence == theirs.confidence and ours.uncertain == theirs.uncertain
    assert sum(o.mask.any() for o in device_made) > 0.9 * len(device_made)


def test_main_components_kept_on_the_device_track_as_kept_on_the_host(davis_root, monkeypatch):
    """``mask_components="device"``: the device keeps each mask's main components and the
    host labels only what it left (masks whose labels did not settle, the first frames):
    the same tracks as OpenCV's labelling on the host, bit for bit. With OpenCV's frame
    operations the host labels every mask, whatever the setting."""
    labelled = []
    labelling = regions.main_components

    def counted(*args, **kwargs):
        labelled.append(args[0].shape)
        return labelling(*args, **kwargs)

    monkeypatch.setattr(regions, "main_components", counted)
    runs, calls = {}, {}
    for frame_ops, where in (("torch", "host"), ("torch", "device"), ("opencv", "device")):
        labelled.clear()
        tracker = build_tracker("lite", overrides={**SHORT_TUNING, "frame_ops": frame_ops,
                                                    "mask_components": where}, device="cpu")
        runs[frame_ops, where] = [step.output for _, step in
                                  track_lockstep(tracker, videos(davis_root), batch=3, groups=2)]
        calls[frame_ops, where] = len(labelled)
    for ours, theirs in zip(runs["torch", "device"], runs["torch", "host"], strict=True):
        assert np.array_equal(ours.mask, theirs.mask) and np.array_equal(ours.box, theirs.box)
        assert ours.confidence == theirs.confidence and ours.uncertain == theirs.uncertain
    assert calls["torch", "device"] < 0.2 * calls["torch", "host"]
    assert calls["opencv", "device"] >= len(runs["opencv", "device"]) - len(VIDEOS)
    assert sum(o.mask.any() for o in runs["torch", "device"]) > 0.9 * len(runs["torch", "device"])


def test_entries_encoded_at_launch_track_as_encoded_when_written(davis_root, monkeypatch):
    """``entries_at="launch"`` (the CUDA default) encodes every target's memory entry with the
    step's device work, before the memory policy has decided, and drops those not written.
    One target tracks as with its entries encoded after the host work, bit for bit. In a
    batch whose targets do not all write, the pass holds more crops than the writers' and
    rounds otherwise: the tracks and memories agree within float tolerance, as lockstep's
    do with one at a time. On a CPU the default encodes only what is written."""
    encode, rows = SAMNTracker._memory_pass, {}

    def counted(self, crops, *rest):
        caller = sys._getframe(1).f_code.co_name  # who encodes: the launch, the write or the start
        # (not inspect.stack(), which reads every frame's source file: minutes in this test)
        rows[caller] = rows.get(caller, 0) + crops.shape[0]
        return encode(self, crops, *rest)

    monkeypatch.setattr(SAMNTracker, "_memory_pass", counted)
    alone, together, memories, encoded = {}, {}, {}, {}
    frames, region = next(videos(davis_root))
    frames = list(frames)
    for where in ("launch", "finish"):
        tracker = build_tracker("lite", device="cpu", overrides={  # odd frames but the fifth write nothing
            **SHORT_TUNING, "frame_ops": "torch", "entries_at": where, "memory.last_frame_interval": 2})
        assert tracker.entries_at_launch == (where == "launch")
        rows.clear()
        alone[where] = [step.output for step in track_frames(tracker, frames, region)]
        encoded[where] = dict(rows)
        together[where] = [step.output for _, step in
                           track_lockstep(tracker, videos(davis_root), batch=3, groups=2)]
        targets = [tracker.start(next(iter(video)), first)[0] for video, first in islice(videos(davis_root), 2)]
        sequences = [davis_sequence(davis_root, name) for name, _ in VIDEOS[:2]]
        tracker.step(targets[:1], [sequences[0].image(1)])  # a frame ahead: one of the two writes
        for index in range(2, 6):
            tracker.step(targets, [sequences[0].image(index), sequences[1].image(index - 1)])
        memories[where] = [entry for target in targets for entry in target.memory.appearance.entries()]
    for ours, theirs in zip(alone["launch"], alone["finish"], strict=True):
        assert np.array_equal(ours.mask, theirs.mask) and np.array_equal(ours.box, theirs.box)
        assert ours.confidence == theirs.confidence and ours.uncertain == theirs.uncertain
    assert encoded["launch"]["_issue"] == len(frames) - 1 and "_write" not in encoded["launch"]
    assert 0 < encoded["finish"]["_write"] < len(frames) - 1 and "_issue" not in encoded["finish"]
    for ours, theirs in zip(together["launch"], together["finish"], strict=True):
        assert mask_iou(ours.mask, theirs.mask) > 0.99 and np.allclose(ours.box, theirs.box, atol=0.5)
        assert ours.uncertain == theirs.uncertain
    for ours, theirs in zip(memories["launch"], memories["finish"], strict=True):
        assert ours.frame == theirs.frame
        assert torch.allclose(ours.key, theirs.key, atol=1e-3) and torch.allclose(ours.value, theirs.value, atol=1e-3)
    assert not build_tracker("lite", device="cpu").entries_at_launch


def test_dcf_samples_wait_for_the_next_launch_and_track_as_stored_at_once(davis_root):
    """A tracked frame's DCF sample is stored with its target's next launch, behind that
    frame's DCF scores (which read the filter alone), unless its step refits the filter, which
    the next scores need: then at once. Two targets in lockstep track as with every sample
    stored when its frame finishes, bit for bit on a CPU, and end with the same DCFs."""
    sequences = [davis_sequence(davis_root, name) for name, _ in VIDEOS[:2]]
    outputs, dcfs, waited, refitted = {}, {}, 0, 0
    for at_once in (False, True):
        tracker = build_tracker("lite", device="cpu", overrides={**SHORT_TUNING, "dcf.update_interval": 3})
        targets = [tracker.start(sequence.image(0), sequence.groundtruth[0])[0] for sequence in sequences]
        outputs[at_once] = []
        for index in range(1, 9):
            waiting = [target.sample is not None for target in targets]
            before = [target.dcf.num_samples for target in targets]
            launched = tracker.launch(targets, [sequence.image(index) for sequence in sequences])
            assert [target.dcf.num_samples for target in targets] == [n + w for n, w in zip(before, waiting)]
            assert all(target.sample is None for target in targets)
            filters = [target.dcf.filter for target in targets]
            stored = [target.dcf.num_samples for target in targets]
            outputs[at_once] += tracker.finish(launched)
            for target, filt, count in zip(targets, filters, stored):
                changed = target.dcf.filter is not filt
                if target.sample is not None:  # waits: no refit falls due with it
                    assert not changed and target.dcf.num_samples == count and not target.dcf.refit_due
                    waited += not at_once
                refitted += changed and not at_once
                assert not changed or target.dcf.num_samples == count + 1
            if at_once:
                tracker._learn(targets)
        tracker._learn(targets)
        dcfs[at_once] = [(target.dcf.filter, target.dcf.weights, target.dcf.num_samples) for target in targets]
    assert waited > 0 and refitted > 0
    for ours, theirs in zip(outputs[False], outputs[True], strict=True):
        assert np.array_equal(ours.mask, theirs.mask) and np.array_equal(ours.box, theirs.box)
        assert ours.confidence == theirs.confidence and ours.uncertain == theirs.uncertain
    for (filt, weights, count), (filt_b, weights_b, count_b) in zip(dcfs[False], dcfs[True]):
        assert torch.equal(filt, filt_b) and torch.equal(weights, weights_b) and count == count_b


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_masks_read_back_alone_from_a_gpu_track_as_with_their_probabilities(davis_root):
    """On CUDA the masks and their counts come back in page-locked memory beside the maps'
    values or alone: the same tracks either way (up to the GPU's run-to-run rounding)."""
    runs = {}
    for keep in (True, False):
        tracker = build_tracker("lite", overrides={"probability_maps": keep}, device="cuda")
        runs[keep] = [(video, step.output) for video, step in
                      track_lockstep(tracker, videos(davis_root), batch=3, groups=2)]
    assert [v for v, _ in runs[True]] == [v for v, _ in runs[False]]
    ious = [mask_iou(kept.mask, alone.mask) for (_, kept), (_, alone) in zip(runs[True], runs[False])]
    assert np.mean(ious) > 0.99 and all(o.probability is None for _, o in runs[False])
    assert all((o.probability[o.mask] > 0.5).all() for _, o in runs[True])  # the mask's pixels: its own map's


def test_host_threads_by_default_beside_a_gpu_only():
    from samn_tracker.tracker import MAX_AUTO_HOST_THREADS, host_threads_for

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert host_threads_for(0, cpu, cores=64) == 1
    assert host_threads_for(0, gpu, cores=16) == 8 == MAX_AUTO_HOST_THREADS
    assert host_threads_for(0, gpu, cores=6) == 3 and host_threads_for(0, gpu, cores=1) == 1
    assert host_threads_for(0, gpu, cores=128) == MAX_AUTO_HOST_THREADS
    assert host_threads_for(5, cpu) == 5 and host_threads_for(1, gpu, cores=16) == 1  # as set
    assert build_tracker("lite", device="cpu").host_threads == 1  # the default, resolved on a CPU


def test_two_groups_by_default_beside_a_gpu_only():
    from types import SimpleNamespace

    from samn_tracker.command_parser import check_groups
    from samn_tracker.tracking_loop import AUTO_GROUPS_MIN_BATCH, lockstep_groups

    def tracker(device: str, apart: bool = True):
        halves = {"launch": None, "finish": None} if apart else {"step": None}
        return SimpleNamespace(device=torch.device(device), **halves)

    assert lockstep_groups(None, 32, tracker("cuda:0")) == 2
    assert lockstep_groups(None, AUTO_GROUPS_MIN_BATCH, tracker("cuda:0")) == 2  # "at least"
    assert lockstep_groups(None, AUTO_GROUPS_MIN_BATCH - 1, tracker("cuda:0")) == 1
    assert lockstep_groups(None, 32, tracker("cpu")) == 1                    # the same cores
    assert lockstep_groups(None, 32, tracker("cuda:0", apart=False)) == 1    # only step()
    assert lockstep_groups(4, 32, tracker("cpu")) == 4 and lockstep_groups(1, 32, tracker("cuda:0")) == 1
    check_groups(2, None)  # chosen later: nothing to check yet
    with pytest.raises(InputError, match="--groups 3 needs a --batch of at least 3"):
        check_groups(2, 3)


def test_batches_larger_than_the_work_are_fine(tracker, one_at_a_time, davis_root):
    steps = list(track_lockstep(tracker, islice(videos(davis_root), 1), batch=8))
    assert [s.index for _, s in steps] == list(range(VIDEOS[0][1]))
    assert np.allclose(steps[-1][1].output.box, one_at_a_time[0][-1].box, atol=0.5)
    with pytest.raises(ValueError, match="batch"):
        next(track_lockstep(tracker, videos(davis_root), batch=0))


class Counter:
    """Answers each target's frame number: enough to see which call got which frame."""

    def start_all(self, images, regions):
        return [({"region": region, "frame": 0}, (region, 0)) for region in regions]

    def step(self, targets, images):
        for target in targets:
            target["frame"] += 1
        return [(t["region"], t["frame"]) for t in targets]


class Halves(Counter):
    """``Counter`` stepped in two halves; a target is never in two launched steps at once."""

    def __init__(self):
        self.in_flight: set[int] = set()

    def launch(self, targets, images):
        ids = {id(t) for t in targets}
        assert not ids & self.in_flight
        self.in_flight |= ids
        return targets, images

    def finish(self, launched):
        targets, images = launched
        self.in_flight -= {id(t) for t in targets}
        return self.step(targets, images)


@pytest.mark.parametrize("tracker_class, groups", [(Counter, 1), (Halves, 2)])
def test_sequences_with_several_targets_come_out_whole(monkeypatch, tracker_class, groups):
    import samn_tracker.evaluation.runner as runner

    monkeypatch.setattr(runner, "read_frames", lambda paths: (np.zeros((4, 4, 3), np.uint8) for _ in paths))
    two = BenchmarkSequence("two", ["f0", "f1", "f2"], targets=["a", "b"], target_ids=[1, 2])
    one = BenchmarkSequence("one", ["f0", "f1"], targets=["c"])
    runs = list(track_batched(tracker_class(), [two, one], keep=lambda output: output,
                              batch=2, groups=groups))
    assert [run.sequence.name for run in runs] == ["two", "one"]
    assert [t.outputs for t in runs[0].targets] == [[("a", 0), ("a", 1), ("a", 2)],
                                                    [("b", 0), ("b", 1), ("b", 2)]]
    assert runs[1].targets[0].outputs == [("c", 0), ("c", 1)]
    assert all(len(t.times) == len(t.outputs) for run in runs for t in run.targets)


def test_groups_take_turns_and_keep_every_video_whole():
    videos = [(iter([np.zeros(1)] * n), f"v{n}") for n in (4, 2, 3, 5)]
    steps = list(track_lockstep(Halves(), videos, batch=3, groups=2))
    per_video = {}
    for video, step in steps:
        per_video.setdefault(video, []).append(step.output)
    assert per_video == {v: [(f"v{n}", i) for i in range(n)] for v, n in enumerate((4, 2, 3, 5))}
    # group 0 (videos 0, 1) and group 1 (video 2) alternate; video 3 takes video 1's slot
    assert [v for v, s in steps if s.index == 1][:3] == [0, 1, 2]
    with pytest.raises(ValueError, match="launch / finish"):
        next(track_lockstep(Counter(), iter(videos), batch=2, groups=2))


def test_targets_started_together_equal_each_started_alone(davis_root):
    """A lockstep batch's new videos start in one ``start_all``: one query-encoder pass
    for their first crops, one box refinement, their DCFs' augmented crops in shared passes
    and one batched fit. Each target (given by a box, a polygon or a mask, in frames of two
    sizes) must start as it does alone, bit for bit on a CPU."""
    tracker = build_tracker("lite", device="cpu", overrides={"tuning.steps": 0})
    blackswan, cows, car = (davis_sequence(davis_root, name) for name in ("blackswan", "cows", "car-shadow"))
    x, y, w, h = regions.mask_to_box(cows.groundtruth[0])
    polygon = np.array([x, y, x + w, y, x + w, y + h, x, y + h], dtype=float)
    small = cv2.resize(car.image(0), None, fx=0.75, fy=0.75)
    starts = [(blackswan.image(0), regions.mask_to_box(blackswan.groundtruth[0])), (cows.image(0), polygon),
              (small, cv2.resize(car.groundtruth[0].astype(np.uint8), small.shape[1::-1]) > 0)]
    alone = [tracker.start(image, region) for image, region in starts]
    together = tracker.start_all([image for image, _ in starts], [region for _, region in starts])
    assert len(together) == len(starts)
    for (a, first_a), (b, first_b) in zip(alone, together):
        assert np.array_equal(first_a.mask, first_b.mask) and np.array_equal(first_a.box, first_b.box)
        assert np.array_equal(a.box, b.box)
        for name in ("filter", "projection", "weights"):
            assert torch.equal(getattr(a.dcf, name), getattr(b.dcf, name)), name
        (keys_a, values_a), (keys_b, values_b) = a.memory.read(), b.memory.read()
        assert torch.equal(keys_a, keys_b) and torch.equal(values_a, values_b)
    assert not np.array_equal(alone[1][1].mask, regions.box_to_mask((x, y, w, h), cows.image(0).shape[:2]))  # refined
    with pytest.raises(ValueError, match="3 images but 2 regions"):
        tracker.start_all([image for image, _ in starts], [region for _, region in starts[:2]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_targets_started_together_on_a_gpu_start_as_alone(davis_root):
    """On a GPU a start of several targets runs its passes on batches of another shape, whose
    convolutions round otherwise (TF32, an algorithm per shape): each target's first mask and
    DCF must still be its own start's, and its next frames tracked alike. The DCF is compared
    as it scores a frame, its filter folded into its projection (both start from an
    eigendecomposition whose vectors' signs rounding may flip, as on the H100), and against
    the other targets': the first-frame solve carries the rounding into the filter (on the
    H100 a folded filter 9% apart from its start alone), so it must be far nearer its own
    start's than any other target's."""
    tracker = build_tracker("lite", device="cuda", overrides={"tuning.steps": 0})
    sequences = [davis_sequence(davis_root, name) for name, _ in VIDEOS]
    images = [sequence.image(0) for sequence in sequences]
    boxes = [regions.mask_to_box(sequence.groundtruth[0]) for sequence in sequences]
    alone = [tracker.start(image, box) for image, box in zip(images, boxes)]
    together = tracker.start_all(images, boxes)
    folded_alone, folded_together = (SpatialMemory.scorers([target.dcf for target, _ in starts])
                                     for starts in (alone, together))
    for i, (sequence, (a, first_a), (b, first_b)) in enumerate(zip(sequences, alone, together)):
        assert mask_iou(first_a.mask, first_b.mask) > 0.99
        apart = [float((folded_together[i] - other).norm() / other.norm()) for other in folded_alone]
        assert apart[i] < 0.25 * min(d for j, d in enumerate(apart) if j != i)
        for index in (1, 2, 3):
            image = sequence.image(index)
            assert mask_iou(tracker.step([a], [image])[0].mask, tracker.step([b], [image])[0].mask) > 0.98


def test_videos_that_take_free_slots_together_start_together():
    """Lockstep refills a group once half its slots are free, with one ``start_all`` call
    whose time the started videos share."""
    class Recording(Counter):
        def __init__(self):
            self.starts = []

        def start_all(self, images, regions):
            self.starts.append(list(regions))
            return super().start_all(images, regions)

    tracker = Recording()
    videos = [(iter([np.zeros(1)] * n), f"v{i}") for i, n in enumerate((3, 3, 2, 4, 2))]
    steps = list(track_lockstep(tracker, videos, batch=3))
    # three at once; v2 ends first, and its slot waits (one of three is less than half) until
    # v0 and v1 end too; then v3 and v4 start together
    assert tracker.starts == [["v0", "v1", "v2"], ["v3", "v4"]]
    assert [video for video, step in steps if step.index == 2] == [0, 1, 3]  # v2 and v4: two frames
    firsts = [step.seconds for _, step in steps if step.index == 0]
    assert len(firsts) == 5 and firsts[0] == firsts[1] == firsts[2] and firsts[3] == firsts[4]
    per_video = {}
    for video, step in steps:
        per_video.setdefault(video, []).append(step.output)
    assert per_video == {v: [(f"v{v}", i) for i in range(n)] for v, n in enumerate((3, 3, 2, 4, 2))}


def test_sampled_entries_of_a_batch_hold_only_their_own_features(davis_root):
    """A batched memory write encodes every writer in one pass. An entry kept for the
    video (sampled) is its own copy, so it does not keep its batch-mates' features
    alive; a last-frame entry, replaced at the next write, may stay a view of the pass."""
    tracker = build_tracker("lite", device="cpu", overrides={**SHORT_TUNING, "memory.interval": 2})
    targets = [tracker.start(next(iter(frames)), region)[0] for frames, region in islice(videos(davis_root), 2)]
    sequences = [davis_sequence(davis_root, name) for name, _ in VIDEOS[:2]]
    for index in range(1, 5):
        tracker.step(targets, [sequence.image(index) for sequence in sequences])
    sampled = [entry for target in targets for entry in target.memory.appearance.sampled]
    assert sampled, "frames 2 and 4 are sampled"
    for entry in sampled:
        for tensor in (entry.key, entry.value):
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    lasts = [target.memory.appearance.last for target in targets if target.memory.appearance.last is not None]
    assert any(entry.key.untyped_storage().nbytes() > entry.key.numel() * entry.key.element_size()
               for entry in lasts)


class QueuedDevice:
    """A fake clock and a device queue that runs behind the host, as a GPU's does: host work
    moves the clock at once, device work is queued after the work before it, and a wait
    (``sync``, or a read-back in ``finish``) moves the clock to where that work ends."""

    def __init__(self):
        self.now = 0.0
        self.queue_end = 0.0

    def host(self, seconds: float) -> None:
        self.now += seconds

    def enqueue(self, seconds: float) -> float:
        self.queue_end = max(self.queue_end, self.now) + seconds
        return self.queue_end

    def wait(self, until: float | None = None) -> None:
        self.now = max(self.now, self.queue_end if until is None else until)


class QueuedTracker(Counter):
    """``Counter`` on a ``QueuedDevice``: a start takes 0.2 s; a launch 0.1 s of host work and
    0.3 s of device work; a finish waits for that work's read-back, takes 0.05 s and leaves
    0.2 s of memory writes queued."""

    def __init__(self, device: QueuedDevice):
        self.clock = device

    def start_all(self, images, regions):
        self.clock.host(0.2)
        return super().start_all(images, regions)

    def launch(self, targets, images):
        self.clock.host(0.1)
        return targets, images, self.clock.enqueue(0.3)

    def finish(self, launched):
        targets, images, read_back = launched
        self.clock.wait(read_back)
        self.clock.host(0.05)
        self.clock.enqueue(0.2)
        return self.step(targets, images)


def queued_run(monkeypatch, lengths, batch, groups):
    import samn_tracker.tracking_loop as tracking_loop
    from types import SimpleNamespace

    device = QueuedDevice()
    monkeypatch.setattr(tracking_loop, "time", SimpleNamespace(perf_counter=lambda: device.now))
    monkeypatch.setattr(tracking_loop, "synchroniser", lambda _: device.wait)
    videos = [(iter([np.zeros(1)] * n), f"v{i}") for i, n in enumerate(lengths)]
    steps = list(track_lockstep(QueuedTracker(device), videos, batch=batch, groups=groups))
    return steps, max(device.now, device.queue_end)  # the run ends when the device's queue does


def test_lockstep_seconds_are_the_batched_calls_divided_among_their_videos(monkeypatch):
    """A start of two videos in one ``start_all`` gives each half its time, and a step of two
    half the launch, the wait for the read-back and the queued memory writes (synced: no
    other group to overlap with). Counted on a fake clock, without sleeping."""
    steps, total = queued_run(monkeypatch, (3, 3), batch=2, groups=1)
    assert [s.index for _, s in steps] == [0, 0, 1, 1, 2, 2]
    for _, step in steps:
        assert step.seconds == pytest.approx(0.1 if step.index == 0 else (0.4 + 0.05 + 0.2) / 2)
    assert sum(s.seconds for _, s in steps) == pytest.approx(total)


@pytest.mark.parametrize("lengths, batch, groups",
                         [((4, 2, 3, 5), 3, 1), ((4, 2, 3, 5), 3, 2), ((2, 5, 3, 1, 4), 4, 2)])
def test_lockstep_seconds_add_up_to_the_time_spent_tracking(monkeypatch, lengths, batch, groups):
    """Whatever the groups and refills, every second the run took, device work included, is
    some step's: work still queued when a group finishes with none other in flight, or when
    new videos start, is counted, not lost to an uncounted wait."""
    steps, total = queued_run(monkeypatch, lengths, batch, groups)
    assert len(steps) == sum(lengths)
    assert all(s.seconds > 0 for _, s in steps)
    assert sum(s.seconds for _, s in steps) == pytest.approx(total, rel=1e-9)
