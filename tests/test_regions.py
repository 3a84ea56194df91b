"""Region conversions, overlaps and the VOT mask format, checked against the official toolkits."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from samn_tracker.errors import InputError
from samn_tracker.regions import (
    MaskCounts,
    box_to_mask,
    box_to_polygon,
    check_box,
    decode_vot_mask,
    encode_vot_mask,
    iou_boxes,
    is_mask,
    mask_to_box,
    mask_to_rotated_box,
    parse_region,
    polygon_to_box,
    polygon_to_mask,
)
from tests.conftest import pixel_mean

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def davis_mask(sequence: str, frame: int) -> np.ndarray:
    png = DAVIS / "Annotations" / "480p" / sequence / f"{frame:05d}.png"
    if not png.is_file():
        pytest.skip(f"DAVIS test data not found at {DAVIS} (see ../shared/data/davis16/README.md)")
    return np.array(Image.open(png)) > 0


def davis_box(sequence: str, frame: int) -> np.ndarray:
    path = DAVIS / "boxes" / f"{sequence}.txt"
    if not path.is_file():
        pytest.skip(f"DAVIS test data not found at {DAVIS} (see ../shared/data/davis16/README.md)")
    line = path.read_text().splitlines()[frame]
    return np.array([float(v) for v in line.split(",")])


def rotated_rectangle_mask(centre, size, angle, shape=(200, 300)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    corners = np.round(cv2.boxPoints((centre, size, angle))).astype(np.int32)
    cv2.fillPoly(mask, [corners], 1)
    return mask.astype(bool)


def normalised_rect(points: np.ndarray):
    """(centre, (long, short), angle of the long side in [0, 180))."""
    centre, (w, h), angle = cv2.minAreaRect(points.astype(np.float32))
    if w < h:
        w, h, angle = h, w, angle + 90
    return np.array(centre), np.array([w, h]), angle % 180


def test_box_polygon_round_trip():
    rng = np.random.default_rng(1)
    for box in rng.uniform([0, 0, 1, 1], [300, 200, 80, 60], size=(20, 4)):
        np.testing.assert_allclose(polygon_to_box(box_to_polygon(box)), box)
        np.testing.assert_allclose(polygon_to_box(box_to_polygon(box).ravel()), box)


def test_box_mask_round_trip_on_real_boxes():
    for frame in (0, 20, 49):
        box = davis_box("blackswan", frame)
        mask = box_to_mask(box, (480, 854))
        assert mask.sum() == box[2] * box[3]
        np.testing.assert_array_equal(mask_to_box(mask), box)


def test_real_mask_gives_its_annotated_box():
    for sequence, frame in (("bmx-trees", 10), ("car-shadow", 30)):
        np.testing.assert_array_equal(mask_to_box(davis_mask(sequence, frame)), davis_box(sequence, frame))


def test_a_polygon_of_too_few_or_an_odd_count_of_numbers_is_one_input_error():
    """5 numbers failed in numpy's reshape ('cannot reshape array of size 5')."""
    for numbers in ([1, 2, 3, 4, 5], [[1, 2], [3, 4]], [1, 2, 3, 4, 5, 6, 7]):
        for convert in (polygon_to_box, lambda p: polygon_to_mask(p, (10, 10))):
            with pytest.raises(InputError, match=r"a polygon needs at least 3 vertices \(x, y\), got"):
                convert(numbers)


def test_box_rasterisation_rounds_like_vot_and_clips():
    mask = box_to_mask([4.4, 2.6, 5.6, 3.2], (20, 20))
    np.testing.assert_array_equal(mask_to_box(mask), [4, 3, 6, 3])
    clipped = box_to_mask([-5, -5, 10, 8], (20, 20))
    np.testing.assert_array_equal(mask_to_box(clipped), [0, 0, 5, 3])


def test_polygon_vertices_are_inclusive_pixels():
    square = polygon_to_mask([[0, 0], [10, 0], [10, 10], [0, 10]], (20, 20))
    assert square.sum() == 121
    np.testing.assert_array_equal(mask_to_box(square), [0, 0, 11, 11])


def test_empty_masks_give_none():
    empty = np.zeros((30, 40), dtype=bool)
    assert mask_to_box(empty) is None
    assert MaskCounts.of(empty).centroid() is None
    assert mask_to_rotated_box(empty) is None
    assert mask_to_rotated_box(empty, fit=True) is None


def test_centroid_of_a_box():
    assert MaskCounts.of(box_to_mask([10, 20, 5, 3], (40, 40))).centroid() == (12.0, 21.0)


