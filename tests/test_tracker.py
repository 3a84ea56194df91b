"""The tracker end to end on real DAVIS frames, its determinism and its input checks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from samn_tracker.config import preset
from samn_tracker.errors import InputError
from samn_tracker.edge_snap import snap_to_edges
from samn_tracker.regions import MaskCounts, mask_to_box
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.tracker import Prediction, SAMNTracker

from conftest import SHORT_TUNING, read_boxes

SMALL = preset("lite").replace(crop_size=128, **SHORT_TUNING)


@pytest.fixture(scope="module")
def tracker() -> SAMNTracker:
    return SAMNTracker(SMALL, device="cpu")


@pytest.fixture(scope="module")
def car(davis_root):
    seq = davis_sequence(davis_root, "car-roundabout")
    return [seq.image(i) for i in range(6)], read_boxes(davis_root, "car-roundabout"), seq


def run(tracker, frames, region):
    preds = [tracker.initialize(frames[0], region)]
    preds += [tracker.track(f) for f in frames[1:]]
    return preds


def test_tracks_real_frames_with_a_box_and_reports_consistent_outputs(tracker, car):
    frames, boxes, _ = car
    preds = run(tracker, frames, boxes[0])
    h, w = frames[0].shape[:2]
    for p in preds:
        assert p.mask.shape == (h, w) and p.mask.dtype == bool
        assert p.box.shape == (4,) and np.all(np.isfinite(p.box)) and p.box[2] > 0 and p.box[3] > 0
        assert p.polygon.shape == (4, 2)
        assert 0.0 <= p.confidence <= 1.0
        assert p.probability is None  # kept only with ``probability_maps`` (DAVIS results)
    # The first prediction is the initialisation: inside the (slightly dilated) given box.
    x, y, bw, bh = boxes[0]
    ys, xs = np.nonzero(preds[0].mask)
    assert xs.min() >= x - 0.1 * bw and xs.max() <= x + 1.1 * bw
    assert set(tracker.timings) >= {"crop", "query_encoder", "dcf", "memory_read", "decoder",
                                    "memory_write"}


def test_the_rotated_box_is_worked_out_when_read_and_once(tracker, car, monkeypatch):
    """A prediction's polygon costs a contour trace: it is worked out on first reading,
    from the prediction's own mask, and kept; a refused mask's polygon is the box's corners."""
    from samn_tracker import regions

    frames, boxes, _ = car
    traced = []
    real = regions.mask_to_rotated_box
    monkeypatch.setattr(regions, "mask_to_rotated_box", lambda *a, **k: traced.append(1) or real(*a, **k))
    preds = run(tracker, frames, boxes[0])
    from_mask = [p for p in preds if p.from_mask]
    assert from_mask and not traced  # tracking traced no contour
    first = from_mask[-1].polygon
    assert from_mask[-1].polygon is first and len(traced) == 1
    np.testing.assert_array_equal(first, real(from_mask[-1].mask, box=from_mask[-1].box))
    refused = Prediction(mask=np.zeros((4, 6), bool), box=np.array([1.0, 1.0, 2.0, 2.0]), confidence=0.0,
                         uncertain=True, from_mask=False)
    np.testing.assert_array_equal(refused.polygon, regions.box_to_polygon(refused.box))


def test_same_seed_gives_identical_results_and_reinitialisation_resets(tracker, car):
    frames, boxes, _ = car
    first = run(tracker, frames, boxes[0])
    again = run(tracker, frames, boxes[0])
    other = SAMNTracker(SMALL, device="cpu", seed=0)
    third = run(other, frames, boxes[0])
    for a, b, c in zip(first, again, third):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.mask, c.mask)
        np.testing.assert_allclose(a.box, c.box)
        assert a.confidence == pytest.approx(c.confidence)


@pytest.mark.parametrize("seed", [None, "3", 1.5, -1, 2 ** 64])
def test_a_seed_that_is_not_a_usable_integer_is_refused_at_once(seed):
    """Such seeds built a tracker, whose first ``initialize`` then failed inside numpy or torch."""
    with pytest.raises(InputError, match=r"seed .* is not an integer from 0 to 2\*\*64 - 1"):
        SAMNTracker(SMALL, device="cpu", seed=seed)


