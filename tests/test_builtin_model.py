"""The shipped `lite` checkpoint segments objects it was never trained on.

The two cars are DAVIS 2016 *val* sequences, held out of the shipped recipe. The
previous built-in weights (trained on four scenes) reached a mask IoU of 0.09 / 0.11
and a box IoU of 0.50 / 0.58 on these frames; untrained heads reach less. The floors
sit well above both, below what the shipped weights reach (docs/training.md). They
measure the offline training, so first-frame tuning is off there: tuned on the first
frame, even untrained heads segment a car this easy (mask IoU 0.84 on car-shadow).
"""
from __future__ import annotations

import numpy as np
import pytest

from samn_tracker import build_tracker
from samn_tracker.config import preset
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.model.network import SAMNNetwork
from samn_tracker.regions import iou_boxes, mask_to_box
from samn_tracker.weights import builtin_checkpoint, load_checkpoint, save_checkpoint

SEQUENCES = ("car-shadow", "car-roundabout")
FRAMES = 25
MASK_IOU_FLOOR = 0.60
BOX_IOU_FLOOR = 0.70
OFFLINE = {"tuning.steps": 0}


def mean_ious(tracker, root, name: str) -> tuple[float, float]:
    """Mean mask IoU and box IoU over frames 1..FRAMES-1, initialised with the frame-0 mask."""
    sequence = davis_sequence(root, name)
    truth = sequence.groundtruth
    tracker.initialize(sequence.image(0), truth[0])
    masks, boxes = [], []
    for index in range(1, FRAMES):
        prediction = tracker.track(sequence.image(index))
        union = (prediction.mask | truth[index]).sum()
        masks.append((prediction.mask & truth[index]).sum() / max(union, 1))
        boxes.append(iou_boxes(prediction.box, mask_to_box(truth[index])))
    return float(np.mean(masks)), float(np.mean(boxes))


def test_shipped_weights_hold_out_davis16_val():
    train = load_checkpoint(builtin_checkpoint("lite"))["meta"]["train"]
    assert "davis2016-val" in train["held_out"]


@pytest.mark.parametrize("name", SEQUENCES)
def test_shipped_weights_segment_unseen_sequences(davis_root, name):
    mask_iou, box_iou = mean_ious(build_tracker("lite", device="cpu", overrides=OFFLINE), davis_root, name)
    assert mask_iou >= MASK_IOU_FLOOR and box_iou >= BOX_IOU_FLOOR, (mask_iou, box_iou)


def test_untrained_heads_stay_below_the_floor(davis_root, tmp_path):
    """The floor measures the training: the same network with untrained heads fails it."""
    config = preset("lite")
    untrained = tmp_path / "untrained.pth"
    save_checkpoint(untrained, SAMNNetwork(config.model).trained_state_dict(), config)
    mask_iou, _ = mean_ious(build_tracker("lite", weights=untrained, device="cpu", overrides=OFFLINE),
                            davis_root, SEQUENCES[0])
    assert mask_iou < MASK_IOU_FLOOR


def test_first_frame_tuning_lifts_the_masks_of_an_unseen_sequence(davis_root):
    """The default (tuned on the first mask) against the offline decoder on 20 frames of
    blackswan, a held-out val sequence: 0.87 against 0.79 mask IoU when this was written."""
    def mask_iou(overrides) -> float:
        sequence = davis_sequence(davis_root, "blackswan")
        truth = sequence.groundtruth
        tracker = build_tracker("lite", device="cpu", overrides=overrides)
        tracker.initialize(sequence.image(0), truth[0])
        outputs = [tracker.track(sequence.image(i)) for i in range(1, 21)]
        return float(np.mean([(o.mask & t).sum() / max((o.mask | t).sum(), 1)
                              for o, t in zip(outputs, truth[1:21])]))

    tuned, offline = mask_iou({}), mask_iou(OFFLINE)
    assert tuned > 0.83 and tuned > offline + 0.04, (tuned, offline)


def test_a_box_start_shows_its_segmentation_even_when_it_is_not_trusted(davis_root):
    """blackswan's swan fills 0.35 of its box (the README's command), and box-to-segmentation's
    mask fills less than ``box_init_min_fill`` of it, so the tracker does not trust it: no
    tuning, and the box stays the memory's first mask. Frame 0 still shows that segmentation
    (mask IoU 0.68 when this was written), not the filled box (0.35), and reports the box given."""
    sequence = davis_sequence(davis_root, "blackswan")
    truth = sequence.groundtruth[0]
    box = np.array([127, 73, 383, 312], dtype=np.float64)
    tracker = build_tracker("lite", device="cpu")
    first = tracker.initialize(sequence.image(0), box)
    filled = np.zeros_like(truth)
    filled[73:73 + 312, 127:127 + 383] = True

    def iou(mask) -> float:
        return (mask & truth).sum() / (mask | truth).sum()

    assert tracker.target.decoder is None
    assert first.mask.sum() < preset("lite").box_init_min_fill * filled.sum()
    assert iou(first.mask) > 0.6 > iou(filled) + 0.2
    np.testing.assert_array_equal(first.box, box)