@pytest.mark.parametrize("angle", [30.0, -20.0, 75.0])
def test_rotated_rectangle_is_recovered(angle):
    centre, size = (150.3, 100.6), (90.0, 40.0)
    mask = rotated_rectangle_mask(centre, size, angle)
    found_centre, found_size, found_angle = normalised_rect(mask_to_rotated_box(mask))
    assert np.abs(found_centre - centre).max() < 1.0
    assert np.abs(found_size - size).max() < 2.0
    assert min(abs(found_angle - angle % 180), 180 - abs(found_angle - angle % 180)) < 1.5
    assert mask_iou(polygon_to_mask(mask_to_rotated_box(mask), mask.shape), mask) > 0.95


def test_fit_trims_a_protrusion_and_keeps_most_of_the_mask():
    mask = rotated_rectangle_mask((150, 100), (80, 40), 30)
    mask[98:102, 150:290] = True  # a thin arm sticking out of the body
    loose = mask_to_rotated_box(mask)
    tight = mask_to_rotated_box(mask, fit=True, keep=0.9)
    loose_area, tight_area = cv2.contourArea(loose.astype(np.float32)), cv2.contourArea(tight.astype(np.float32))
    assert tight_area < 0.75 * loose_area
    kept = np.count_nonzero(polygon_to_mask(tight, mask.shape) & mask) / mask.sum()
    assert 0.85 <= kept <= 0.97
    with pytest.raises(ValueError, match="keep"):
        mask_to_rotated_box(mask, fit=True, keep=0.0)


