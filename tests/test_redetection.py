"""Re-detection of a lost target (``RedetectionConfig``): when it is due, where it looks,
when it moves the box, and a target that jumps out of the tracker's search region found
again on real frames."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from samn_tracker import redetection
from samn_tracker.config import RedetectionConfig, preset
from samn_tracker.crops import CropWindow
from samn_tracker.memory_manager import Decision
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.regions import iou_boxes
from samn_tracker.tracker import SAMNTracker

from conftest import SHORT_TUNING, read_boxes


def test_a_search_is_due_after_the_lost_frames_then_every_few():
    cfg = RedetectionConfig(after=3, every=2)
    assert [redetection.due(lost, cfg) for lost in range(8)] == [False, False, False, True, False, True, False, True]
    assert not any(redetection.due(lost, RedetectionConfig(after=0)) for lost in range(50))
    assert [redetection.turn(lost, cfg) for lost in (3, 5, 7)] == [0, 1, 2]


def test_search_windows_cover_the_frame_nearest_first_and_at_most_the_cap():
    search = CropWindow(100.0, 50.0, 200.0, 256)
    every = redetection.search_windows(search, (480, 854), most=100)
    assert {w.side for w in every} == {200.0} and {w.out_size for w in every} == {256}
    xs, ys = sorted({w.cx for w in every}), sorted({w.cy for w in every})
    assert xs[0] == 99.5 and xs[-1] == 854 - 100.5 and ys[0] == 99.5 and ys[-1] == 480 - 100.5
    assert max(np.diff(xs)) <= 100 and max(np.diff(ys)) <= 100  # half-overlapping: every pixel seen
    distances = [np.hypot(w.cx - 100, w.cy - 50) for w in every]
    assert distances == sorted(distances)
    assert redetection.search_windows(search, (480, 854), most=5) == every[:5]
    # later searches take the next crops, round the frame and again from the nearest
    assert redetection.search_windows(search, (480, 854), most=5, turn=1) == every[5:10]
    n = len(every)
    assert redetection.search_windows(search, (480, 854), most=5, turn=n) == every[:5]  # 5n crops: n rounds
    last = redetection.search_windows(search, (480, 854), most=5, turn=n // 5)
    assert last == (every + every)[n // 5 * 5:n // 5 * 5 + 5]
    assert redetection.search_windows(search, (480, 854), most=n + 3, turn=4) == every
    [whole] = redetection.search_windows(CropWindow(10.0, 10.0, 1000.0, 256), (480, 854), most=12)
    assert (whole.cx, whole.cy) == (426.5, 239.5)  # a crop larger than the frame: one, in the middle


def test_the_box_moves_to_a_strong_peak_elsewhere_only():
    cfg = RedetectionConfig(after=1, min_peak=0.5)
    box = np.array([100.0, 100.0, 40.0, 10.0])  # centre (119.5, 104.5), size 20
    far = (300.0, 104.5)
    np.testing.assert_array_equal(redetection.moved_box(box, far, 0.4, 0.8, cfg), [280.5, 100.0, 40.0, 10.0])
    assert redetection.moved_box(box, far, 0.39, 0.8, cfg) is None          # weaker than half the usual peak
    assert redetection.moved_box(box, (135.0, 104.5), 0.9, 0.8, cfg) is None  # within one target size
    # the size is sqrt(w h), not the longer side (40): 25.5 px away is elsewhere
    np.testing.assert_array_equal(redetection.moved_box(box, (145.0, 104.5), 0.9, 0.8, cfg), [125.5, 100.0, 40.0, 10.0])


@pytest.fixture(scope="module")
def moved_target(davis_root):
    """Frame 0 of car-shadow in the top-left of a canvas twice its size, then frames where
    only the patch around the car remains, in the canvas's bottom-right corner (the VOT-LT
    re-detection experiment's design): the box there, and the frames."""
    frame = davis_sequence(davis_root, "car-shadow").image(0)
    x, y, w, h = read_boxes(davis_root, "car-shadow")[0]
    height, width = frame.shape[:2]
    first = np.zeros((2 * height, 2 * width, 3), np.uint8)
    first[:height, :width] = frame
    half = int(max(w, h))
    top, left = int(y + h / 2) - half, int(x + w / 2) - half
    padded = np.zeros((height + 4 * half, width + 4 * half, 3), np.uint8)
    padded[2 * half:2 * half + height, 2 * half:2 * half + width] = frame
    patch = padded[top + 2 * half:top + 4 * half, left + 2 * half:left + 4 * half]
    moved = np.zeros_like(first)
    moved[-2 * half:, -2 * half:] = patch
    shift = np.array([2 * width - 2 * half - left, 2 * height - 2 * half - top])
    return first, moved, np.array([x, y, w, h]), np.array([x + shift[0], y + shift[1], w, h])


@pytest.mark.parametrize("after, frame_ops", [(0, "opencv"), (2, "opencv"), (2, "torch")])
def test_a_target_that_jumped_away_is_found_again(moved_target, after, frame_ops):
    """``frame_ops="torch"``: the crops of a GPU's step, here on the CPU."""
    first, moved, box, there = moved_target
    cfg = preset("lite").replace(**SHORT_TUNING, frame_ops=frame_ops,
                                 **{"redetection.after": after, "redetection.every": 1})
    tracker = SAMNTracker(cfg, device="cpu")
    tracker.initialize(first, box)
    tracker.track(first)
    overlaps = [float(iou_boxes(tracker.track(moved).box, there)) for _ in range(6)]
    if after:
        assert max(overlaps[:after + 2]) > 0.5 and overlaps[-1] > 0.5
    else:
        assert max(overlaps) == 0  # its own search region holds nothing but black


def test_a_frame_counts_as_lost_when_its_mask_is_not_used_and_the_dcf_lost_it_too():
    """``_lost``: a frame counts towards a search beyond the search region when its mask was
    refused (untrusted) or kept out of the memories (uncertain, even if trusted), and the DCF's
    peak fell under ``min_peak`` x the mean accepted peak; a DCF that still sees the target,
    a trusted and certain mask, no accepted peak yet, or ``after=0`` never count."""
    memory = SimpleNamespace(peaks=[0.8, 0.6], mean_peak=lambda: 0.7)  # under 0.35: the DCF lost it
    target = SimpleNamespace(memory=memory)

    def lost(trusted, uncertain, peak, after=2, peaks=True):
        tracker = SimpleNamespace(cfg=preset("lite").replace(**{"redetection.after": after,
                                                                "redetection.min_peak": 0.5}))
        target.memory.peaks = [0.8, 0.6] if peaks else []
        return SAMNTracker._lost(tracker, target, Decision(uncertain, trusted, None, None, None), peak)

    assert lost(trusted=False, uncertain=False, peak=0.3)
    assert lost(trusted=False, uncertain=True, peak=0.3)
    assert lost(trusted=True, uncertain=True, peak=0.3)     # trusted, yet kept out of the memories
    assert not lost(trusted=False, uncertain=False, peak=0.4)  # the DCF still sees it
    assert not lost(trusted=True, uncertain=True, peak=0.4)
    assert not lost(trusted=True, uncertain=False, peak=0.1)
    assert not lost(trusted=False, uncertain=False, peak=0.1, after=0)
    assert not lost(trusted=False, uncertain=False, peak=0.1, peaks=False)