def test_a_numpy_integer_seed_is_that_seed(tracker, car):
    """``seed=np.int64(0)`` (a seed drawn from an array) failed in the DCF's torch generator."""
    frames, boxes, _ = car
    drawn = SAMNTracker(SMALL, device="cpu", seed=np.int64(0))
    for a, b in zip(run(drawn, frames[:3], boxes[0]), run(tracker, frames[:3], boxes[0])):
        np.testing.assert_array_equal(a.mask, b.mask)


def test_mask_and_polygon_initialisations(tracker, car, davis_root):
    frames, boxes, seq = car
    gt = seq.groundtruth[0]
    pred = tracker.initialize(frames[0], gt)
    np.testing.assert_array_equal(pred.mask, gt)
    x, y, w, h = boxes[0]
    polygon = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    assert tracker.initialize(frames[0], polygon.reshape(-1)).mask.any()
    assert tracker.track(frames[1]).box.shape == (4,)


@pytest.mark.parametrize("region, words", [
    (np.array([10, 10, 0, 20]), "box"),
    (np.array([5000, 5000, 20, 20]), "box"),
    (np.array([np.nan, 1, 2, 3]), "box"),
    (np.array([1, 2, 3]), "region"),
    (np.array([100, 100, 0.4, 0.4]), "box .* covers no pixel"),
    # two corners were read as x, y, w, h: a silently other box
    ([[200, 100], [400, 250]], r"is 2 points: a polygon needs at least 3, and a box is 4 numbers x, y, w, h"),
    ({"x": 1, "y": 2}, "neither a box, a polygon nor a mask"),        # was a TypeError from numpy
    ([[1, 2, 3], [4, 5]], "neither a box, a polygon nor a mask"),     # was a ValueError from numpy
    (None, "neither a box, a polygon nor a mask"),
])
def test_bad_initial_regions_name_the_input(tracker, car, region, words):
    frames, _, _ = car
    with pytest.raises(InputError, match=words):
        tracker.initialize(frames[0], region)


def test_a_mask_read_as_a_colour_image_is_a_mask(tracker, car, davis_root):
    """``cv2.imread`` of a mask file gives H x W x 3: the object is its non-zero pixels, the
    same target as the one-channel mask's, not a polygon of its values."""
    frames, _, _ = car
    annotation = cv2.imread(str(davis_root / "Annotations" / "480p" / "car-roundabout" / "00000.png"))
    assert annotation.ndim == 3
    from_colour = tracker.initialize(frames[0], annotation)
    from_gray = tracker.initialize(frames[0], annotation[:, :, 0] > 0)
    np.testing.assert_array_equal(from_colour.box, from_gray.box)
    np.testing.assert_array_equal(from_colour.mask, from_gray.mask)


def test_text_regions_and_frames_of_another_size_are_refused_in_words(tracker, car):
    frames, boxes, _ = car
    with pytest.raises(InputError, match="is text"):
        tracker.initialize(frames[0], "127,73,383,312")
    for wrong in (np.zeros((240, 427), np.uint8), np.zeros((854, 480), np.uint8), np.zeros((240, 427, 3), np.uint8)):
        with pytest.raises(InputError, match=r"initial mask has shape .* the image is \(480, 854\)"):
            tracker.initialize(frames[0], wrong)
    tracker.initialize(frames[0], boxes[0])
    half = frames[1][::2, ::2]
    with pytest.raises(InputError, match=r"frame 1 is 427x240, the target's first frame 854x480"):
        tracker.track(half)
    assert tracker.track(frames[1]).box.shape == (4,)  # the refused frame changed nothing
    assert tracker.step([], []) == []
    (a, _), = tracker.start_all([frames[0]], [boxes[0]])
    with pytest.raises(ValueError, match="twice in one step"):
        tracker.step([a, a], [frames[1], frames[2]])
    assert a.frame == 0


def test_a_failed_initialisation_leaves_nothing_to_track(tracker, car):
    """A video loop that went on after ``initialize`` refused a box tracked the earlier video's
    object in the new frames, silently."""
    frames, boxes, _ = car
    tracker.initialize(frames[0], boxes[0])
    with pytest.raises(InputError, match="lies entirely outside"):
        tracker.initialize(frames[0], [5000, 5000, 20, 20])
    with pytest.raises(RuntimeError, match=r"track\(\) called before initialize\(\) \(or after one that failed\)"):
        tracker.track(frames[1])
    assert tracker.memory is None and tracker.memory_entries == 0


