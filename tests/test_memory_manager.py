"""The memory-update policy on its own: the uncertainty gate, the mask plausibility check,
and what each frame writes into the appearance memory and the DCF."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samn_tracker.config import preset
from samn_tracker.memory_manager import MemoryManager
from samn_tracker.model.appearance_memory import MemoryEntry
from samn_tracker.regions import MaskCounts, box_to_mask
from tests.conftest import pixel_mean

SHAPE = (100, 120)
BOX = np.array([40.0, 30.0, 20.0, 16.0])
CENTRE = (BOX[0] + (BOX[2] - 1) / 2, BOX[1] + (BOX[3] - 1) / 2)


def entry(frame: int) -> MemoryEntry:
    return MemoryEntry(torch.zeros(4, 6), torch.zeros(8, 6), frame)


def manager(**changes) -> MemoryManager:
    return MemoryManager(preset("lite").replace(**changes), entry(0))


def mask_at(dx: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return box_to_mask(np.array([BOX[0] + dx, BOX[1], BOX[2] * scale, BOX[3] * scale]), SHAPE)


def decide(m: MemoryManager, frame: int, peak: float, mask: np.ndarray, centre, tuned: bool = False):
    return m.decide(frame, peak, MaskCounts.of(mask), BOX, centre, tuned_decoder=tuned)


def test_uncertain_frames_write_nothing_and_their_peaks_stay_out_of_the_queue():
    m = manager(**{"uncertainty.threshold": 2.0})
    first = decide(m, 1, 0.8, mask_at(), CENTRE)          # empty queue: accepted
    assert not first.uncertain and first.appearance == "last" and first.dcf_label is not None
    low = decide(m, 2, 0.3, mask_at(), CENTRE)            # 0.8 / 0.3 > 2
    assert low.uncertain and low.appearance is None and low.dcf_label is None
    assert list(m.peaks) == [0.8]
    assert decide(m, 3, 0.0, mask_at(), CENTRE).uncertain
    assert not decide(m, 4, 0.5, mask_at(), CENTRE).uncertain
    assert list(m.peaks) == [0.8, 0.5]


def test_without_the_dcf_or_the_gate_no_frame_is_uncertain():
    no_dcf = manager(use_dcf=False)
    decision = decide(no_dcf, 1, 0.0, mask_at(), None)
    assert not decision.uncertain and decision.dcf_label is None and not no_dcf.peaks
    no_gate = manager(**{"uncertainty.enabled": False})
    decide(no_gate, 1, 1.0, mask_at(), CENTRE)
    assert not decide(no_gate, 2, 1e-6, mask_at(), CENTRE).uncertain


def test_implausible_masks_are_not_memorised_and_the_dcf_learns_at_its_own_peak():
    m = manager()
    trusted = decide(m, 1, 1.0, mask_at(dx=3), CENTRE)
    assert trusted.trusted and trusted.dcf_label == pixel_mean(mask_at(dx=3))
    for mask in (mask_at(dx=3 * BOX[2]), mask_at(scale=2.0), np.zeros(SHAPE, bool)):
        decision = decide(m, 2, 1.0, mask, CENTRE)
        assert not decision.trusted and decision.appearance is None and decision.dcf_label == CENTRE
    unchecked = decide(manager(**{"mask_check.enabled": False}), 1, 1.0, np.zeros(SHAPE, bool), CENTRE)
    assert unchecked.trusted and unchecked.dcf_label == CENTRE


def test_a_dcf_left_behind_does_not_overrule_a_tuned_mask_that_follows_the_target():
    """drift-chicane's second frame: the DCF's peak stayed where the car started, the mask
    moved on with it, by less than ``max_centre_shift`` x sqrt(w h) of the previous box. By
    default (``near="auto"``) that mask is kept when a decoder tuned on the target made it."""
    reach = 0.5 * float(np.sqrt(BOX[2] * BOX[3]))  # 8.9 pixels
    behind = (CENTRE[0] - 1.5 * reach, CENTRE[1])
    followed, jumped, at_peak = mask_at(dx=0.8 * reach), mask_at(dx=2.5 * reach), mask_at(dx=-1.5 * reach)

    def kept(near: str, mask: np.ndarray, tuned: bool) -> bool:
        return decide(manager(**{"mask_check.near": near}), 1, 1.0, mask, behind, tuned).trusted

    assert kept("auto", followed, tuned=True) and not kept("auto", followed, tuned=False)
    assert kept("peak_or_previous", followed, tuned=False)
    assert not kept("peak", followed, tuned=True)
    for near in ("peak", "peak_or_previous", "auto"):
        assert not kept(near, jumped, tuned=True)
        assert kept(near, at_peak, tuned=False)


@pytest.mark.parametrize("refused_box, tuned, empty, follows", [
    ("auto", True, False, False), ("auto", True, True, True), ("auto", False, False, True),
    ("auto", False, True, True), ("stay", True, True, False), ("stay", False, False, False),
    ("peak", True, False, True), ("peak", True, True, True)])
def test_a_refused_mask_leaves_the_box_at_the_peak_or_where_it_was(refused_box, tuned, empty, follows):
    """soccerball (mask init, seed 1): the ball jumps, the tuned decoder finds nothing where
    the box stayed, and the box must follow the DCF's peak to find it again; a tuned target's
    non-empty refused mask keeps its box ("auto"), since there the DCF is what lost it."""
    peak = (CENTRE[0] - 30.0, CENTRE[1])
    mask = np.zeros(SHAPE, bool) if empty else mask_at(dx=3 * BOX[2])
    decision = decide(manager(**{"mask_check.refused_box": refused_box}), 1, 1.0, mask, peak, tuned)
    assert not decision.trusted and decision.dcf_label == peak
    assert decision.moved_to == (peak if follows else None)


def test_only_the_dcf_peak_confirms_a_run_of_growing_masks():
    """car-roundabout's last frames: a mask spread over the car and its neighbour, near the
    previous target and not the peak, is not taken for a target that grew."""
    reach = 0.5 * float(np.sqrt(BOX[2] * BOX[3]))
    behind = (CENTRE[0] - 1.5 * reach, CENTRE[1])
    m = manager()
    assert [decide(m, f, 1.0, centred(1.5), behind, tuned=True).trusted for f in range(1, 7)] == [False] * 6
    assert [decide(m, f, 1.0, centred(1.5), CENTRE, tuned=True).trusted for f in range(7, 10)] == [False, False, True]


def centred(scale: float, dx: float = 0.0) -> np.ndarray:
    """A mask ``scale`` times the target's sides, centred on it (moved by ``dx``)."""
    w, h = BOX[2] * scale, BOX[3] * scale
    return box_to_mask(np.array([CENTRE[0] + dx - (w - 1) / 2, CENTRE[1] - (h - 1) / 2, w, h]), SHAPE)


