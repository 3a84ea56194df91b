"""Masks snapped to the frame's edges (``edge_snap``), on real DAVIS frames and their truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from samn_tracker.config import EdgeConfig
from samn_tracker.datasets import read_image
from samn_tracker.edge_snap import _guided_filter, _whole_cells, snap_to_edges
from samn_tracker.evaluation.davis_measures import boundary_f, region_similarity
from samn_tracker.regions import MaskCounts, mask_to_box

SNAP = EdgeConfig(radius=16)


def frame_and_truth(root, name: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(root / "JPEGImages" / "480p" / name / f"{index:05d}.jpg")
    truth = cv2.imread(str(root / "Annotations" / "480p" / name / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
    return image, truth


def spilled(mask: np.ndarray, pixels: int = 10) -> np.ndarray:
    """The mask grown by ``pixels`` all round: an outline off the object's edges, past the
    DAVIS boundary measure's tolerance (F = 0)."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.view(np.uint8), disc).astype(bool)


@pytest.mark.parametrize("name", ["blackswan", "breakdance", "camel", "car-shadow", "cows", "dance-twirl"])
def test_an_outline_off_the_edges_is_pulled_onto_them(davis_root, name):
    image, truth = frame_and_truth(davis_root, name, 10)
    grown = spilled(truth)
    snapped, counts = snap_to_edges(image, grown, MaskCounts.of(grown), SNAP)
    assert region_similarity(snapped, truth) > region_similarity(grown, truth) + 0.015
    assert boundary_f(snapped, truth) > boundary_f(grown, truth) + 0.4
    np.testing.assert_array_equal(counts.box, mask_to_box(snapped))


@pytest.mark.parametrize("radius", [2, 6, 16])
def test_nothing_is_added_beyond_twice_the_radius(davis_root, radius):
    """``snap_to_edges`` filters only the mask's bounds and that margin: the filter run over the
    whole frame puts nothing beyond it either."""
    image, truth = frame_and_truth(davis_root, "car-shadow", 10)
    grown = spilled(truth)
    cfg = EdgeConfig(radius=radius)
    far = cv2.distanceTransform((~grown).view(np.uint8), cv2.DIST_L2, 5) > 2 * radius + cfg.subsample
    whole_frame = _guided_filter(image, grown, cfg) >= 0.5
    assert whole_frame.any() and not whole_frame[far].any()
    snapped, _ = snap_to_edges(image, grown, MaskCounts.of(grown), cfg)
    assert snapped[far].sum() == 0
    assert snapped.shape == grown.shape and snapped.dtype == bool


@pytest.mark.parametrize("start, stop, limit, expected", [
    (10, 23, 100, (10, 26)),   # room after: grown at the end to four cells
    (-5, 23, 100, (0, 24)),    # clipped at the frame's start, then grown
    (90, 110, 100, (88, 100)), # clipped at the frame's end: grown toward the start
    (0, 10, 10, (0, 10)),      # a frame narrower than whole cells: all of it
    (8, 16, 100, (8, 16)),     # already whole
])
def test_the_filtered_region_is_grown_to_whole_cells_inside_the_frame(start, stop, limit, expected):
    """Whole cells give OpenCV's area resize a whole-number scale (its faster path), and the
    region still holds all of the clipped [start, stop)."""
    region = _whole_cells(start, stop, 4, limit)
    assert (region.start, region.stop) == expected
    assert region.start <= max(start, 0) and region.stop >= min(stop, limit)


def test_an_empty_mask_stays_empty(davis_root):
    image, truth = frame_and_truth(davis_root, "cows", 10)
    empty = np.zeros_like(truth)
    snapped, counts = snap_to_edges(image, empty, MaskCounts.of(empty), SNAP)
    assert not snapped.any() and counts.box is None


def test_a_mask_the_filter_would_empty_is_kept_as_it_is(davis_root):
    image, truth = frame_and_truth(davis_root, "cows", 10)
    speck = np.zeros_like(truth)
    speck[200, 300] = True
    counts = MaskCounts.of(speck)
    snapped, snapped_counts = snap_to_edges(image, speck, counts, SNAP)
    assert snapped is speck and snapped_counts is counts


def test_a_mask_at_the_frame_border_is_filtered_within_the_frame(davis_root):
    image, truth = frame_and_truth(davis_root, "car-shadow", 10)
    corner = np.zeros_like(truth)
    corner[:40, :60] = True
    snapped, counts = snap_to_edges(image, corner, MaskCounts.of(corner), SNAP)
    assert snapped[:30, :50].all()
    np.testing.assert_array_equal(counts.box, mask_to_box(snapped))


def test_the_settings_are_checked():
    with pytest.raises(ValueError):
        EdgeConfig(radius=-1)
    with pytest.raises(ValueError):
        EdgeConfig(eps=0)
    with pytest.raises(ValueError):
        EdgeConfig(subsample=0)


@pytest.mark.parametrize("name", ["blackswan", "camel", "car-shadow"])
def test_the_snapped_region_ends_where_the_whole_frame_filter_does(davis_root, name):
    """Filtering only the mask's bounds and their margin on every side must give the outline
    the filter over the whole frame gives: the same box within a pixel on each side (a
    region cut short on one side moves that side's edge by several pixels)."""
    image, truth = frame_and_truth(davis_root, name, 10)
    grown = spilled(truth)
    whole_frame = _guided_filter(image, grown, SNAP) >= 0.5
    snapped, _ = snap_to_edges(image, grown, MaskCounts.of(grown), SNAP)
    a, b = np.array(mask_to_box(snapped), float), np.array(mask_to_box(whole_frame), float)
    ends = np.r_[a[:2] - b[:2], a[:2] + a[2:] - b[:2] - b[2:]]
    assert np.abs(ends).max() <= 1, ends


def test_a_radius_under_one_cell_filters_over_one_cell(davis_root):
    """The coefficients are fitted at 1/``subsample`` resolution: a radius of 1 to 3 pixels
    (subsample 4) is floored to one coarse cell, as radius 4 gives, not to a one-cell window
    that would fit nothing and hand back the mask unchanged."""
    image, truth = frame_and_truth(davis_root, "car-shadow", 10)
    grown = spilled(truth)
    one_cell = _guided_filter(image, grown, EdgeConfig(radius=4))
    for radius in (1, 2, 3):
        np.testing.assert_array_equal(_guided_filter(image, grown, EdgeConfig(radius=radius)), one_cell)
    snapped, _ = snap_to_edges(image, grown, MaskCounts.of(grown), EdgeConfig(radius=2))
    assert region_similarity(snapped, truth) > region_similarity(grown, truth)
