"""Training data sources on tiny datasets written in each official layout from the real
DAVIS 2016 frames and masks (train sequences only), and the crops the loop consumes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from samn_tracker.errors import InputError
from samn_tracker.regions import mask_to_box
from samn_tracker.datasets import read_image
from samn_tracker.train.clips import Clip
from samn_tracker.crops import CropWindow
from samn_tracker.train.sampling import ClipDataset, box_in_crop, make_crop_sample
from samn_tracker.train.still_images import (CocoInstances, PascalVOCObjects, SaliencyFolders,
                                             ViewAugmentation, augment_views, decode_coco_rle,
                                             photometric, polygons_to_mask)
from samn_tracker.train.synthetic import SyntheticClips
from samn_tracker.train.video_clips import DAVISVideos, YouTubeVOS

SEQ = "cows"  # a train sequence: a dark animal on grass, so colours tell object from background
EVAL = {"blackswan", "bmx-trees", "car-roundabout", "car-shadow"}
TRAIN = ["breakdance", "camel", "cows", "dance-twirl"]  # the shared data's splits.txt
NO_PHOTOMETRY = ViewAugmentation(blur_prob=0.0, brightness=0.0)


def iou_masks(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def frame(root: Path, seq: str, i: int) -> Path:
    return root / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg"


def small(root: Path, seq: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame i at a quarter of its size (fast tests) and its object mask."""
    image = cv2.imread(str(frame(root, seq, i)))
    mask = cv2.imread(str(root / "Annotations" / "480p" / seq / f"{i:05d}.png"), 0) > 127
    size = (image.shape[1] // 4, image.shape[0] // 4)
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0)


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[0] = 0
    image.putpalette(palette.ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_jpg(path: Path, bgr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_png(path: Path, gray: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), gray)


def rle_runs(mask: np.ndarray) -> list[int]:
    """COCO run lengths: column-major, background run first."""
    flat = mask.ravel(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


def rle_string(runs: list[int]) -> str:
    """Compressed COCO counts, written from the format description (5 bits a character,
    offset 48, continuation bit 0x20, deltas to the run two before from the fourth on)."""
    out = []
    for i, value in enumerate(runs):
        value = value - runs[i - 2] if i > 2 else value
        more = True
        while more:
            chunk, value = value & 0x1F, value >> 5
            more = value != -1 if chunk & 0x10 else value != 0
            out.append(chr((chunk | (0x20 if more else 0)) + 48))
    return "".join(out)


def polygons_of(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [(c.reshape(-1, 2) + 0.5).ravel().tolist() for c in contours if len(c) >= 3]


def object_colour_probability(image: np.ndarray, mask: np.ndarray):
    """P(object | colour) from 8x8x8 colour histograms of an image and its mask."""
    def bins(im: np.ndarray) -> np.ndarray:
        q = im.astype(int) // 32
        return q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]
    inside = np.bincount(bins(image)[mask], minlength=512) + 1.0
    outside = np.bincount(bins(image)[~mask], minlength=512) + 1.0
    table = inside / inside.sum() / (inside / inside.sum() + outside / outside.sum())
    return lambda im: table[bins(im)]


def separation(probability: np.ndarray, mask: np.ndarray) -> float:
    return float(probability[mask].mean() - probability[~mask].mean())


def assert_follows_object(clip: Clip, image_rgb: np.ndarray, mask: np.ndarray) -> None:
    """Each view's mask has a plausible area under the augmentation's scale range and
    covers pixels of the object's colours, not the background's."""
    lo, hi = ViewAugmentation().scale_range
    probability = object_colour_probability(image_rgb, mask)
    original = separation(probability(image_rgb), mask)
    assert original > 0.3
    assert len(clip.frames) == len(clip.masks) == 3
    for view, view_mask in zip(clip.frames, clip.masks):
        assert view.shape == image_rgb.shape and view.dtype == np.uint8
        ratio = view_mask.sum() / mask.sum()
        assert 0.5 * lo**2 * 0.9 <= ratio <= hi**2 * 1.5  # shear keeps area; 0.5 = min_visible
        assert separation(probability(view), view_mask) > 0.6 * original
        shifted = np.roll(view_mask, view_mask.shape[1] // 3, axis=1)
        assert separation(probability(view), shifted) < 0.5 * original


@pytest.fixture(scope="module")
def cows(davis_root: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [small(davis_root, SEQ, i) for i in range(6)]


# --- COCO ---------------------------------------------------------------------------

def test_coco_rle_matches_reference_string() -> None:
    index = np.arange(35).reshape(5, 7)
    mask = (index % 3 == 0) | (index > 25)
    # counts written by pycocotools 2.0.11 mask.encode for this mask
    decoded = decode_coco_rle({"size": [5, 7], "counts": "01210OO00011000OO000021O"})
    assert np.array_equal(decoded, mask)


def test_coco_rle_round_trip_and_polygon_agree(cows) -> None:
    _, mask = cows[0]
    h, w = mask.shape
    assert np.array_equal(decode_coco_rle({"size": [h, w], "counts": rle_string(rle_runs(mask))}), mask)
    assert np.array_equal(decode_coco_rle({"size": [h, w], "counts": rle_runs(mask)}), mask)
    assert iou_masks(polygons_to_mask(polygons_of(mask), h, w), mask) > 0.9
    with pytest.raises(InputError, match="RLE"):
        decode_coco_rle({"size": [h + 1, w], "counts": rle_runs(mask)})


def test_coco_polygon_follows_pixel_edges() -> None:
    square = polygons_to_mask([[2, 3, 7, 3, 7, 9, 2, 9]], 12, 10)  # columns 2..6, rows 3..8
    assert square.sum() == 30 and mask_to_box(square).tolist() == [2, 3, 5, 6]


def make_coco(tmp_path: Path, cows) -> tuple[Path, Path]:
    images, annotations = [], []
    for i, (bgr, mask) in enumerate(cows[:3]):
        write_jpg(tmp_path / "train2017" / f"{i:012d}.jpg", bgr)
        h, w = mask.shape
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "height": h, "width": w})
        segmentation = [polygons_of(mask), {"size": [h, w], "counts": rle_string(rle_runs(mask))},
                        {"size": [h, w], "counts": rle_runs(mask)}][i]
        box = mask_to_box(mask).tolist()
        annotations.append({"id": 10 + i, "image_id": i, "iscrowd": 0, "area": int(mask.sum()),
                            "bbox": box, "segmentation": segmentation})
    tiny = [[5, 5, 9, 5, 9, 9]]
    annotations.append({"id": 20, "image_id": 0, "iscrowd": 0, "area": 8, "bbox": [5, 5, 4, 4],
                        "segmentation": tiny})
    annotations.append({"id": 21, "image_id": 1, "iscrowd": 1, "area": 5000, "bbox": [0, 0, 100, 50],
                        "segmentation": {"size": [h, w], "counts": rle_runs(mask)}})
    path = tmp_path / "annotations" / "instances_train2017.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": []}))
    return tmp_path / "train2017", path


