"""Box and DAVIS measures on hand-made inputs whose answers are worked out in the comments."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from samn_tracker.evaluation import box_measures as bm
from samn_tracker.evaluation import davis_measures as dm
from samn_tracker.errors import InputError


# ----------------------------------------------------------------------------- boxes
def test_box_iou_continuous_areas_and_image_bounds():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[5, 0, 10, 10], [0, 0, 10, 10]], float)
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150
    assert bm.box_iou(pred, gt) == pytest.approx([1 / 3, 1.0])
    # image 12 wide: the shifted box is clipped to w = 7 -> union 100 + 70 - 50 = 120
    assert bm.box_iou(pred, gt, bounds=(12, 10)) == pytest.approx([50 / 120, 1.0])
    assert pred[0, 2] == 10, "inputs must not be clipped in place (got10k's rect_iou does)"


def test_got10k_pooling_excludes_frame0_and_invisible_frames_and_uses_strict_thresholds():
    gt = np.tile([0.0, 0.0, 10.0, 10.0], (5, 1))
    # frame 0 is ignored whatever it holds; frames 1..4 have IoU 0.5, 0.8, 1.0, 0.3
    pred = np.array([[50, 50, 1, 1], [0, 0, 5, 10], [0, 0, 8, 10], [0, 0, 10, 10], [0, 0, 3, 10]], float)
    cover = np.array([8, 8, 8, 8, 0])  # frame 4 (IoU 0.3) is fully occluded
    ious = bm.got10k_sequence_ious(pred, gt, cover)
    assert ious == pytest.approx([0.5, 0.8, 1.0])
    scores = bm.got10k_scores([ious, np.array([0.5, 0.75])])  # pooled over frames of both
    assert scores.ao == pytest.approx((0.5 + 0.8 + 1.0 + 0.5 + 0.75) / 5)
    assert scores.sr50 == pytest.approx(3 / 5)   # 0.5 itself is not a success (strict >)
    assert scores.sr75 == pytest.approx(2 / 5)   # 0.75 neither
    assert scores.success_curve[0] == 1.0 and scores.success_curve[100] == 0.0
    assert scores.frames == 5


def test_got10k_fps_drops_nonpositive_times():
    assert bm.got10k_fps([np.array([0.5, 0.25, 0.0]), np.array([np.nan, 0.1])]) == pytest.approx(
        (2 + 4 + 10) / 3)
    assert bm.got10k_fps([np.zeros(3)]) == -1.0


def test_otb_curves_average_sequences():
    gt = np.tile([0.0, 0.0, 10.0, 10.0], (2, 1))
    pred = np.array([[99, 99, 1, 1], [5, 0, 10, 10]], float)  # frame 0 is replaced by GT
    success, precision = bm.otb_curves(pred, gt)
    # frame 1: IoU 1/3, centre error 5 px
    expected_success = np.where(np.linspace(0, 1, 21) < 1 / 3, 1.0, 0.5)
    expected_success[-1] = 0.0  # IoU 1 is not > 1
    assert success == pytest.approx(expected_success)
    assert precision[4] == 0.5 and precision[5] == 1.0
    scores = bm.otb_scores([(pred, gt), (gt.copy(), gt)])
    assert scores.precision_20 == 1.0
    assert scores.success_auc == pytest.approx((expected_success.mean() + 20 / 21) / 2)


def test_trackingnet_rounding_inclusive_corners_and_inclusive_thresholds():
    gt = np.array([[10, 10, 10, 10]] * 4, float)
    pred = np.array([[0, 0, 1, 1],            # replaced by GT (IoU 1)
                     [10.4, 9.6, 10.2, 9.8],  # rounds to GT exactly: IoU 1
                     [10, 10, 10, 20],        # 100 / 200 = 0.5 exactly
                     [15, 10, 10, 10]], float)  # columns 15..24 vs 10..19: 50 / 150
    iou, distance, norm = bm.trackingnet_frame_measures(pred, gt)
    assert iou == pytest.approx([1, 1, 0.5, 1 / 3])
    # centres x + (w + 1) / 2: frame 2 moves 5 px down, frame 3 5 px right (0.5 of the GT width)
    assert distance == pytest.approx([0, 0, 5, 5])
    assert norm == pytest.approx([0, 0, 0.5, 0.5])
    success, precision, norm_precision = bm.trackingnet_curves(pred, gt)
    thresholds = np.linspace(0, 1, 21)
    expected = np.mean([np.ones(21), np.ones(21), thresholds <= 0.5 + 1e-12, thresholds <= 1 / 3], axis=0)
    assert success == pytest.approx(expected)
    assert success[10] == 0.75  # IoU 0.5 counts at threshold 0.5 (>=)
    assert precision[2] == 1.0 and precision[1] == 0.5   # 5 px <= 5 px; 2.5 px misses
    assert norm_precision[20] == 1.0 and norm_precision[19] == 0.5
    scores = bm.trackingnet_scores([(pred, gt)])
    step = 0.05
    assert scores.success == pytest.approx(100 * step * (expected.sum() - (expected[0] + expected[-1]) / 2))


def test_trackingnet_missing_and_short_results_count_as_misses():
    gt = np.array([[10, 10, 10, 10]] * 4, float)
    short = gt[:2]  # two of four lines submitted
    scores = bm.trackingnet_scores([(short, gt), (None, gt)])
    # sequence 1: frames 0, 1 hit; sequence 2: only frame 0 (set to GT) hits
    assert scores.success_curve[10] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert scores.coverage == pytest.approx(100 * 3 / 8)
    assert scores.sequences == 2


def test_box_inputs_are_checked():
    with pytest.raises(InputError, match="predicted boxes"):
        bm.box_iou(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(InputError, match="2 predicted boxes for 3"):
        bm.got10k_sequence_ious(np.zeros((2, 4)), np.zeros((3, 4)))


# ----------------------------------------------------------------------------- DAVIS
def square(shape, top, left, size):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_boundary_map_of_a_square_is_the_outline_shifted_towards_the_origin():
    mask = square((6, 6), 1, 1, 3)  # rows and columns 1..3
    # a pixel is boundary if it differs from its east, south or south-east neighbour:
    # the outline of rows 0..3 x columns 0..3
    expected = np.array([[1, 1, 1, 1, 0, 0],
                         [1, 0, 0, 1, 0, 0],
                         [1, 0, 0, 1, 0, 0],
                         [1, 1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0]], bool)
    assert np.array_equal(dm.boundary_map(mask), expected)
    # last row: only the east neighbour; last column: only the south one; corner never
    edge = np.zeros((3, 3), bool)
    edge[2, 1] = edge[1, 2] = edge[2, 2] = True
    # (0,1): south-east differs; (0,2) last column: south differs; (1,0): south-east;
    # (1,1): east; (1,2): south equal; (2,0) last row: east differs; (2,1): east equal
    assert np.array_equal(dm.boundary_map(edge), [[0, 1, 1], [1, 1, 0], [1, 0, 0]])


def test_boundary_tolerance_is_ceil_of_0008_diagonal():
    assert dm.boundary_tolerance((480, 854)) == 8
    assert dm.boundary_tolerance((1080, 1920)) == 18
    assert dm.boundary_tolerance((100, 100)) == 2
    assert dm.boundary_tolerance((100, 100), tolerance=5) == 5
    assert dm.disk(2).sum() == 13  # (x, y) with x^2 + y^2 <= 4


def test_j_of_shifted_squares():
    gt = square((30, 30), 5, 5, 10)
    assert dm.region_similarity(square((30, 30), 5, 7, 10), gt) == pytest.approx(80 / 120)
    assert dm.region_similarity(np.zeros((30, 30)), np.zeros((30, 30))) == 1.0
    assert dm.region_similarity(np.zeros((30, 30)), gt) == 0.0


def test_f_of_shifted_squares_within_and_beyond_the_tolerance():
    gt = square((100, 100), 40, 40, 20)  # tolerance 2 px
    assert dm.boundary_f(gt, gt) == 1.0
    # a shift within the tolerance moves every boundary pixel by <= 2 px
    assert dm.boundary_f(square((100, 100), 40, 42, 20), gt) == 1.0
    # shift by 3: the outline is the 21 x 21 ring (80 px) of rows/columns 39..59. Of the
    # shifted ring (columns 42..62) these lie within 2 px of the original ring: top and
    # bottom rows columns 42..61 (20 each), the left column rows 40, 41, 57, 58 (4), the
    # right column none -> precision 44 / 80, and recall the same by symmetry.
    assert dm.boundary_f(square((100, 100), 40, 43, 20), gt) == pytest.approx(44 / 80)
    assert dm.boundary_f(np.zeros((100, 100)), gt) == 0.0
    assert dm.boundary_f(np.zeros((100, 100)), np.zeros((100, 100))) == 1.0


def test_f_equals_brute_force_distances_between_boundary_pixels():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = np.zeros((60, 80), bool)
        b = np.zeros((60, 80), bool)
        for mask in (a, b):
            for _ in range(3):
                y, x, h, w = rng.integers(0, 50), rng.integers(0, 70), rng.integers(3, 20), rng.integers(3, 20)
                mask[y:y + h, x:x + w] = True
        pa = np.argwhere(dm.boundary_map(a))
        pb = np.argwhere(dm.boundary_map(b))
        radius = dm.boundary_tolerance(a.shape)
        distances = cdist(pa, pb)
        precision = np.mean(distances.min(axis=1) <= radius)
        recall = np.mean(distances.min(axis=0) <= radius)
        expected = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert dm.boundary_f(a, b) == pytest.approx(expected)


def test_statistics_recall_is_strict_and_decay_uses_quarter_bins():
    values = np.arange(10) / 10.0  # 0.0 .. 0.9
    stats = dm.statistics(values)
    assert stats.mean == pytest.approx(0.45)
    assert stats.recall == pytest.approx(4 / 10)  # 0.6 .. 0.9; 0.5 itself is not > 0.5
    # n = 10: bin edges round(linspace(1, 10, 5)) - 1 = 0, 2, 5, 7, 9; bins share their ends
    assert stats.decay == pytest.approx(np.mean([0.0, 0.1, 0.2]) - np.mean([0.7, 0.8, 0.9]))


def test_decay_is_finite_beyond_255_frames():
    values = np.arange(300) / 300.0
    # edges round(linspace(1, 300, 5) + 1e-10) - 1 = 0, 75, 150, 224, 299
    expected = np.mean(values[0:76]) - np.mean(values[224:300])
    assert dm.statistics(values).decay == pytest.approx(expected)


def test_score_sequence_skips_first_and_last_frame_and_pools_per_object():
    gt_frame = np.zeros((40, 40), np.uint8)
    gt_frame[5:15, 5:15] = 1
    gt_frame[20:30, 20:30] = 2
    gt = [gt_frame] * 4
    wrong = np.zeros_like(gt_frame)
    half = gt_frame.copy()
    half[20:30, 20:25] = 0  # object 2 loses half of its pixels in frame 2
    pred = [wrong, gt_frame, half, wrong]  # frames 0 and 3 are never scored
    objects = dm.score_sequence("seq", pred, gt, [1, 2])
    assert [o.name for o in objects] == ["seq_1", "seq_2"]
    assert objects[0].j == pytest.approx([1, 1])
    assert objects[1].j == pytest.approx([1, 0.5])
    other = dm.score_sequence("b", [wrong] * 3, [gt_frame] * 3, [1])
    summary = dm.summarize(objects + other)
    assert summary.objects == 3
    assert summary.j.mean == pytest.approx((1 + 0.75 + 0) / 3)  # mean over objects
    assert summary.jf_mean == pytest.approx((summary.j.mean + summary.f.mean) / 2)
    with pytest.raises(InputError, match="at least 3 frames"):
        dm.score_sequence("short", [gt_frame] * 2, [gt_frame] * 2, [1])


# --- measures where every box had its truth's size and every truth was square (mutation audit) ---

def test_got10k_ious_clip_both_boxes_to_the_image_as_the_toolkit_does():
    from got10k.utils.metrics import rect_iou
    gt = np.array([[0, 0, 10, 10]] * 2, float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10]], float)
    ious = bm.got10k_sequence_ious(pred, gt, bounds=(12, 10))
    assert ious == pytest.approx([50 / 120])  # the prediction cut to 5..12: 7x10 over 10x10, 50 shared
    assert ious == pytest.approx(rect_iou(pred[1:].copy(), gt[1:].copy(), bound=(12, 10)))


def test_centre_error_of_boxes_of_other_sizes_is_the_toolkits():
    from got10k.utils.metrics import center_error
    assert bm.center_error([[15, 10, 30, 20]], [[10, 10, 20, 20]]) == pytest.approx([10.0])  # 29.5 vs 19.5
    rng = np.random.default_rng(0)
    a = rng.uniform([0, 0, 5, 5], [300, 200, 80, 60], (50, 4))
    b = rng.uniform([0, 0, 5, 5], [300, 200, 80, 60], (50, 4))
    np.testing.assert_allclose(bm.center_error(a, b), center_error(a.copy(), b.copy()), atol=1e-12)


def test_otb_precision_counts_an_error_of_20_pixels_and_success_an_overlap_above_half():
    gt = np.array([[0, 0, 10, 10]] * 2, float)
    assert bm.otb_scores([(np.array([[0, 0, 10, 10], [20, 0, 10, 10]], float), gt)]).precision_20 == 1.0
    wider = np.array([[0, 0, 10, 10], [0, 0, 19, 10]], float)  # IoU 100 / 190 = 0.526
    assert bm.otb_scores([(wider, gt)]).success_rate_50 == 1.0


def test_trackingnet_measures_of_boxes_that_are_not_square():
    box = np.array([[10, 10, 20, 10]] * 2, float)
    assert bm.trackingnet_frame_measures(box, box)[0] == pytest.approx([1, 1])
    gt = np.array([[10, 10, 10, 20]] * 2, float)
    pred = np.array([[10, 10, 10, 20], [15, 10, 20, 20]], float)
    _, distance, norm = bm.trackingnet_frame_measures(pred, gt)  # centres x + (w + 1) / 2: 15.5 vs 25.5
    assert distance == pytest.approx([0, 10]) and norm == pytest.approx([0, 1.0])


def test_trackingnet_precisions_are_areas_over_the_devkits_normalised_axis():
    """metrics.py: 100 * trapz(curve, linspace(0, 1, 21)) for every curve, the 0-50 px and
    0-0.5 thresholds included (shared/reference/metrics.md, 2.3)."""
    gt = np.array([[10, 10, 10, 10]] * 4, float)
    pred = np.array([[0, 0, 1, 1], [10.4, 9.6, 10.2, 9.8], [10, 10, 10, 20], [15, 10, 10, 10]], float)
    scores = bm.trackingnet_scores([(pred, gt)])
    # distances 0, 0 (rounded to the truth), 5, 5 over linspace(0, 50, 21): [.5, .5, 1 x 19]
    assert scores.precision == pytest.approx(100 * 0.05 * (20 - 0.75))
    # normalised 0, 0, .5, .5 over linspace(0, .5, 21): [.5 x 20, 1]
    assert scores.norm_precision == pytest.approx(100 * 0.05 * (11 - 0.75))


def test_toolkit_scores_a_lost_box_of_no_width_or_height_as_the_box_before():
    """calc_seq_err_robust.m: r(3) <= 0 | r(4) <= 0 takes the previous frame's box."""
    gt = np.array([[10, 10, 20, 20]] * 3, float)
    for lost in ([5, 5, 0, 20], [5, 5, 20, 0]):
        pred = np.array([[10, 10, 20, 20], [10, 10, 20, 20], lost], float)
        success, precision, _ = bm.toolkit_curves(pred, gt, [0, 0, 0])
        assert success[0] == pytest.approx(1.0) and precision[0] == pytest.approx(1.0)


