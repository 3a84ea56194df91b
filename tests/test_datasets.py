"""Dataset readers and split lists on real DAVIS frames rearranged into each benchmark layout
under tmp_path."""
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from samn_tracker.errors import InputError
from samn_tracker.evaluation.davis import write_png
from samn_tracker.regions import encode_vot_mask, mask_to_box
from samn_tracker.datasets import got10k, lasot, list_frames, open_sequence, read_image, splits, to_rgb, trackingnet
from samn_tracker.datasets.davis import davis_sequence, object_ids, read_annotation, refuse_object_ids, sequence_names
from samn_tracker.datasets.frames import frames_dir
from samn_tracker.datasets.images import read_mask
from samn_tracker.datasets.groundtruth import read_boxes
from samn_tracker.datasets.roots import DATA_VARIABLE, data_root
from samn_tracker.datasets.video import video_file

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
    first = read_annotation(annotations / "00000.png", 2017)
    assert object_ids(first) == [1, 2]
    np.testing.assert_array_equal(first, np.where(ids == 255, 0, ids))  # void is background
    sequence = davis_sequence(tmp_path, NAME)
    np.testing.assert_array_equal(sequence.groundtruth[0], ids == 1)
    assert sequence.groundtruth[1:] == [None, None]


def test_missing_frame_is_named(davis, tmp_path):
    copy_frames(davis, tmp_path, 5, "%05d.jpg")
    (tmp_path / "00002.jpg").unlink()
    with pytest.raises(InputError, match="00002.jpg"):
        frames_dir(tmp_path)


def test_frames_numbered_in_one_step_are_a_video_sampled(davis, tmp_path):
    """YouTube-VOS keeps every fifth frame of its videos: such a folder is tracked in order,
    and a frame missing from the step is named."""
    for index in range(4):
        shutil.copy(frame_path(davis, index), tmp_path / f"{5 * index:05d}.jpg")
    sequence = open_sequence(tmp_path)
    assert [p.name for p in sequence.frames] == ["00000.jpg", "00005.jpg", "00010.jpg", "00015.jpg"]
    np.testing.assert_array_equal(sequence.image(3), read_image(frame_path(davis, 3)))
    (tmp_path / "00010.jpg").unlink()
    with pytest.raises(InputError, match=r"missing frame 00010.jpg .*from 00005.jpg; the others are numbered 5 apart"):
        open_sequence(tmp_path)


def test_a_benchmark_folder_numbered_in_steps_has_lost_frames(davis, tmp_path):
    for index in range(3):
        shutil.copy(frame_path(davis, index), tmp_path / f"{5 * index:05d}.jpg")
    with pytest.raises(InputError, match="missing frame 00001.jpg"):
        list_frames(tmp_path)


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