def test_coco_instances(tmp_path: Path, cows) -> None:
    images_dir, json_path = make_coco(tmp_path, cows)
    source = CocoInstances(images_dir, json_path, min_area=100, augmentation=NO_PHOTOMETRY)
    assert len(source) == 3  # the tiny and the crowd objects are skipped
    rng = np.random.default_rng(0)
    for i, (bgr, mask) in enumerate(cows[:3]):
        image, loaded, _ = source.load(i)
        assert iou_masks(loaded, mask) > (0.9 if i == 0 else 0.999)
        assert_follows_object(source.clip(i, rng), image, mask)


def test_coco_errors_name_the_missing_path(tmp_path: Path, cows) -> None:
    images_dir, json_path = make_coco(tmp_path, cows)
    with pytest.raises(InputError, match="nowhere"):
        CocoInstances(tmp_path / "nowhere", json_path)
    with pytest.raises(InputError, match="missing.json"):
        CocoInstances(images_dir, tmp_path / "missing.json")
    (images_dir / f"{1:012d}.jpg").unlink()
    with pytest.raises(InputError, match="000000000001.jpg"):
        CocoInstances(images_dir, json_path, min_area=100).load(1)
    # converted files may leave out bbox (area decides) or lose fields: one line, not a KeyError
    data = json.loads(json_path.read_text())
    for ann in data["annotations"]:
        ann.pop("bbox")
    json_path.write_text(json.dumps(data))
    assert len(CocoInstances(images_dir, json_path, min_area=100)) == 3
    for field, said in (("area", "annotation 10 has neither an area nor a bbox"), ("image_id", "10 has no image_id")):
        data["annotations"][0].pop(field)
        json_path.write_text(json.dumps(data))
        with pytest.raises(InputError, match=said):
            CocoInstances(images_dir, json_path, min_area=100)
        data["annotations"][0][field] = 0 if field == "image_id" else 5000


