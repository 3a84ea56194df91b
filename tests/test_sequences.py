"""Sequence readers on real DAVIS frames rearranged into each benchmark layout under tmp_path."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from samn_tracker.errors import InputError
from samn_tracker.regions import encode_vot_mask, mask_to_box
from samn_tracker.sequences import (
    davis_objects,
    davis_sequence,
    frames_dir,
    open_sequence,
    read_image,
    to_rgb,
    video_file,
)

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
NAME = "blackswan"


@pytest.fixture(scope="module")
def davis() -> Path:
    if not (DAVIS / "JPEGImages" / "480p" / NAME).is_dir():
        pytest.skip(f"DAVIS test data not found at {DAVIS} (see ../shared/data/davis16/README.md)")
    return DAVIS


def frame_path(root: Path, index: int) -> Path:
    return root / "JPEGImages" / "480p" / NAME / f"{index:05d}.jpg"


def real_boxes(root: Path, count: int) -> list[str]:
    return (root / "boxes" / f"{NAME}.txt").read_text().splitlines()[:count]


def copy_frames(root: Path, target: Path, count: int, pattern: str) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for index in range(count):
        copies.append(target / (pattern % (index + 1)))
        shutil.copy(frame_path(root, index), copies[-1])
    return copies


def test_davis_2016_sequence_masks_match_boxes(davis):
    sequence = open_sequence(davis / "JPEGImages" / "480p" / NAME)
    assert len(sequence) == 50 and sequence.size == (854, 480)
    boxes = (davis / "boxes" / f"{NAME}.txt").read_text().splitlines()
    for index in (0, 25, 49):
        mask = sequence.groundtruth[index]
        assert mask.dtype == bool and mask.shape == (480, 854)
        np.testing.assert_array_equal(mask_to_box(mask), [float(v) for v in boxes[index].split(",")])
    image = sequence.image(3)
    assert image.dtype == np.uint8 and image.shape == (480, 854, 3)
    bgr = cv2.imread(str(frame_path(davis, 3)))
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])


def test_davis_2017_palette_objects(davis, tmp_path):
    frames = tmp_path / "JPEGImages" / "480p" / NAME
    annotations = tmp_path / "Annotations" / "480p" / NAME
    annotations.mkdir(parents=True)
    frames.mkdir(parents=True)
    for index in range(3):
        shutil.copy(frame_path(davis, index), frames / f"{index:05d}.jpg")
    mask = np.array(Image.open(davis / "Annotations" / "480p" / NAME / "00000.png")) > 0
    ids = np.zeros(mask.shape, dtype=np.uint8)
    ids[:, :400][mask[:, :400]] = 1
    ids[:, 400:][mask[:, 400:]] = 2
    ids[:5, :5] = 255  # void
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    palette.save(annotations / "00000.png")
    objects, maps = davis_objects(tmp_path, NAME)
    assert objects == [1, 2]
    np.testing.assert_array_equal(maps[0], ids)
    assert maps[1] is None and maps[2] is None
    sequence = davis_sequence(tmp_path, NAME)
    np.testing.assert_array_equal(sequence.groundtruth[0], ids == 1)
    assert sequence.groundtruth[1:] == [None, None]


def test_missing_frame_is_named(davis, tmp_path):
    copy_frames(davis, tmp_path, 5, "%05d.jpg")
    (tmp_path / "00002.jpg").unlink()
    with pytest.raises(InputError, match="00002.jpg"):
        frames_dir(tmp_path)


def test_frames_are_ordered_by_number(davis, tmp_path):
    for number in (8, 9, 10, 11):
        shutil.copy(frame_path(davis, number), tmp_path / f"img{number}.jpg")
    sequence = open_sequence(tmp_path)
    assert [p.name for p in sequence.frames] == ["img8.jpg", "img9.jpg", "img10.jpg", "img11.jpg"]
    np.testing.assert_array_equal(sequence.image(2), read_image(frame_path(davis, 10)))


def test_corrupt_and_missing_images_are_named(davis, tmp_path):
    copy_frames(davis, tmp_path, 3, "%05d.jpg")
    (tmp_path / "00002.jpg").write_bytes(b"\xff\xd8 this is not a jpeg" * 10)
    sequence = frames_dir(tmp_path)
    assert sequence.image(0).shape == (480, 854, 3)
    with pytest.raises(InputError, match="00002.jpg"):
        sequence.image(1)
    with pytest.raises(InputError, match="nothere.jpg"):
        read_image(tmp_path / "nothere.jpg")


def test_gray_rgba_and_16_bit_files_read_as_rgb(davis, tmp_path):
    rgb = read_image(frame_path(davis, 0))[100:260, 200:400]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    read_gray = read_image(tmp_path / "gray.png")
    assert read_gray.shape == rgb.shape and read_gray.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(read_gray[:, :, channel], gray)
    alpha = np.linspace(0, 255, rgb.shape[1]).astype(np.uint8)[None, :].repeat(rgb.shape[0], 0)
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[:, :, ::-1].astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png"), rgb)


def test_to_rgb_arrays():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(to_rgb(gray)[:, :, 2], gray)
    np.testing.assert_array_equal(to_rgb(gray[:, :, None]), to_rgb(gray))
    np.testing.assert_array_equal(to_rgb(gray.astype(np.float32) / 255.0), to_rgb(gray))
    with pytest.raises(InputError, match="frame 7"):
        to_rgb(np.zeros((3, 4, 2), dtype=np.uint8), "frame 7")
    with pytest.raises(InputError, match="int32"):
        to_rgb(np.full((3, 4), 1000, dtype=np.int32))


@pytest.mark.parametrize("fourcc, suffix", [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_video_file_round_trip(davis, tmp_path, fourcc, suffix):
    frames = [read_image(frame_path(davis, index))[:240, :320] for index in range(6)]
    path = tmp_path / f"clip{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (320, 240))
    if not writer.isOpened():
        pytest.skip(f"OpenCV build cannot write {fourcc}")
    for frame in frames:
        writer.write(frame[:, :, ::-1])
    writer.release()
    sequence = open_sequence(path)
    assert sequence.video == path and len(sequence) == 6 and sequence.size == (320, 240)
    assert sequence.fps == pytest.approx(10)
    decoded = list(sequence)
    assert len(decoded) == 6
    for original, frame in zip(frames, decoded):
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - original).mean() < 8
    np.testing.assert_array_equal(sequence.image(4), decoded[4])
    np.testing.assert_array_equal(sequence.image(1), decoded[1])
    np.testing.assert_array_equal(sequence.image(-1), decoded[5])
    with pytest.raises(IndexError):
        sequence.image(6)


def test_unreadable_video_is_named(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match="broken.mp4"):
        video_file(path)
    with pytest.raises(InputError, match="missing.avi"):
        open_sequence(tmp_path / "missing.avi")


def test_otb_layout_with_mixed_separators(davis, tmp_path):
    copy_frames(davis, tmp_path / "img", 4, "%04d.jpg")
    lines = real_boxes(davis, 4)
    separators = ["\t", " ", ",", "\t"]
    (tmp_path / "groundtruth_rect.txt").write_text(
        "\n".join(line.replace(",", sep) for line, sep in zip(lines, separators)) + "\n")
    sequence = open_sequence(tmp_path)
    assert len(sequence) == 4
    for line, box in zip(lines, sequence.groundtruth):
        np.testing.assert_array_equal(box, [float(v) for v in line.split(",")])
    (tmp_path / "groundtruth_rect.txt").write_text("\n".join(lines[:3]) + "\n")
    with pytest.raises(InputError, match="3 regions but the sequence has 4 frames"):
        open_sequence(tmp_path)


def test_got10k_layout_test_split_and_labels(davis, tmp_path):
    copy_frames(davis, tmp_path, 5, "%08d.jpg")
    (tmp_path / "groundtruth.txt").write_text(real_boxes(davis, 1)[0] + "\n")
    (tmp_path / "absence.label").write_text("0\n0\n1\n0\n0\n")
    (tmp_path / "cover.label").write_text("8\n8\n0\n4\n8\n")
    sequence = open_sequence(tmp_path)
    assert len(sequence) == 5
    np.testing.assert_array_equal(sequence.groundtruth[0], [float(v) for v in real_boxes(davis, 1)[0].split(",")])
    assert sequence.groundtruth[1:] == [None] * 4
    np.testing.assert_array_equal(sequence.tags["cover"], [8, 8, 0, 4, 8])
    (tmp_path / "groundtruth.txt").write_text("\n".join(real_boxes(davis, 5)) + "\n")
    full = open_sequence(tmp_path)
    assert full.groundtruth[2] is None and full.groundtruth[3] is not None


def test_vot_layout_with_masks_polygons_and_tags(davis, tmp_path):
    copy_frames(davis, tmp_path / "color", 3, "%08d.jpg")
    (tmp_path / "sequence").write_text("channels.color=color/%08d.jpg\nfps=30\nformat=default\n")
    masks = [np.array(Image.open(davis / "Annotations" / "480p" / NAME / f"{i:05d}.png")) > 0 for i in range(3)]
    (tmp_path / "groundtruth.txt").write_text("\n".join(encode_vot_mask(m) for m in masks) + "\n")
    (tmp_path / "occlusion.tag").write_text("0\n1\n")
    (tmp_path / "anchor.value").write_text("1\n0\n-1\n")
    sequence = open_sequence(tmp_path)
    assert len(sequence) == 3 and sequence.size == (854, 480)
    for mask, read in zip(masks, sequence.groundtruth):
        np.testing.assert_array_equal(read, mask)
    np.testing.assert_array_equal(sequence.tags["occlusion"], [0, 1, 0])
    np.testing.assert_array_equal(sequence.tags["anchor"], [1.0, 0.0, -1.0])
    (tmp_path / "groundtruth.txt").write_text("1,2,100,2,100,50,1,50\n0,0,0,0\nnan,nan,nan,nan\n")
    polygons = open_sequence(tmp_path)
    assert polygons.groundtruth[0].shape == (4, 2) and polygons.groundtruth[1:] == [None, None]
    (tmp_path / "groundtruth.txt").write_text("1,2,100\n0,0,0,0\n0,0,0,0\n")
    with pytest.raises(InputError, match="groundtruth.txt line 1"):
        open_sequence(tmp_path)