def test_lasot_normalises_the_centre_error_by_the_truths_size():
    gt = np.array([[10, 10, 20, 20]] * 2, float)
    pred = np.array([[10, 10, 20, 20], [10, 10, 31, 20]], float)
    _, precision, norm = bm.toolkit_curves(pred, gt, [0, 0])
    # centres x + (w - 1) / 2: 25 against 19.5, 5.5 pixels; over the truth's width 20, 0.275
    assert precision[5] == pytest.approx(0.5) and precision[6] == pytest.approx(1.0)
    assert norm[27] == pytest.approx(0.5) and norm[28] == pytest.approx(1.0)


def test_lasot_ranks_by_precision_at_20_pixels_and_0_20_and_the_mean_success():
    """The toolkit's rank_idx = 21 is MATLAB's, 1-based: 20 pixels, 0.20; success is the
    mean of its 21 points, not a trapezoid."""
    ramp = np.arange(51) / 50
    scores = bm.toolkit_scores([(np.r_[1.0, np.zeros(20)], ramp, ramp)])
    assert scores.precision == pytest.approx(0.4) and scores.norm_precision == pytest.approx(0.4)
    assert scores.success == pytest.approx(1 / 21)


def test_davis_statistics_of_few_frames_as_db_statistics_bins_them():
    # round(linspace(1, 7, 5) + 1e-10) - 1 = 0, 2, 3, 5, 6: first bin [1, 1, 0], last [0, 0]
    assert dm.statistics(np.array([1, 1, 0, 0, 0, 0, 0.])).decay == pytest.approx(2 / 3)
    assert dm.statistics(np.array([0, 0, 1.])).mean == pytest.approx(1 / 3)  # a mean, not a median


def test_davis_summary_recall_and_decay_average_the_objects():
    objects = [dm.ObjectScores("a", 1, np.array([0.9, 0.2]), np.array([1.0, 1.0])),
               dm.ObjectScores("b", 1, np.array([0.3, 0.3]), np.array([1.0, 1.0]))]
    summary = dm.summarize(objects)
    assert summary.j.mean == pytest.approx(0.425)
    assert summary.j.recall == pytest.approx(0.25) and summary.j.decay == pytest.approx(0.35)