# --- saliency folders and PASCAL VOC ------------------------------------------------

def test_saliency_folders(tmp_path: Path, cows, capsys) -> None:
    for i, (bgr, mask) in enumerate(cows[:3]):
        write_jpg(tmp_path / "DUTS-TR-Image" / f"img_{i}.jpg", bgr)
        write_png(tmp_path / "DUTS-TR-Mask" / f"img_{i}.png", mask.astype(np.uint8) * 255)
        write_jpg(tmp_path / "MSRA10K" / f"{i}.jpg", bgr)
        write_png(tmp_path / "MSRA10K" / f"{i}.png", mask.astype(np.uint8) * 255)
    write_jpg(tmp_path / "DUTS-TR-Image" / "no_mask.jpg", cows[3][0])
    duts = SaliencyFolders(tmp_path / "DUTS-TR-Image", tmp_path / "DUTS-TR-Mask", min_area=100,
                           augmentation=NO_PHOTOMETRY)
    assert capsys.readouterr().err == (f"samn: note: saliency source: 1 of 4 images in {tmp_path / 'DUTS-TR-Image'} "
                                       f"have no mask of the same name (.png, .bmp) in {tmp_path / 'DUTS-TR-Mask'} "
                                       "and are left out, e.g. no_mask.jpg\n")
    msra = SaliencyFolders(tmp_path / "MSRA10K", tmp_path / "MSRA10K", min_area=100)
    assert len(duts) == len(msra) == 3 and capsys.readouterr().err == ""
    rng = np.random.default_rng(1)
    for i in range(3):
        image, mask, _ = duts.load(i)
        assert np.array_equal(mask, cows[i][1])
        assert np.array_equal(msra.load(i)[1], cows[i][1])
        assert_follows_object(duts.clip(i, rng), image, mask)
    with pytest.raises(InputError, match="DUTS-TE-Mask"):
        SaliencyFolders(tmp_path / "DUTS-TR-Image", tmp_path / "DUTS-TE-Mask")
    # a mask of another size is found before training, not when its pair is drawn hours in
    write_png(tmp_path / "DUTS-TR-Mask" / "img_1.png", cv2.resize(cows[1][1].astype(np.uint8) * 255, (40, 30)))
    with pytest.raises(InputError, match=r"1 of 3 masks differ in size from their image, e.g. .*img_1.png is 40x30"):
        SaliencyFolders(tmp_path / "DUTS-TR-Image", tmp_path / "DUTS-TR-Mask")


def test_pascal_voc_objects(tmp_path: Path, cows) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    bgr, mask = cows[0]
    labels = mask.astype(np.uint8)
    outline = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    labels[outline & ~mask] = 255  # VOC draws void around objects
    labels[5:25, 5:40] = 2
    write_jpg(root / "JPEGImages" / "2007_000032.jpg", bgr)
    write_palette_png(root / "SegmentationObject" / "2007_000032.png", labels)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n")
    source = PascalVOCObjects(root, "train", min_area=100, augmentation=NO_PHOTOMETRY)
    assert len(source) == 2
    image, first, _ = source.load(0)
    assert np.array_equal(first, mask)  # void pixels are not the object
    assert np.array_equal(source.load(1)[1], labels == 2)
    assert_follows_object(source.clip(0, np.random.default_rng(2)), image, mask)
    with pytest.raises(InputError, match="val.txt"):
        PascalVOCObjects(root, "val")


def test_views_are_affine_images_of_the_original(cows) -> None:
    bgr, mask = cows[0]
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    views = augment_views(image, mask, np.random.default_rng(3), NO_PHOTOMETRY, count=6)
    h, w = mask.shape
    for view in views:
        back = cv2.invertAffineTransform(view.matrix)
        area_scale = abs(np.linalg.det(view.matrix[:, :2]))
        assert 0.5 * area_scale <= view.mask.sum() / mask.sum() <= 1.1 * area_scale
        mask_back = cv2.warpAffine(view.mask.astype(np.uint8), back, (w, h), flags=cv2.INTER_NEAREST)
        image_back = cv2.warpAffine(view.image, back, (w, h), flags=cv2.INTER_LINEAR)
        seen = cv2.warpAffine(np.ones((h, w), np.uint8), back, (w, h), flags=cv2.INTER_NEAREST) > 0
        assert iou_masks(mask_back > 0, mask & seen) > 0.85
        error = np.abs(image_back.astype(float) - image.astype(float))[inner & seen].mean()
        assert error < 12