def trusted(m: MemoryManager, masks, tuned: bool = False) -> list[bool]:
    return [decide(m, frame, 1.0, mask, CENTRE, tuned).trusted for frame, mask in enumerate(masks, 1)]


def test_a_target_that_keeps_growing_fast_is_trusted_after_a_few_alike_masks():
    big, bigger = centred(1.5), centred(2.2)  # 2.25x and 4.8x the area; their boxes' IoU 0.46
    assert trusted(manager(), [big] * 4) == [False, False, True, False]
    assert trusted(manager(**{"mask_check.accept_growth_after": 2}), [big] * 4) == [False, True, False, True]
    # a run is of alike masks near the DCF peak, in a row
    assert trusted(manager(), [big, big, bigger, bigger, bigger]) == [False] * 4 + [True]
    assert trusted(manager(), [big, big, centred(1.0), big, big, big]) == [False, False, True, False, False, True]
    assert trusted(manager(), [big, big, np.zeros(SHAPE, bool), big, big]) == [False] * 5
    assert trusted(manager(), [big, big, centred(1.5, dx=3 * BOX[2]), big, big]) == [False] * 5


def test_a_tuned_target_that_keeps_shrinking_fast_is_trusted_after_a_few_alike_masks():
    """parkour: a mask that had spread was trusted as growth, and the right masks after it, a
    half of that box, were refused as shrinks for 15 frames; a run of them is the target.
    From a box the shared decoder's smaller masks stay refused: the box given counts."""
    small = centred(0.6)  # 0.36x the area
    assert trusted(manager(), [small] * 4, tuned=True) == [False, False, True, False]
    assert not any(trusted(manager(), [small] * 6, tuned=False))
    assert trusted(manager(**{"mask_check.accept_shrink_after": 2}), [small] * 4, tuned=True) == [False, True, False, True]
    # a run is of masks that all shrank, or all grew: a growth run does not finish a shrink run
    big = centred(1.5)
    assert trusted(manager(), [small, small, big, big, big], tuned=True) == [False] * 4 + [True]
    assert trusted(manager(), [big, big, small, small, small], tuned=True) == [False] * 4 + [True]