def test_empty_or_misshaped_mask_is_refused(tracker, car):
    frames, _, _ = car
    h, w = frames[0].shape[:2]
    with pytest.raises(InputError, match="empty"):
        tracker.initialize(frames[0], np.zeros((h, w), bool))
    with pytest.raises(InputError, match="shape"):
        tracker.initialize(frames[0], np.ones((h // 2, w), bool))
    with_nan = np.zeros((h, w))
    with_nan[100:200, 300:400] = 1.0
    with_nan[0, :2] = np.nan  # was object: the box grew to the frame's corner
    with pytest.raises(InputError, match="initial mask has 2 NaN values: give 0 for the background"):
        tracker.initialize(frames[0], with_nan)


def test_grayscale_and_rgba_frames_are_accepted(tracker, car):
    frames, boxes, _ = car
    gray = frames[0].mean(axis=2).astype(np.uint8)
    rgba = np.dstack([frames[1], np.full(frames[1].shape[:2], 255, np.uint8)])
    tracker.initialize(gray, boxes[0])
    assert tracker.track(rgba).mask.shape == gray.shape


def test_a_frame_that_is_not_pixels_says_what_to_give(tracker, car, davis_root):
    """A file name given to ``track`` was refused as ``must be H x W ..., got shape ()``."""
    frames, boxes, _ = car
    tracker.initialize(frames[0], boxes[0])
    path = str(davis_root / "JPEGImages" / "480p" / "car-roundabout" / "00001.jpg")
    for wrong in (path, None):
        with pytest.raises(InputError, match=r"frame 1 is a (str|NoneType), not an array of pixels: give an RGB "
                                              r"H x W x 3 uint8 array \(datasets.read_image reads an image file\)"):
            tracker.track(wrong)
    assert tracker.track(frames[1]).mask.shape == frames[1].shape[:2]


def test_a_channels_first_tensor_is_refused_with_the_fix(tracker, car):
    """torchvision's ``read_image`` gives 3 x H x W: the error says to put the channels last,
    and the frame so permuted tracks."""
    import torch

    frames, boxes, _ = car
    chw = torch.from_numpy(frames[0]).permute(2, 0, 1)
    with pytest.raises(InputError, match=r"got shape \(3, 480, 854\); channels first\? put them last "
                                         r"\(tensor.permute\(1, 2, 0\)\)"):
        tracker.initialize(chw, boxes[0])
    np.testing.assert_array_equal(tracker.initialize(chw.permute(1, 2, 0), boxes[0]).mask,
                                  tracker.initialize(frames[0], boxes[0]).mask)


def test_pillow_frames_whose_numbers_are_not_rgb_track_as_their_rgb(tracker, car):
    """A palette frame (a GIF's) read as its indices, one gray channel, and a CMYK frame as
    its C, M, Y: both tracked silently on other pixels."""
    from PIL import Image

    frames, boxes, _ = car
    for mode in ("P", "CMYK"):
        pillow = [Image.fromarray(frame).convert(mode) for frame in frames[:2]]
        rgb = [np.asarray(image.convert("RGB")) for image in pillow]
        ours = run(tracker, pillow, boxes[0])
        theirs = run(tracker, rgb, boxes[0])
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.mask, b.mask)
            np.testing.assert_array_equal(a.box, b.box)
            assert a.confidence == b.confidence


def test_frames_and_boxes_stacked_in_arrays_start_as_lists_do(tracker, car):
    """``start_all(np.stack(frames), boxes)`` failed with numpy's 'truth value of an array
    with more than one element is ambiguous' (and ``step`` on no targets and no frames, with
    'of an empty array')."""
    frames, boxes, _ = car
    stacked = tracker.start_all(np.stack(frames[:2]), np.array(boxes[:2]))
    listed = tracker.start_all(frames[:2], list(boxes[:2]))
    for (_, a), (_, b) in zip(stacked, listed):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.box, b.box)
    assert tracker.start_all(np.zeros((0, 480, 854, 3), np.uint8), np.zeros((0, 4))) == []
    assert tracker.step([], np.zeros((0, 480, 854, 3), np.uint8)) == []


def test_uncertain_frames_do_not_enter_the_memories(car):
    frames, boxes, _ = car
    cfg = SMALL.replace(**{"uncertainty.threshold": 0.0, "memory.interval": 1,
                           "mask_check.enabled": False})
    t = SAMNTracker(cfg, device="cpu")
    t.initialize(frames[0], boxes[0])
    first = t.track(frames[1])            # empty queue: accepted, memorised
    assert not first.uncertain
    later = [t.track(f) for f in frames[2:]]
    # With threshold 0 every later frame is uncertain: no new sampled memory entries.
    assert all(p.uncertain for p in later)
    assert [e.frame for e in t.memory.appearance.entries()] == [0, 1]


def test_masks_that_jump_or_change_size_abruptly_are_not_trusted(tracker, car):
    frames, boxes, _ = car
    previous = tracker.initialize(frames[0], boxes[0]).box
    h, w = frames[0].shape[:2]
    x, y, bw, bh = previous
    centre = (x + (bw - 1) / 2, y + (bh - 1) / 2)

    def mask_of(box):
        from samn_tracker.regions import box_to_mask
        return box_to_mask(np.array(box), (h, w))

    def agrees(mask):
        from samn_tracker.regions import mask_to_box
        return tracker.memory.mask_agrees(mask_to_box(mask), previous, centre)

    assert agrees(mask_of([x + 5, y + 3, bw, bh]))
    assert not agrees(mask_of([x + 2 * bw, y, bw, bh]))      # jumped
    assert not agrees(mask_of([x, y, 2 * bw, 2 * bh]))       # 4x area
    assert not agrees(np.zeros((h, w), bool))                # empty


def test_a_given_masks_thin_lines_do_not_set_the_target_box(tracker, car):
    """A kite's lines drawn into the car's mask: the frame-0 output is the mask as given,
    but the crops, the DCF and the size check follow the car alone; a box or polygon, which
    has no lines, keeps its whole extent."""
    frames, boxes, seq = car
    gt = seq.groundtruth[0].copy()
    car_box = mask_to_box(gt)
    x, y = int(car_box[0] + car_box[2] // 2), int(car_box[1])
    cv2.line(gt.view(np.uint8), (x, y), (x + 150, 0), 1, thickness=2)
    lined_box = mask_to_box(gt)
    assert lined_box[3] > car_box[3] + 50
    pred = tracker.initialize(frames[0], gt)
    np.testing.assert_array_equal(pred.mask, gt)
    np.testing.assert_array_equal(pred.box, lined_box)
    np.testing.assert_array_equal(tracker.target.box, car_box)
    whole = SAMNTracker(SMALL.replace(initial_box_thin=0), device="cpu")
    whole.initialize(frames[0], gt)
    np.testing.assert_array_equal(whole.target.box, lined_box)
    tracker.initialize(frames[0], lined_box)
    np.testing.assert_array_equal(tracker.target.box, lined_box)


def test_the_mask_check_is_told_which_targets_have_a_tuned_decoder(car, davis_root, monkeypatch):
    """``mask_check.near="auto"`` keeps a mask near the previous target against the DCF only
    for a target whose decoder was tuned on its first mask: here a box start tunes nothing."""
    from samn_tracker.datasets.davis import read_annotation
    from samn_tracker.memory_manager import MemoryManager

    frames, boxes, _ = car
    first_mask = read_annotation(davis_root / "Annotations/480p/car-roundabout/00000.png", 2016) > 0
    told = []
    real = MemoryManager.decide
    monkeypatch.setattr(MemoryManager, "decide",
                        lambda self, *args, **kwargs: told.append(kwargs["tuned_decoder"]) or real(self, *args, **kwargs))
    tracker = SAMNTracker(SMALL.replace(**{"tuning.from_box": False}), device="cpu")
    run(tracker, frames[:3], boxes[0])
    run(tracker, frames[:3], first_mask)
    assert told == [False, False, True, True]


@pytest.mark.parametrize("refused_box, tuned, untuned", [
    ("auto", "unless_empty", "moves"), ("peak", "moves", "moves"), ("stay", "stays", "stays")])
def test_after_a_refused_mask_the_box_stays_or_goes_to_the_dcf_peak(car, davis_root, monkeypatch,
                                                                     refused_box, tuned, untuned):
    """Every mask refused: the target box keeps its place, or moves to the DCF's peak at the
    same size (``mask_check.refused_box``; "auto" keeps a tuned target's unless its mask is
    empty: here a start from a mask, a box start being left untuned)."""
    from samn_tracker.datasets.davis import read_annotation
    from samn_tracker.memory_manager import MemoryManager

    frames, boxes, _ = car
    first_mask = read_annotation(davis_root / "Annotations/480p/car-roundabout/00000.png", 2016) > 0
    monkeypatch.setattr(MemoryManager, "mask_agrees", lambda self, *args, **kwargs: False)
    t = SAMNTracker(SMALL.replace(**{"mask_check.refused_box": refused_box, "tuning.from_box": False,
                                     "edges.radius": 0}), device="cpu")  # unsnapped: the masks the policy saw
    for region, rule in ((first_mask, tuned), (boxes[0], untuned)):
        t.initialize(frames[0], region)
        start = t.target.box.copy()
        masks = []
        for frame in frames[1:]:
            before = t.target.box.copy()
            pred = t.track(frame)
            assert not pred.from_mask
            np.testing.assert_allclose(pred.box, t.target.box)
            np.testing.assert_allclose(t.target.box[2:], start[2:])
            masks.append(pred.mask.any())
            if rule == "stays" or (rule == "unless_empty" and masks[-1]):
                np.testing.assert_array_equal(t.target.box, before)
            elif rule == "unless_empty":
                assert not np.array_equal(t.target.box, before)
        if rule == "unless_empty":  # this car's frames have both
            assert any(masks) and not all(masks)
        if rule == "moves":
            assert np.abs(t.target.box[:2] - start[:2]).max() > 2


def test_a_refused_masks_frame_reports_a_lower_confidence(car, monkeypatch):
    """``mask_check.refused_confidence`` scales the confidence of the frames whose mask was
    refused, and nothing else: the same boxes, the same confidence where the mask was used."""
    from samn_tracker.memory_manager import MemoryManager

    frames, boxes, _ = car
    runs = {}
    for factor in (1.0, 0.3):
        verdicts = iter([True, False] * len(frames))  # every second mask refused
        monkeypatch.setattr(MemoryManager, "mask_agrees", lambda self, *args, **kwargs: next(verdicts))
        cfg = preset("lite").replace(**SHORT_TUNING, **{"mask_check.refused_confidence": factor})
        runs[factor] = run(SAMNTracker(cfg, device="cpu"), frames, boxes[0])[1:]  # SMALL's crop loses this car
    refused = [not p.from_mask for p in runs[1.0]]
    assert any(refused) and not all(refused)
    for whole, scaled, was_refused in zip(runs[1.0], runs[0.3], refused):
        np.testing.assert_array_equal(whole.box, scaled.box)
        assert scaled.from_mask == whole.from_mask
        assert scaled.confidence == pytest.approx(whole.confidence * (0.3 if was_refused else 1.0), abs=1e-12)
    assert any(p.confidence > 0 for p, r in zip(runs[1.0], refused) if r)


def test_only_the_output_masks_are_snapped_to_the_frames_edges(car):
    """``edges`` changes the predictions' masks and their boxes alone: the memory policy, the
    tracker's box and so every later frame are the unsnapped tracker's."""
    frames, _, seq = car
    cfg = preset("lite").replace(**SHORT_TUNING)  # SMALL's crop loses this car
    snapping = SAMNTracker(cfg, device="cpu")
    plain = SAMNTracker(cfg.replace(**{"edges.radius": 0}), device="cpu")
    snapped, unsnapped = run(snapping, frames, seq.groundtruth[0]), run(plain, frames, seq.groundtruth[0])
    for frame, s, p in zip(frames[1:], snapped[1:], unsnapped[1:]):
        assert p.mask.any() and not p.uncertain
        assert (s.uncertain, s.from_mask, s.confidence) == (p.uncertain, p.from_mask, p.confidence)
        expected, _ = snap_to_edges(frame, p.mask, MaskCounts.of(p.mask), cfg.edges)
        np.testing.assert_array_equal(s.mask, expected)
        if s.from_mask:
            np.testing.assert_array_equal(s.box, mask_to_box(s.mask))
    assert any(not np.array_equal(s.mask, p.mask) for s, p in zip(snapped[1:], unsnapped[1:]))
    np.testing.assert_array_equal(snapping.target.box, plain.target.box)


def test_paper_preset_runs_end_to_end_with_resnet50(car):
    # No ImageNet download here: a randomly initialised ResNet-50 exercises the same path.
    frames, boxes, _ = car
    cfg = preset("paper").replace(crop_size=64, **{"model.pretrained_backbone": False,
                                                    "dcf.augment": False})
    with pytest.warns(UserWarning, match="untrained"):
        t = SAMNTracker(cfg, device="cpu")
    assert t.net.query_encoder.backbone.channels["s16"] == 1024
    preds = run(t, frames[:3], boxes[0])
    assert all(p.mask.shape == frames[0].shape[:2] and p.box.shape == (4,) for p in preds)


def test_memory_ablations_remove_what_they_name(car):
    """``memory.read=False``: the decoder gets no memory read, so what the memory holds does
    not matter; ``spatial_map="none"``: the decoder gets a zero map while the DCF still runs."""
    from samn_tracker.model.appearance_memory import MemoryEntry

    frames, boxes, _ = car

    def probabilities(cfg, scale_first_value):
        tracker = SAMNTracker(cfg.replace(probability_maps=True), device="cpu")
        tracker.initialize(frames[0], boxes[0])
        memory = tracker.memory.appearance
        memory.set_first(MemoryEntry(memory.first.key, memory.first.value * scale_first_value, 0))
        return [tracker.track(f).probability for f in frames[1:3]]

    lite = preset("lite").replace(**SHORT_TUNING)  # the crop the weights were trained at: at SMALL's the car is lost
    ablated = lite.replace(**{"memory.read": False})
    for a, b in zip(probabilities(ablated, 1.0), probabilities(ablated, 5.0)):
        np.testing.assert_array_equal(a, b)
    changed = [not np.allclose(a, b, atol=0.1)
               for a, b in zip(probabilities(lite, 1.0), probabilities(lite, 5.0))]
    assert all(changed)

    tracker = SAMNTracker(SMALL.replace(spatial_map="none"), device="cpu")
    maps = []
    decode = tracker.net.decode
    tracker.net.decode = lambda readout, query, spatial_map, size: (
        maps.append(spatial_map), decode(readout, query, spatial_map, size))[1]
    run(tracker, frames[:3], boxes[0])
    tracked = maps[1:]  # maps[0]: the first frame's box-to-segmentation, from the box itself
    assert len(tracked) == 2 and all(m.abs().max() == 0 for m in tracked) and maps[0].max() > 0
    assert tracker._target.dcf is not None and tracker.timings["dcf"] > 0


def test_backbone_keys_store_the_frames_own_features_and_weights_must_match(car, tmp_path):
    """With ``model.key_source=backbone`` every memory entry is keyed by the backbone features of
    its crop (112 channels for Lite0), and the tracker still follows the car; weights
    trained for one kind of key refuse the other."""
    import torch
    from samn_tracker import build_tracker
    from samn_tracker.weights import builtin_checkpoint, load_checkpoint
    frames, boxes, seq = car
    truth = seq.groundtruth
    tracker = build_tracker("lite", overrides={**SHORT_TUNING, "model.key_source": "backbone"})
    tracker.initialize(frames[0], truth[0])
    outputs = [tracker.track(f) for f in frames[1:]]
    assert all(e.key.shape[0] == 112 for e in tracker.memory.appearance.entries())
    ious = [(o.mask & t).sum() / max((o.mask | t).sum(), 1) for o, t in zip(outputs, truth[1:])]
    assert np.mean(ious) > 0.5, ious
    checkpoint = load_checkpoint(builtin_checkpoint("lite", preset("lite").model.memory_pass))
    checkpoint.setdefault("config", {}).setdefault("model", {})["key_source"] = "backbone"
    torch.save(checkpoint, tmp_path / "bb.pth")
    with pytest.raises(InputError, match="key_source"):
        build_tracker("lite", weights=tmp_path / "bb.pth")
    build_tracker("lite", weights=tmp_path / "bb.pth", overrides={"model.key_source": "backbone"})