def test_photometric_is_brightness_then_contrast_then_saturation(cows) -> None:
    image = cv2.cvtColor(cows[0][0], cv2.COLOR_BGR2RGB)
    aug = ViewAugmentation(blur_prob=0.0, brightness=0.3, contrast=0.3, saturation=0.3)
    for seed in range(4):
        ours = photometric(image, np.random.default_rng(seed), aug).astype(float)
        rng = np.random.default_rng(seed)
        rng.random()  # the blur draw
        f, c, s = (1.0 + rng.uniform(-0.3, 0.3) for _ in range(3))
        x = image.astype(float) * f
        x = (x - x.mean()) * c + x.mean()
        grey = x.mean(axis=2, keepdims=True)
        expected = np.clip((x - grey) * s + grey, 0, 255)
        assert np.abs(ours - expected).max() <= 1.0  # uint8 truncation only
        assert np.abs(ours - image).mean() > 1.0     # it did change the image


# --- videos -------------------------------------------------------------------------

def make_video_folder(base: Path, cows, frames_dir: Path, annotations_dir: Path,
                      cow_from: int = 0, void: bool = False) -> None:
    """Object 2 is the cow from frame ``cow_from``; object 3 (a patch) appears from frame 3;
    ``void`` adds a band of 255 (ignored) labels."""
    for i, (bgr, mask) in enumerate(cows):
        labels = mask.astype(np.uint8) * 2 * (i >= cow_from)
        if i >= 3:
            labels[2:20, 2:30] = 3
        if void:
            labels[-12:] = 255
        write_jpg(base / frames_dir / f"{i * 5:05d}.jpg", bgr)
        write_palette_png(base / annotations_dir / f"{i * 5:05d}.png", labels)


def positions(clip: Clip, frames: list[np.ndarray]) -> list[int]:
    """Which of ``frames`` each clip frame is."""
    return [next(i for i, f in enumerate(frames) if np.array_equal(f, image)) for image in clip.frames]


def check_video_clips(source, frames: list[np.ndarray], labels: list[np.ndarray], max_gap: int,
                      ids: tuple[int, ...], seeds: int = 8, video: int = 0) -> None:
    for seed in range(seeds):
        clip = source.clip(video, np.random.default_rng(seed))
        at = positions(clip, frames)
        assert at[0] < at[1] < at[2] and max(np.diff(at)) <= max_gap
        chosen = [i for i in ids if np.array_equal(clip.masks[0], labels[at[0]] == i)]
        assert len(chosen) == 1 and clip.masks[0].any()  # one object, visible in frame 0
        for position, mask in zip(at, clip.masks):
            assert np.array_equal(mask, labels[position] == chosen[0])