def test_masks_that_resize_far_from_the_peak_or_where_runs_are_off_are_never_trusted():
    for tuned in (False, True):
        assert not any(trusted(manager(), [centred(1.5, dx=3 * BOX[2])] * 6, tuned))
        assert not any(trusted(manager(), [centred(0.6, dx=3 * BOX[2])] * 6, tuned))
        assert not any(trusted(manager(**{"mask_check.accept_growth_after": 0}), [centred(1.5)] * 6, tuned))
        assert not any(trusted(manager(**{"mask_check.accept_shrink_after": 0}), [centred(0.6)] * 6, tuned))


@pytest.mark.parametrize("interval, last_frame, last_every, expected", [
    (5, True, 1, {5: "sampled", 10: "sampled", 3: "last"}),
    (5, False, 1, {5: "sampled", 3: None}),
    (0, True, 1, {5: "last", 10: "last"}),
    (0, False, 1, {5: None}),
    (5, True, 2, {5: "sampled", 6: "last", 7: None, 8: "last", 9: None, 10: "sampled"}),
    (5, False, 2, {6: None, 10: "sampled"}),
])
def test_sampled_every_interval_frames_else_the_temporary_last_entry(interval, last_frame, last_every, expected):
    m = manager(**{"memory.interval": interval, "memory.last_frame": last_frame,
                   "memory.last_frame_interval": last_every})
    assert {frame: m.appearance_write(frame) for frame in expected} == expected


def test_lite_bounds_its_memory_beyond_the_longest_davis_video_and_paper_does_not():
    """``lite`` keeps at most 20 sampled entries: all of a 104-frame video's (DAVIS's longest,
    sampled every 5th frame), the 20 newest of a longer one; ``paper`` keeps every one."""
    def sampled_after(config_name: str, frames: int) -> list[int]:
        m = MemoryManager(preset(config_name), entry(0))
        for frame in range(1, frames):
            decision = decide(m, frame, 1.0, mask_at(), CENTRE)
            m.memorise(entry(frame), decision.appearance)
        return [e.frame for e in m.appearance.sampled]

    assert sampled_after("lite", 104) == list(range(5, 104, 5))  # 20 entries, none evicted
    assert sampled_after("lite", 300) == list(range(200, 300, 5))
    assert len(sampled_after("paper", 300)) == 59


def test_writes_follow_the_decision_and_the_memory_policy():
    m = manager(**{"memory.interval": 2, "memory.max_entries": 1, "memory.keep_first": True})
    for frame in range(1, 6):
        decision = decide(m, frame, 1.0, mask_at(), CENTRE)
        m.memorise(entry(frame), decision.appearance)
    assert [e.frame for e in m.appearance.entries()] == [0, 4, 5]
    assert len(m) == 3
    keys, values = m.read()
    assert keys.shape == (1, 4, 18) and values.shape == (1, 8, 18)
    m.replace_first(entry(0))
    assert m.appearance.first.frame == 0


# --- the gate's queue, an elongated target, a mask that is not its box (mutation audit) ---

def gate(m: MemoryManager, peaks: list[float]) -> list[bool]:
    mask = box_to_mask(BOX, SHAPE)
    return [decide(m, frame, peak, mask, CENTRE).uncertain for frame, peak in enumerate(peaks, 1)]


def test_the_uncertainty_queue_keeps_its_last_peaks_and_gates_on_their_mean():
    m = manager(**{"uncertainty.threshold": 2.0, "uncertainty.queue_length": 2})
    # the queue [4, 4]: 4 / 2.1 = 1.9 (all three peaks: 4.33 / 2.1 = 2.06)
    assert gate(m, [5.0, 4.0, 4.0, 2.1]) == [False] * 4 and list(m.peaks) == [4.0, 2.1]
    m = manager(**{"uncertainty.threshold": 2.0})
    assert gate(m, [1.0, 4.0, 1.5]) == [False] * 3  # the mean: 2.5 / 1.5 = 1.67 (the last peak: 2.67)


def test_an_elongated_targets_reach_is_from_sqrt_w_h():
    previous = np.array([40.0, 30.0, 4.0, 64.0])  # reach 0.5 sqrt(4 x 64) = 8
    mask = MaskCounts.of(box_to_mask([46.0, 30.0, 4.0, 64.0], SHAPE))  # 6 pixels to the right
    assert manager().decide(1, 1.0, mask, previous, (previous[0] + 1.5, previous[1] + 31.5)).trusted


def test_the_dcf_label_is_the_masks_centroid_not_its_boxs_centre():
    mask = box_to_mask(BOX, SHAPE)
    mask[38:46, 50:60] = False  # an L: the same box
    ys, xs = np.nonzero(mask)
    decision = decide(manager(), 1, 1.0, mask, CENTRE)
    assert decision.trusted and decision.dcf_label == pytest.approx((xs.mean(), ys.mean()))