def test_a_truncated_jpeg_reads_as_opencv_decodes_it_with_one_warning(davis, tmp_path):
    """Its pixels are OpenCV's (missing rows grey), without the line libjpeg printed."""
    data = frame_path(davis, 0).read_bytes()
    colour, gray = tmp_path / "colour.jpg", tmp_path / "gray.jpg"
    colour.write_bytes(data[:len(data) // 2])
    cv2.imwrite(str(tmp_path / "whole_gray.jpg"), cv2.imread(str(frame_path(davis, 0)), cv2.IMREAD_GRAYSCALE))
    gray.write_bytes((tmp_path / "whole_gray.jpg").read_bytes()[:-2000])
    for path, decoded in ((colour, cv2.cvtColor(cv2.imread(str(colour)), cv2.COLOR_BGR2RGB)),
                          (gray, np.repeat(cv2.imread(str(gray), cv2.IMREAD_UNCHANGED)[:, :, None], 3, axis=2))):
        with pytest.warns(UserWarning, match="ends before its JPEG end marker"):
            image = read_image(path)
        np.testing.assert_array_equal(image, decoded)
        assert (image[-1] == 128).all()  # the missing rows
    colour.write_bytes(data[:100])  # not even a whole header
    with pytest.raises(InputError, match="cannot decode image file .*colour.jpg"):
        read_image(colour)


def test_a_complete_jpeg_with_a_trailer_or_png_data_named_jpg_reads_without_a_warning(davis, tmp_path, recwarn):
    """Only the last 64 bytes were searched for the end marker: a phone's trailer after it,
    or PNG data in a .jpg file (13 of 20 such frames), warned of truncation."""
    data = frame_path(davis, 0).read_bytes()
    trailer, png = tmp_path / "trailer.jpg", tmp_path / "png.jpg"
    trailer.write_bytes(data + b"\x00trailer" * 400)
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.imread(str(frame_path(davis, 0))))
    png.write_bytes((tmp_path / "frame.png").read_bytes())
    np.testing.assert_array_equal(read_image(trailer), read_image(frame_path(davis, 0)))
    np.testing.assert_array_equal(read_image(png), read_image(tmp_path / "frame.png"))
    assert not [w for w in recwarn if "JPEG end marker" in str(w.message)]


def test_mask_files_are_read_as_labels_not_as_pictures(davis, tmp_path):
    """A 16-bit mask of 1s and a palette mask drawn in black read as empty, and a cut-out's
    transparent background as object, when masks were read as RGB pictures."""
    truth = np.array(Image.open(davis / "Annotations" / "480p" / "blackswan" / "00000.png")) > 0
    frame = cv2.imread(str(frame_path(davis, 0)))
    cv2.imwrite(str(tmp_path / "sixteen.png"), truth.astype(np.uint16))
    palette = Image.fromarray(truth.astype(np.uint8), mode="P")
    palette.putpalette([0, 0, 0] * 256)
    palette.save(tmp_path / "palette.png")
    cv2.imwrite(str(tmp_path / "cutout.png"), np.dstack([frame, truth.astype(np.uint8) * 255]))
    soft = cv2.GaussianBlur(truth.astype(np.uint8) * 255, (5, 5), 0)
    cv2.imwrite(str(tmp_path / "soft.png"), soft)
    cv2.imwrite(str(tmp_path / "mask.jpg"), truth.astype(np.uint8) * 255)
    labels = truth.astype(np.uint8)
    labels[:, 400:][truth[:, 400:]] = 3  # a second object id: both are the target
    cv2.imwrite(str(tmp_path / "labels.png"), labels)
    cv2.imwrite(str(tmp_path / "scaled.png"), labels * 60)  # ids scaled to be seen: 60 and 180, both objects
    Image.fromarray(np.stack([truth.astype(np.uint8) * 255] * 3, -1)).quantize(colors=2).save(tmp_path / "white0.png")
    assert Image.open(tmp_path / "white0.png").getpalette()[:3] == [255, 255, 255]  # the object is index 0
    faint = np.zeros(truth.shape + (4,), np.uint8)
    faint[truth, 3] = 100  # an overlay's faint alpha
    Image.fromarray(faint, mode="RGBA").save(tmp_path / "faint.png")
    for name in ("sixteen.png", "palette.png", "cutout.png", "labels.png", "scaled.png", "white0.png", "faint.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), truth, err_msg=name)
    for name in ("soft.png", "mask.jpg"):
        read = read_mask(tmp_path / name)
        assert (read != truth).mean() < 0.002, name
    with pytest.raises(InputError, match=r"00000.jpg is not a mask: \d+% of its pixels are neither dark nor bright"):
        read_mask(frame_path(davis, 0))
    with pytest.raises(InputError, match="nothere.png"):
        read_mask(tmp_path / "nothere.png")


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


def test_float_frames_in_either_range_read_alike_and_normalised_ones_are_refused(davis_root):
    """A [0, 1] frame resized with cubic interpolation overshoots 1 and was read as [0, 255],
    a black frame; an ImageNet-normalised one (the model's input, not a frame) was tracked
    as a clipped, other image. Both said nothing."""
    frame = read_image(davis_root / "JPEGImages" / "480p" / "blackswan" / "00000.jpg")
    unit = cv2.resize(frame.astype(np.float32) / 255.0, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    wide = cv2.resize(frame.astype(np.float32), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    assert unit.max() > 1.0 and unit.min() < 0.0  # the overshoot
    assert np.abs(to_rgb(unit).astype(int) - to_rgb(wide)).max() <= 1
    assert to_rgb(wide).mean() > 50
    normalised = (frame / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    with pytest.raises(InputError, match=r"frame 3 has pixel values from -2\.\d+ to 2\.\d+: a normalised tensor"):
        to_rgb(normalised, "frame 3")
    with pytest.raises(InputError, match="normalised"):
        to_rgb(torch.from_numpy(normalised.astype(np.float32)))


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


def test_video_frames_are_counted_without_decoding_and_read_past_a_bad_one(davis, tmp_path, monkeypatch):
    """The count reads packets only. A frame that cannot be decoded is the one before it
    again, with a warning, and the frames after it keep their numbers (OpenCV decodes past
    it: the video ended there before, at 3 of 10 frames). The first frame must decode."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for index in range(10):
        writer.write(read_image(frame_path(davis, index))[:240, :320, ::-1])
    writer.release()
    whole = list(video_file(path))
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == 10

    def blank(*frames: int) -> None:
        for k in frames:
            data[starts[k]:starts[k + 1] - 16] = bytes(starts[k + 1] - 16 - starts[k])
        path.write_bytes(data)

    blank(3, 4)
    decoded_grabs = []

    opened = cv2.VideoCapture

    class Capture:
        def __init__(self, *args):
            self.capture = opened(*args)

        def __getattr__(self, name):
            return getattr(self.capture, name)

        def grab(self):
            decoded_grabs.append(self.capture.get(cv2.CAP_PROP_FORMAT) != -1)
            return self.capture.grab()

    monkeypatch.setattr(cv2, "VideoCapture", Capture)
    sequence = video_file(path)
    assert len(sequence) == 10 and decoded_grabs and not any(decoded_grabs)
    with pytest.warns(UserWarning, match=r"frame\(s\) 3, 4 cannot be decoded; the frame before stands in"):
        decoded = list(sequence)
    assert len(decoded) == 10
    for index, frame in enumerate(decoded):
        np.testing.assert_array_equal(frame, whole[2 if index in (3, 4) else index])
    with pytest.warns(UserWarning, match="3, 4 cannot be decoded"):
        np.testing.assert_array_equal(sequence.image(6), whole[6])  # random access: the same frames
    blank(0)
    with pytest.raises(InputError, match=r"the first frame of .*clip.avi cannot be decoded \(frame 1 can\)"):
        video_file(path)
    blank(*range(1, 9))
    data[starts[9]:len(data) - 400] = bytes(len(data) - 400 - starts[9])
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"no frame of .*clip.avi can be decoded"):
        video_file(path)


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


def test_lasot_layout_drops_flagged_frames_and_is_not_taken_for_otb(davis, tmp_path):
    folder = tmp_path / "swan" / "swan-1"
    copy_frames(davis, folder / "img", 5, "%08d.jpg")
    lines = real_boxes(davis, 5)
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    (folder / "full_occlusion.txt").write_text("0,0,1,0,0")
    (folder / "out_of_view.txt").write_text("0,0,0,1,0")
    sequence = open_sequence(folder)
    assert sequence.name == "swan-1" and len(sequence) == 5
    assert [box is None for box in sequence.groundtruth] == [False, False, True, True, False]
    np.testing.assert_array_equal(sequence.groundtruth[4], [float(v) for v in lines[4].split(",")])
    assert lasot.sequence_names(tmp_path, "all") == ["swan-1"]
    assert lasot.sequence_folder(tmp_path, "swan-1") == folder
    assert len(lasot.sequence_names(tmp_path, "test")) == 280  # the toolkit's list, whatever the root holds
    (folder / "out_of_view.txt").write_text("0,0,0,1")
    with pytest.raises(InputError, match=r"out_of_view.txt has 4 flags for 5 frames"):
        open_sequence(folder)
    with pytest.raises(InputError, match="LaSOT sequence swan-2 not found"):
        lasot.sequence_folder(tmp_path, "swan-2")


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


# --- DAVIS annotations and split lists ------------------------------------------------

def test_annotation_reading_follows_the_year(tmp_path):
    binary = np.zeros((8, 8), np.uint8)
    binary[2:5, 2:5] = 255
    Image.fromarray(binary).save(tmp_path / "binary.png")
    assert read_annotation(tmp_path / "binary.png", 2016).max() == 1
    with pytest.raises(InputError, match="--year 2016"):
        read_annotation(tmp_path / "binary.png", 2017)
    ids = np.zeros((8, 8), np.uint8)
    ids[0, :] = 255
    ids[3, 3] = 2
    write_png(tmp_path / "ids.png", ids)
    read = read_annotation(tmp_path / "ids.png", 2017)
    assert read[0].max() == 0 and read[3, 3] == 2  # void is background
    # the other mistake, scored: a 2017 tree read as 2016 made one target of every object and the void
    with pytest.raises(InputError, match=r"object ids \[2, 255\] \(DAVIS 2017 style\); score it as 2017: --year 2017"):
        refuse_object_ids(tmp_path / "ids.png")
    ids[0, :] = 0
    write_png(tmp_path / "one.png", (ids > 0).astype(np.uint8))  # a result of one object: ids 0 and 1
    refuse_object_ids(tmp_path / "one.png")
    refuse_object_ids(tmp_path / "binary.png")
    write_png(tmp_path / "pal255.png", ids.astype(bool).astype(np.uint8) * 255)  # a 2016 mask with a palette
    refuse_object_ids(tmp_path / "pal255.png")
    (tmp_path / "torn.png").write_bytes((tmp_path / "ids.png").read_bytes()[:60])
    with pytest.raises(InputError, match="torn.png"):
        refuse_object_ids(tmp_path / "torn.png")


def test_sequence_lists_of_both_releases(tmp_path):
    (tmp_path / "ImageSets" / "480p").mkdir(parents=True)
    (tmp_path / "ImageSets" / "480p" / "val.txt").write_text(  # the DAVIS 2016 download
        "/JPEGImages/480p/blackswan/00000.jpg /Annotations/480p/blackswan/00000.png\n"
        "/JPEGImages/480p/blackswan/00001.jpg /Annotations/480p/blackswan/00001.png\n"
        "/JPEGImages/480p/cows/00000.jpg /Annotations/480p/cows/00000.png\n")
    assert sequence_names(tmp_path, 2016, "val") == ["blackswan", "cows"]
    (tmp_path / "ImageSets" / "2017").mkdir()
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("bike-packing\nblackswan\n")
    assert sequence_names(tmp_path, 2017, "val") == ["bike-packing", "blackswan"]
    with pytest.raises(InputError, match="test-dev.txt"):
        sequence_names(tmp_path, 2017, "test-dev")


def test_davis_2016_la_masks_are_thresholded_at_127(tmp_path):
    grey = np.zeros((6, 6), np.uint8)
    grey[1:3, 1:3] = 255
    grey[4, 4] = 100  # anti-aliasing grey below the threshold
    alpha = np.full((6, 6), 255, np.uint8)
    Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA").save(tmp_path / "la.png")
    expected = (grey > 127).astype(np.uint8)
    np.testing.assert_array_equal(read_annotation(tmp_path / "la.png", 2016), expected)
    np.testing.assert_array_equal(read_annotation(tmp_path / "la.png"), expected)
    with pytest.raises(InputError, match="la.png"):
        read_annotation(tmp_path / "la.png", 2017)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png"):
        read_annotation(tmp_path / "broken.png", 2016)


def test_real_davis_2016_annotations_read_alike_everywhere(davis):
    png = davis / "Annotations" / "480p" / NAME / "00010.png"
    raw = np.array(Image.open(png))
    for year in (2016, None):
        np.testing.assert_array_equal(read_annotation(png, year), (raw > 0).astype(np.uint8))
    assert object_ids(read_annotation(png, 2016)) == [1]


def test_shared_split_list(davis):
    assert sequence_names(davis, 2016, "eval") == ["blackswan", "bmx-trees", "car-roundabout", "car-shadow"]
    assert splits.names_in_split(davis, "train") == ["breakdance", "camel", "cows", "dance-twirl"]
    assert set(splits.read_splits(davis).values()) == {"train", "eval"}
    with pytest.raises(InputError, match="splits.txt has no sequence in split 'val'"):
        sequence_names(davis, 2016, "val")


def test_split_files_share_their_comment_rules(tmp_path):
    (tmp_path / "splits.txt").write_text("# split sequence\ntrain a  # first\n\n   # indented comment\neval b\n")
    assert splits.read_splits(tmp_path) == {"a": "train", "b": "eval"}
    (tmp_path / "list.txt").write_text("# GOT-10k style\nGOT-10k_Val_000001\n\nGOT-10k_Val_000002 # note\n")
    assert splits.read_name_list(tmp_path / "list.txt") == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    (tmp_path / "splits.txt").write_text("train a extra\n")
    with pytest.raises(InputError, match="splits.txt: expected '<split> <sequence>'"):
        splits.read_splits(tmp_path)
    with pytest.raises(InputError, match="missing.txt"):
        splits.read_name_list(tmp_path / "missing.txt")


def test_got10k_and_trackingnet_lists(tmp_path):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "list.txt").write_text("GOT-10k_Val_000002\nGOT-10k_Val_000001\n")
    assert got10k.sequence_names(tmp_path, "val") == ["GOT-10k_Val_000002", "GOT-10k_Val_000001"]
    with pytest.raises(InputError, match="subset"):
        got10k.sequence_names(tmp_path, "train")
    with pytest.raises(InputError, match="test/list.txt"):
        got10k.sequence_names(tmp_path, "test")
    (tmp_path / "TEST" / "anno").mkdir(parents=True)
    for name in ("b", "a"):
        (tmp_path / "TEST" / "anno" / f"{name}.txt").write_text("1,2,3,4\n")
    assert trackingnet.sequence_names(tmp_path / "TEST") == ["a", "b"]
    (tmp_path / "TEST" / "frames" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "TEST" / "frames" / "a" / "1.jpg")
    with pytest.raises(InputError, match="start at 0.jpg"):
        trackingnet.frame_files(tmp_path / "TEST", "a")


def test_box_files(tmp_path):
    (tmp_path / "boxes.txt").write_text("1,2,3,4\n5,6,7,8\n")
    np.testing.assert_array_equal(read_boxes(tmp_path / "boxes.txt"), [[1, 2, 3, 4], [5, 6, 7, 8]])
    (tmp_path / "three.txt").write_text("1,2,3\n")
    with pytest.raises(InputError, match="three.txt line 1: expected 4 numbers x,y,w,h, got 3"):
        read_boxes(tmp_path / "three.txt")
    # as other tools write them: tabs or spaces, CRLF, NaN rows, blank lines of whitespace at the end
    (tmp_path / "other.txt").write_bytes(b"1\t2\t3\t4\r\n5 6  7 8\r\nnan,nan,nan,nan\r\n  \n\t\n")
    np.testing.assert_array_equal(read_boxes(tmp_path / "other.txt"), [[1, 2, 3, 4], [5, 6, 7, 8], [np.nan] * 4])
    (tmp_path / "gap.txt").write_text("1,2,3,4\n1,,3,4\n")
    with pytest.raises(InputError, match="gap.txt: line 2 is not numbers: '1,,3,4'"):
        read_boxes(tmp_path / "gap.txt")
    (tmp_path / "blank.txt").write_text(" \n")
    with pytest.raises(InputError, match="blank.txt is empty"):
        read_boxes(tmp_path / "blank.txt")


def test_data_root_comes_from_the_option_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    with pytest.raises(InputError, match=f"give --data DIR or set {DATA_VARIABLE}"):
        data_root(None, "--data")
    assert data_root(tmp_path, "--data") == tmp_path
    monkeypatch.setenv(DATA_VARIABLE, str(tmp_path))
    assert data_root(None, "--data") == tmp_path
    monkeypatch.setenv(DATA_VARIABLE, str(tmp_path / "gone"))
    with pytest.raises(InputError, match=r"gone \(from \$SAMN_DATA\)"):
        data_root(None, "--data")


def test_box_ground_truth_without_a_boxes_folder_is_the_tight_mask_box(davis, tmp_path):
    """The full DAVIS release has no boxes/: the boxes derived from its masks are the
    ones the shared data ships, so box benchmarks and the local VOT stack run on it."""
    from samn_tracker.datasets.davis import box_groundtruth, frame_files
    from samn_tracker.vot.local_stack import eval_split

    release = tmp_path / "DAVIS"
    for part in ("JPEGImages", "Annotations"):
        (release / part).mkdir(parents=True)
        (release / part / "480p").symlink_to(davis / part / "480p")
    for name in ("blackswan", "car-shadow"):
        shipped = read_boxes(davis / "boxes" / f"{name}.txt")
        derived = box_groundtruth(release, name, frame_files(release, name))
        np.testing.assert_array_equal(derived, shipped)
    assert eval_split(release) == sorted(p.name for p in (davis / "JPEGImages" / "480p").iterdir())
    (release / "ImageSets" / "480p").mkdir(parents=True)
    (release / "ImageSets" / "480p" / "val.txt").write_text(
        "/JPEGImages/480p/camel/00000.jpg /Annotations/480p/camel/00000.png\n"
        "/JPEGImages/480p/cows/00000.jpg /Annotations/480p/cows/00000.png\n")
    assert eval_split(release) == ["camel", "cows"]


def test_a_folder_with_frames_of_its_own_is_not_a_layout_whose_frames_lie_below(davis, tmp_path):
    """An ``img/`` or ``color/`` beside the frames, or a ``groundtruth.txt`` of something
    else, refused a plain frame folder as OTB, VOT or GOT-10k, --box or not."""
    for extra in ("img", "color", "groundtruth.txt", "sequence"):
        folder = tmp_path / extra.replace(".", "_")
        copy_frames(davis, folder, 3, "%05d.jpg")
        if "." in extra or extra == "sequence":
            (folder / extra).write_text("camera notes\n")
        else:
            copy_frames(davis, folder / extra, 1, "%05d.jpg")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sequence = open_sequence(folder)
        assert len(sequence) == 3 and sequence.frames[0].parent == folder, extra
        assert sequence.groundtruth is None or all(region is None for region in sequence.groundtruth), extra
        said = [str(w.message) for w in caught]
        assert said == ([f"{folder / extra} line 1: region is not a list of numbers: 'camera notes'; {folder} is "
                         "read as a folder of frames without ground truth"] if extra == "groundtruth.txt" else []), extra
    pngs = tmp_path / "pngs"  # the older VOT layout with PNG frames (VOT-TIR): read with its ground truth
    for frame in copy_frames(davis, pngs, 3, "%08d.jpg"):
        cv2.imwrite(str(frame.with_suffix(".png")), cv2.imread(str(frame)))
        frame.unlink()
    (pngs / "groundtruth.txt").write_text("\n".join(real_boxes(davis, 3)) + "\n")
    assert open_sequence(pngs).groundtruth[2] is not None
    for stray in ("preview.jpg", "._00000001.jpg"):  # one image beside a layout's folder is no frame folder
        copy_frames(davis, tmp_path / "stray", 1, "%05d.jpg")[0].rename(tmp_path / "stray" / stray)
    copy_frames(davis, tmp_path / "stray" / "img", 3, "%05d.jpg")
    with pytest.raises(InputError, match="groundtruth_rect.txt"):
        open_sequence(tmp_path / "stray")
    otb = tmp_path / "otb"
    copy_frames(davis, otb / "img", 3, "%04d.jpg")
    with pytest.raises(InputError, match="groundtruth_rect.txt"):  # a layout's own folder still reads as one
        open_sequence(otb)