def read_video(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images = folder.parent.parent / "JPEGImages" / folder.name
    frames = [read_image(p) for p in sorted(images.glob("*.jpg"))]
    return frames, [np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_youtube_vos(tmp_path: Path, cows) -> None:
    root = tmp_path / "youtube_vos"
    make_video_folder(root / "train", cows, Path("JPEGImages/a1b2c3"), Path("Annotations/a1b2c3"),
                      void=True)
    make_video_folder(root / "train", cows, Path("JPEGImages/late"), Path("Annotations/late"), cow_from=9)
    source = YouTubeVOS(root, "train", max_gap=2, min_pixels=50)
    assert len(source) == 2 and len(YouTubeVOS(root / "train", max_gap=2)) == 2
    check_video_clips(source, *read_video(root / "train/Annotations/a1b2c3"), max_gap=2, ids=(2, 3))
    # objects only from frame 3 on: every clip starts there
    check_video_clips(source, *read_video(root / "train/Annotations/late"), max_gap=2, ids=(3,), video=1)
    with pytest.raises(InputError, match="valid"):
        YouTubeVOS(root, "valid")
    # a DAVIS sequence converted to this layout keeps its name: held-out sets hold for it too
    with pytest.raises(InputError, match="late belong to a held-out evaluation set"):
        YouTubeVOS(root, "train", held_out=frozenset({"late"}))
    make_video_folder(tmp_path / "empty", cows[:3], Path("JPEGImages/void"), Path("Annotations/void"),
                      cow_from=9)
    with pytest.raises(InputError, match="void"):
        YouTubeVOS(tmp_path / "empty", "train").clip(0, np.random.default_rng(0))


def test_davis16_eval_sequences_are_refused(davis_root: Path) -> None:
    assert [v.name for v in DAVISVideos(davis_root, 2016, split="train").videos] == TRAIN
    for names in (["blackswan"], ["camel", "car-shadow"]):
        with pytest.raises(InputError, match="eval"):
            DAVISVideos(davis_root, 2016, sequences=names)
    with pytest.raises(InputError, match="eval"):
        DAVISVideos(davis_root, 2016, split="eval")


def test_davis16_clips(davis_root: Path) -> None:
    source = DAVISVideos(davis_root, 2016, sequences=["cows"], max_gap=3)
    annotations = sorted((davis_root / "Annotations" / "480p" / "cows").glob("*.png"))
    labels = [(np.array(Image.open(p)) > 127).astype(np.uint8) for p in annotations]
    for seed in range(3):
        clip = source.clip(0, np.random.default_rng(seed))
        at = [next(i for i, m in enumerate(labels) if np.array_equal(m > 0, mask)) for mask in clip.masks]
        assert at[0] < at[1] < at[2] and max(np.diff(at)) <= 3
        for position, image in zip(at, clip.frames):
            assert np.array_equal(image, read_image(frame(davis_root, "cows", position)))


def test_davis17_layout(tmp_path: Path, cows) -> None:
    make_video_folder(tmp_path, cows, Path("JPEGImages/480p/herd"), Path("Annotations/480p/herd"))
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "train.txt").write_text("herd\n")
    frames = [read_image(p) for p in sorted((tmp_path / "JPEGImages/480p/herd").glob("*.jpg"))]
    labels = [np.array(Image.open(p)) for p in sorted((tmp_path / "Annotations/480p/herd").glob("*.png"))]
    check_video_clips(DAVISVideos(tmp_path, 2017, "train", max_gap=2, min_pixels=50), frames, labels,
                      max_gap=2, ids=(2, 3))
    merged = [(label > 0).astype(np.uint8) for label in labels]  # 2016 semantics: all objects as one
    check_video_clips(DAVISVideos(tmp_path, 2016, sequences=["herd"], max_gap=2), frames, merged,
                      max_gap=2, ids=(1,), seeds=2)
    with pytest.raises(InputError, match="val.txt"):
        DAVISVideos(tmp_path, 2017, "val")
    with pytest.raises(InputError, match="ghost"):
        DAVISVideos(tmp_path, 2017, sequences=["ghost"])


# --- synthetic clips ----------------------------------------------------------------

def train_photos(davis_root: Path) -> list[Path]:
    """Every 40th frame of the training sequences: photos for ``SyntheticClips``."""
    return sorted(p for name in TRAIN for p in (davis_root / "JPEGImages" / "480p" / name).glob("*.jpg"))[::40]


def test_synthetic_clips(davis_root: Path) -> None:
    source = SyntheticClips(train_photos(davis_root), count=6, frame_size=(96, 128))
    motion = source.motion
    for index in range(len(source)):
        clip = source.clip(index, np.random.default_rng(index))
        assert [f.shape for f in clip.frames] == [(96, 128, 3)] * 3
        assert clip.masks[0].sum() >= 0.1 * (motion.object_size[0] * 96) ** 2
        first = clip.masks[0]
        for mask, image in zip(clip.masks[1:], clip.frames[1:]):
            touches_border = mask[[0, -1]].any() or mask[:, [0, -1]].any()
            if mask.any() and not touches_border and not (first[[0, -1]].any() or first[:, [0, -1]].any()):
                ratio = mask.sum() / first.sum()
                assert math.exp(-5 * motion.log_scale) < ratio < math.exp(5 * motion.log_scale)
                moved = np.subtract(*[np.argwhere(m).mean(axis=0) for m in (mask, first)])
                assert np.abs(moved).max() <= 2 * motion.velocity * 96 + 3
    again = source.clip(2, np.random.default_rng(2))
    same = source.clip(2, np.random.default_rng(2))
    assert all(np.array_equal(a, b) for a, b in zip(again.frames + again.masks, same.frames + same.masks))
    assert not np.array_equal(again.frames[0], source.clip(2, np.random.default_rng(9)).frames[0])
    with pytest.raises(InputError, match="no_such.jpg"):
        SyntheticClips([davis_root / "no_such.jpg"], count=2)
    with pytest.raises(InputError, match="bmx-trees"):
        SyntheticClips(train_photos(davis_root) + [frame(davis_root, "bmx-trees", 0)], count=2)


# --- crops and the dataset ----------------------------------------------------------

def davis_clip(davis_root: Path, seq: str = "camel", at: tuple[int, ...] = (0, 3, 6)) -> Clip:
    masks = [np.array(Image.open(davis_root / "Annotations" / "480p" / seq / f"{i:05d}.png")) > 127
             for i in at]
    return Clip([read_image(frame(davis_root, seq, i)) for i in at], masks)


def crop_box_centre_size(mask: np.ndarray) -> tuple[np.ndarray, float]:
    x, y, w, h = mask_to_box(mask)
    return np.array([x + (w - 1) / 2, y + (h - 1) / 2]), math.sqrt(w * h)


def test_crop_sample_shapes_and_placement(davis_root: Path) -> None:
    clip = davis_clip(davis_root)
    size, factor = 64, 4.0
    exact = make_crop_sample(clip, size, factor, np.random.default_rng(0), centre_jitter=0, scale_jitter=0)
    assert exact.images.shape == (3, 3, size, size) and exact.masks.shape == (3, 1, size, size)
    assert exact.memory_mask0.shape == (1, size, size)
    assert exact.images.dtype == exact.masks.dtype == exact.memory_mask0.dtype == torch.float32
    assert 0 <= exact.images.min() and exact.images.max() <= 1 and exact.images.std() > 0.05
    assert set(exact.masks.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(exact.memory_mask0, exact.masks[0])
    middle = (size - 1) / 2
    for t in range(3):
        centre, side = crop_box_centre_size(exact.masks[t, 0].numpy() > 0)
        assert np.abs(centre - middle).max() <= 1.5 and abs(side - size / factor) <= 2
    for seed in range(4):
        jittered = make_crop_sample(clip, size, factor, np.random.default_rng(seed), 0.25, 0.25)
        assert torch.equal(jittered.images[0], exact.images[0])  # frame 0 is cropped on the truth
        for t in (1, 2):
            centre, side = crop_box_centre_size(jittered.masks[t, 0].numpy() > 0)
            assert np.abs(centre - middle).max() <= 0.25 * side + 1.5
        assert not torch.equal(jittered.images[1:], exact.images[1:])


def moving_clip(davis_root: Path, step: int = 60) -> Clip:
    """camel's frame 0 moved ``step`` px right per frame (its mask with it): a target whose
    box changes far more between frames than any jitter tested here."""
    image, mask = read_image(frame(davis_root, "camel", 0)), davis_clip(davis_root, at=(0,)).masks[0]
    frames, masks = [], []
    for t in range(3):
        shift = np.float32([[1, 0, step * t], [0, 1, 0]])
        frames.append(cv2.warpAffine(image, shift, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE))
        masks.append(cv2.warpAffine(mask.astype(np.uint8), shift, mask.shape[::-1]) > 0)
    return Clip(frames, masks, name="camel-moving")


class OneClip:
    """A clip source of one clip."""

    def __init__(self, clip: Clip):
        self._clip = clip

    def __len__(self) -> int:
        return 1

    def clip(self, index: int, rng: np.random.Generator) -> Clip:
        return self._clip


def test_each_frame_is_cropped_around_its_own_box_with_the_datasets_jitters(davis_root: Path) -> None:
    """Frames 1 and 2 are cropped around their own boxes (the tracker's crop follows the
    target), jittered in scale only when ``centre_jitter`` is 0: each frame's target stays
    centred, though it moves 60 px a frame. The dataset passes its jitters on by name."""
    clip = moving_clip(davis_root)
    size = 128
    middle = (size - 1) / 2
    dataset = ClipDataset([OneClip(clip)], crop_size=size, length=4, box_init_prob=0.0,
                          centre_jitter=0.0, scale_jitter=0.5)
    sides = set()
    for index in range(len(dataset)):
        sample = dataset[index]
        for t in range(3):
            centre, side = crop_box_centre_size(sample.masks[t, 0].numpy() > 0)
            assert np.abs(centre - middle).max() <= 1.5, (index, t, centre)
            sides.add(round(side))
    assert len(sides) > 3  # the scale was jittered


def test_a_frame_without_the_object_is_cropped_where_the_last_visible_box_was(davis_root: Path) -> None:
    """Frame 2 with the object gone is cropped at frame 1's box (where it was last seen), not
    at frame 0's; its target mask is empty."""
    clip = moving_clip(davis_root)
    gone = Clip(clip.frames[:2] + [clip.frames[1]], clip.masks[:2] + [np.zeros_like(clip.masks[1])])
    sample = make_crop_sample(gone, 64, 4.0, np.random.default_rng(0), centre_jitter=0, scale_jitter=0)
    assert torch.equal(sample.images[2], sample.images[1])
    assert not sample.masks[2].any() and sample.masks[1].any()


def test_a_box_thinner_than_a_crop_pixel_keeps_one_pixel() -> None:
    """A one-pixel box in a crop at a quarter of the frame's scale may hold no crop pixel's
    centre; the box-init memory mask still marks the one pixel it falls in."""
    window = CropWindow(100.0, 100.0, 256.0, 64)
    for x in (100.0, 101.0, 102.0):
        rect = box_in_crop(np.array([x, 100.0, 1.0, 1.0]), window)
        assert rect.sum() == 1.0
        (row,), (col,) = np.nonzero(rect.any(axis=1))[0], np.nonzero(rect.any(axis=0))[0]
        assert abs(col - window.to_crop(x, 100.0)[0]) <= 1 and abs(row - window.to_crop(x, 100.0)[1]) <= 1


def test_box_init_samples(davis_root: Path) -> None:
    source = DAVISVideos(davis_root, 2016, sequences=["camel"])
    dataset = ClipDataset([source], crop_size=64, length=3, box_init_prob=1.0)
    for index in range(len(dataset)):
        sample = dataset[index]
        memory = sample.memory_mask0[0].numpy() > 0
        x, y, w, h = (int(v) for v in mask_to_box(memory))
        rectangle = np.zeros_like(memory)
        rectangle[y:y + h, x:x + w] = True
        assert np.array_equal(memory, rectangle)  # a filled box
        target = sample.masks[0, 0].numpy() > 0
        assert all(torch.equal(sample.images[0], sample.images[t]) for t in (1, 2))
        assert all(torch.equal(sample.masks[0], sample.masks[t]) for t in (1, 2))
        assert not np.array_equal(memory, target)
        grown = cv2.dilate(rectangle.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert not (target & ~grown).any()  # the box holds the mask
        tx, ty, tw, th = mask_to_box(target)
        assert abs(tw - w) <= 2 and abs(th - h) <= 2
    plain = ClipDataset([source], crop_size=64, length=3, box_init_prob=0.0)
    assert all(torch.equal(plain[i].memory_mask0, plain[i].masks[0]) for i in range(3))


def test_dataset_is_deterministic_and_mixes_sources(davis_root: Path) -> None:
    synthetic = SyntheticClips(train_photos(davis_root), count=4, frame_size=(96, 128))
    video = DAVISVideos(davis_root, 2016, sequences=["cows"])
    dataset = ClipDataset([synthetic, video], weights=[1, 1], crop_size=32, length=16, seed=7)
    a, b = dataset[3], dataset[3]
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    other = ClipDataset([synthetic, video], crop_size=32, length=6, seed=8)[3]
    assert not torch.equal(a.images, other.images)
    names = {dataset.clip(i)[0].name.split("-")[0].split("#")[0] for i in range(16)}
    assert names == {"synthetic", "cows"}
    dataset.set_epoch(1)
    assert not torch.equal(a.images, dataset[3].images)
    only_video = ClipDataset([synthetic, video], weights=[0, 1], crop_size=32, length=4)
    assert all(only_video.clip(i)[0].name.startswith("cows#") for i in range(4))
    with pytest.raises(InputError, match="weights"):
        ClipDataset([synthetic, video], weights=[1])
    with pytest.raises(IndexError):
        dataset[16]