def test_iou_boxes_known_values_and_vectorised():
    assert iou_boxes([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert iou_boxes([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert iou_boxes([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert iou_boxes([0, 0, 10, 10], [5, 0, 10, 10], bounds=(12, 10)) == pytest.approx(50 / 120)
    many = iou_boxes([[0, 0, 10, 10], [0, 0, 4, 4]], [[5, 0, 10, 10], [0, 0, 2, 2]])
    np.testing.assert_allclose(many, [50 / 150, 4 / 16])


def test_iou_boxes_matches_got10k_rect_iou():
    from got10k.utils.metrics import rect_iou

    rng = np.random.default_rng(2)
    first = rng.uniform([-50, -50, 0, 0], [300, 200, 150, 150], size=(200, 4))
    second = first + rng.normal(0, 30, size=(200, 4))
    second[:, 2:] = np.abs(second[:, 2:])
    np.testing.assert_allclose(iou_boxes(first, second), rect_iou(first.copy(), second.copy()), atol=1e-12)
    np.testing.assert_allclose(iou_boxes(first, second, bounds=(320, 240)),
                               rect_iou(first.copy(), second.copy(), bound=(320, 240)), atol=1e-12)


def test_vot_mask_rle_example_and_round_trip():
    patch = np.zeros((30, 30), dtype=bool)
    patch[20:23, 10:14] = [[False, True, False, False], [False, False, True, True], [True, True, True, True]]
    patch[20, 10] = True
    text = encode_vot_mask(patch)
    assert text.startswith("m10,20,4,3,0,")
    np.testing.assert_array_equal(decode_vot_mask(text, patch.shape), patch)
    for sequence, frame in (("blackswan", 0), ("bmx-trees", 40), ("cows", 5)):
        mask = davis_mask(sequence, frame)
        np.testing.assert_array_equal(decode_vot_mask(encode_vot_mask(mask), mask.shape), mask)


def test_vot_mask_encoding_matches_vot_toolkit():
    from vot.region.io import create_mask_from_string
    from vot.region.shapes import Mask

    masks = [davis_mask("blackswan", 0), davis_mask("car-roundabout", 12), np.zeros((40, 50), dtype=bool)]
    single = np.zeros((40, 50), dtype=bool)
    single[39, 49] = True
    masks.append(single)
    for mask in masks:
        theirs = str(Mask(mask.astype(np.uint8), optimize=True))
        assert encode_vot_mask(mask) == theirs
        # The toolkit's raw decoder: its Mask(optimize=True) reader empties one-pixel-wide masks.
        patch, (x0, y0) = create_mask_from_string(encode_vot_mask(mask)[1:].split(","))
        rebuilt = np.zeros(mask.shape, dtype=bool)
        rebuilt[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]] = patch > 0
        np.testing.assert_array_equal(rebuilt, mask)
        np.testing.assert_array_equal(decode_vot_mask(theirs, mask.shape), mask)


def test_decode_clips_to_frame_and_rejects_bad_runs():
    mask = decode_vot_mask("m8,8,4,2,0,8", (10, 10))
    assert mask.sum() == 4 and mask[8:10, 8:10].all()
    with pytest.raises(InputError, match="m1,1,2,2,1,1"):
        decode_vot_mask("m1,1,2,2,1,1", (10, 10))
    with pytest.raises(InputError):
        decode_vot_mask("m1,1,2,x,1", (10, 10))


def test_parse_region_kinds():
    np.testing.assert_array_equal(parse_region("1.5,2,30,40"), [1.5, 2, 30, 40])
    np.testing.assert_array_equal(parse_region("1\t2\t30\t40\n"), [1, 2, 30, 40])
    np.testing.assert_array_equal(parse_region("1 2, 30 40"), [1, 2, 30, 40])
    assert parse_region("1,2,3,4,5,6,7,8").shape == (4, 2)
    mask = parse_region("m2,3,2,2,0,4", shape=(10, 10))
    assert mask.dtype == bool and mask.sum() == 4 and mask[3:5, 2:4].all()
    with pytest.raises(InputError, match="frame size"):
        parse_region("m2,3,2,2,0,4")
    with pytest.raises(InputError, match="1,2,3"):
        parse_region("1,2,3")
    with pytest.raises(InputError, match="abc"):
        parse_region("abc,1,2,3")


def test_check_box_names_bad_values():
    np.testing.assert_array_equal(check_box([1, 2, 3, 4], (10, 10)), [1, 2, 3, 4])
    np.testing.assert_array_equal(check_box([-5, -5, 8, 8], (10, 10)), [-5, -5, 8, 8])
    with pytest.raises(InputError, match=r"init box .*nan"):
        check_box([1, float("nan"), 3, 4], (10, 10), name="init box")
    with pytest.raises(InputError, match=r"w=0.*\[1.0, 2.0, 0.0, 4.0\]"):
        check_box([1, 2, 0, 4], (10, 10))
    with pytest.raises(InputError, match=r"h=-4"):
        check_box([1, 2, 3, -4], (10, 10))
    with pytest.raises(InputError, match=r"\[20.0, 2.0, 3.0, 4.0\].*outside the 10x10"):
        check_box([20, 2, 3, 4], (10, 10))
    with pytest.raises(InputError, match="4 numbers"):
        check_box([1, 2, 3], (10, 10))


def test_solid_box_leaves_out_lines_but_keeps_a_thin_target():
    from samn_tracker.regions import solid_box
    mask = np.zeros((200, 300), bool)
    mask[100:160, 40:80] = True                        # a person
    for k in range(150):                               # a 2-px line up to the kite, out of the frame
        mask[max(99 - k, 0):max(101 - k, 1), 80 + k] = True
    assert mask_to_box(mask).tolist() == [40, 0, 190, 160]
    assert round(0.05 * np.sqrt(mask.sum())) == 3           # the disc at 0.05
    assert solid_box(mask, 0.05).tolist() == [40, 100, 40, 60]
    assert solid_box(mask, 0.0).tolist() == [40, 0, 190, 160]      # 0: the whole mask's box
    assert solid_box(mask, 0.02).tolist() == [40, 0, 190, 160]     # a disc under 3 px opens nothing
    line = np.zeros((200, 300), bool)
    line[10:190, 100:102] = True                       # a rope alone: the opening leaves nothing
    assert solid_box(line, 0.5).tolist() == [100, 10, 2, 180]
    blob = np.zeros((200, 300), bool)
    blob[20:120, 30:230] = True                        # a rectangle keeps its box (the disc rounds corners)
    assert solid_box(blob, 0.05).tolist() == [30, 20, 200, 100]


def test_main_components_drop_specks_and_keep_a_split_object():
    from samn_tracker.regions import main_components
    mask = np.zeros((60, 80), bool)
    mask[10:30, 10:30] = True      # 400 px
    mask[10:30, 40:55] = True      # 300 px: same object behind an occluder
    mask[50:53, 70:73] = True      # 9 px speck
    kept, counts = main_components(mask, 0.3)
    assert kept[10:30, 10:30].all() and kept[10:30, 40:55].all()
    assert not kept[50:53, 70:73].any()
    assert kept.sum() == 700
    assert counts.box.tolist() == [10, 10, 45, 20]  # the speck's pixels are out of the box too
    assert counts.centroid() == (21900 / 700, 19.5)  # the kept pixels' mean: (400 * 19.5 + 300 * 47) / 700
    empty, counts = main_components(np.zeros((5, 5), bool), 0.3)
    assert not empty.any() and counts.box is None and counts.centroid() is None
    # A box of over 2**16 2x2 cells takes 32-bit labels, counted another way: the same rule.
    large = np.zeros((1080, 1920), bool)
    large[100:900, 200:1000] = True     # the object
    large[1000:1010, 1800:1810] = True  # a speck far away
    kept, counts = main_components(large, 0.3)
    assert kept.sum() == 800 * 800 and counts.box.tolist() == [200, 100, 800, 800]


def test_a_mask_that_fills_its_box_is_kept_without_labelling(monkeypatch):
    """A solid rectangle (an untrained model's mask covering the frame) is one component:
    its counts say so and no labels are made; one pixel off and it is labelled again."""
    from samn_tracker import regions

    def no_labels(*args, **kwargs):
        raise AssertionError("labelled a solid mask")

    solid = np.zeros((48, 64), bool)
    solid[5:40, 3:60] = True
    counts = MaskCounts.of(solid)
    assert counts.solid
    with monkeypatch.context() as patch:
        patch.setattr(regions.cv2, "connectedComponents", no_labels)
        kept, kept_counts = regions.main_components(solid, 0.3, counts=counts)
    assert kept is solid and kept_counts is counts
    frame = np.ones((48, 64), bool)
    assert MaskCounts.of(frame).solid and regions.main_components(frame, 0.3)[0] is frame
    holed = solid.copy()
    holed[20, 30] = False
    speck = holed.copy()
    speck[45, 62] = True  # far from the rectangle: dropped
    assert not MaskCounts.of(holed).solid and not MaskCounts.of(speck).solid
    kept, kept_counts = regions.main_components(speck, 0.3)
    assert np.array_equal(kept, holed) and kept_counts.box.tolist() == [3, 5, 57, 35]
    assert not MaskCounts.of(np.zeros((4, 4), bool)).solid


def test_components_and_centroid_inside_the_bounding_box_equal_the_whole_frame_definitions():
    """Both work on the mask's bounding box only; the answers are those of the definitions."""
    from samn_tracker.regions import main_components

    def components_everywhere(mask, fraction):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        if count <= 2:
            return mask
        areas = stats[1:, cv2.CC_STAT_AREA]
        return np.isin(labels, np.flatnonzero(areas >= fraction * areas.max()) + 1)

    rng = np.random.default_rng(0)
    for _ in range(100):
        noise = rng.random((int(rng.integers(5, 200)), int(rng.integers(5, 200))))
        mask = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(0.5, 5))) > rng.uniform(0.45, 0.6)
        kept, counts = main_components(mask, 0.3)
        assert np.array_equal(kept, components_everywhere(mask, 0.3))
        expected_box = mask_to_box(kept)
        assert (counts.box is None and expected_box is None) or np.array_equal(counts.box, expected_box)
        for each in (mask, kept):
            assert MaskCounts.of(each).centroid() == pixel_mean(each)
        assert counts.centroid() == pixel_mean(kept)


def test_first_regions_are_told_apart_as_masks_or_boxes_and_polygons():
    assert is_mask(np.zeros((6, 8), dtype=bool))
    assert is_mask(np.zeros((6, 8), dtype=np.uint8))
    # masks of another size than the frame's (refused later, naming both sizes), not polygons
    assert is_mask(np.zeros((3, 3), dtype=bool)) and is_mask(np.zeros((240, 427), dtype=np.uint8))
    assert is_mask(np.zeros((480, 854, 3), dtype=np.uint8))
    assert not is_mask([1, 2, 3, 4]) and not is_mask(np.array([[1, 2, 3, 4]]))
    assert not is_mask(np.array([[0, 0], [4, 0], [4, 4]], dtype=float))
    assert not is_mask(np.zeros((6, 2)))  # H x 2 reads as points
    assert not is_mask(np.arange(8.0))  # a polygon's 2N numbers


def test_polygon_vertices_are_rounded_as_the_vot_toolkit_rasterises():
    from vot.region.shapes import Polygon

    points = [(0.6, 0.6), (4.6, 0.6), (4.6, 4.6), (0.6, 4.6)]
    ours = polygon_to_mask(points, (10, 10))
    assert mask_to_box(ours).tolist() == [1, 1, 5, 5]
    assert np.array_equal(ours, Polygon(points).rasterize((0, 0, 9, 9)) > 0)


def test_a_box_that_starts_at_the_right_edge_is_outside():
    with pytest.raises(InputError, match="outside"):
        check_box([10, 2, 3, 4], (10, 10))
