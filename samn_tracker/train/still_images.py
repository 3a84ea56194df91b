"""Still images with object masks, turned into 3-frame clips by random augmentation.

Stage 1 of the training recipe: one object of one image, three independently
augmented views (affine, blur, brightness; one flip for the whole clip), so the
network learns to match an object across appearance and pose changes before it
sees real videos. Readers: COCO instances, saliency folders, PASCAL VOC objects.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from samn_tracker.errors import InputError
from samn_tracker.exits import note
from samn_tracker.datasets import IMAGE_SUFFIXES, read_image
from samn_tracker.datasets.images import image_shape
from samn_tracker.train.clips import (Clip, check_same_size, read_binary_mask, read_label_png,
                                         require_dir, require_file)


@dataclass
class ViewAugmentation:
    """Ranges of the random view transform; ``min_visible`` is the fraction of the
    object's transformed area that must stay inside the frame."""

    rotation_deg: float = 15.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    translation: float = 0.1
    shear_deg: float = 8.0
    flip_prob: float = 0.5
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    brightness: float = 0.2
    contrast: float = 0.0
    saturation: float = 0.0
    min_visible: float = 0.5
    attempts: int = 10


STRONG_AUGMENTATION = ViewAugmentation(rotation_deg=25.0, scale_range=(0.7, 1.4), translation=0.15,
                                       shear_deg=12.0, blur_prob=0.3, brightness=0.3, contrast=0.3,
                                       saturation=0.4)
"""For sources with few scenes: larger pose and colour changes, so the network learns
to match an object rather than to recognise a scene."""


@dataclass
class View:
    image: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray  # 2x3, original pixel coordinates -> view pixel coordinates


def random_affine(centre: tuple[float, float], shape: tuple[int, int], rng: np.random.Generator,
                  aug: ViewAugmentation, flip: bool) -> np.ndarray:
    """2x3 matrix: optional horizontal flip, then rotation/shear/scale about ``centre``
    and a translation by a fraction of the image size."""
    h, w = shape
    angle = math.radians(rng.uniform(-aug.rotation_deg, aug.rotation_deg))
    shear = math.tan(math.radians(rng.uniform(-aug.shear_deg, aug.shear_deg)))
    lo, hi = aug.scale_range
    scale = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    shift = rng.uniform(-aug.translation, aug.translation, 2) * (w, h)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = np.eye(3)
    linear[:2, :2] = scale * rotation @ np.array([[1.0, shear], [0.0, 1.0]])
    mirror = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if flip else np.eye(3)
    cx, cy, _ = mirror @ np.array([centre[0], centre[1], 1.0])
    to_origin = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx + shift[0]], [0.0, 1.0, cy + shift[1]], [0.0, 0.0, 1.0]])
    return (back @ linear @ to_origin @ mirror)[:2]


def warp_view(image: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask under the same affine map, in a frame of the original size."""
    h, w = mask.shape
    warped = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    warped_mask = cv2.warpAffine(mask.astype(np.uint8) * 255, matrix, (w, h),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return warped, warped_mask >= 128


def photometric(image: np.ndarray, rng: np.random.Generator, aug: ViewAugmentation) -> np.ndarray:
    """Gaussian blur (sometimes), brightness, contrast and saturation factors: camera
    effects, not motion.

    Brightness f, then contrast c about the image mean m, then saturation s about each
    pixel's grey g are one affine map, ``x f c s + g f c (1 - s) + m f (1 - c)``, applied
    in one pass (the data workers spend their time on full-frame passes like these)."""
    if rng.random() < aug.blur_prob:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*aug.blur_sigma))
    brightness = 1.0 + rng.uniform(-aug.brightness, aug.brightness)
    contrast = 1.0 + rng.uniform(-aug.contrast, aug.contrast) if aug.contrast > 0 else 1.0
    saturation = 1.0 + rng.uniform(-aug.saturation, aug.saturation) if aug.saturation > 0 else 1.0
    pixels = image.astype(np.float32)
    grey = cv2.transform(pixels, np.full((1, 3), 1.0 / 3.0))  # channel mean, one fast pass
    mean = float(grey.mean())
    scale = brightness * contrast
    out = pixels * (scale * saturation)
    out += (grey * (scale * (1.0 - saturation)) + mean * brightness * (1.0 - contrast))[..., None]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def augment_views(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                  aug: ViewAugmentation, count: int = 3) -> list[View]:
    """``count`` views of one object; a view whose object leaves the frame is redrawn,
    and after ``aug.attempts`` misses the untransformed (possibly flipped) view is used."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise InputError("cannot augment an empty object mask")
    centre = (float(xs.mean()), float(ys.mean()))
    area = float(xs.size)
    flip = bool(rng.random() < aug.flip_prob)
    views = []
    for _ in range(count):
        for _attempt in range(aug.attempts):
            matrix = random_affine(centre, mask.shape, rng, aug, flip)
            warped, warped_mask = warp_view(image, mask, matrix)
            if warped_mask.sum() >= aug.min_visible * abs(np.linalg.det(matrix[:, :2])) * area:
                break
        else:
            no_motion = ViewAugmentation(rotation_deg=0, scale_range=(1, 1), translation=0,
                                         shear_deg=0)
            matrix = random_affine(centre, mask.shape, rng, no_motion, flip)
            warped, warped_mask = warp_view(image, mask, matrix)
        views.append(View(photometric(warped, rng, aug), warped_mask, matrix))
    return views


class StillImageSource:
    """Base of the still-image readers: ``load(index)`` gives one image and one object
    mask, ``clip`` augments it into three views."""

    min_area: float
    augmentation: ViewAugmentation

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        raise NotImplementedError

    def clip(self, index: int, rng: np.random.Generator) -> Clip:
        """Views of object ``index``; an object found empty or tiny on disk (labels are
        only read lazily for large folders) is replaced by the next one."""
        for step in range(len(self)):
            image, mask, name = self.load((index + step) % len(self))
            if mask.sum() >= max(self.min_area, 1):
                views = augment_views(image, mask, rng, self.augmentation)
                return Clip([v.image for v in views], [v.mask for v in views], name=name)
        raise InputError(f"{type(self).__name__}: no object of at least {self.min_area} pixels")


def decode_rle_counts(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (LEB128-like, 5 bits per character,
    offset 48; from the fourth run on each value is a delta to the run two before)."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise InputError(f"truncated COCO RLE string {counts[:40]!r}")
            chunk = ord(counts[pos]) - 48
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            pos += 1
            shift += 5
            if not more and chunk & 0x10:
                value -= 1 << shift  # sign-extend
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def decode_coco_rle(rle: dict) -> np.ndarray:
    """Bool HxW mask of a COCO RLE (``counts`` a list of ints or a compressed string);
    runs alternate background/foreground in column-major order."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    runs = decode_rle_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(runs) != height * width or min(runs, default=0) < 0:
        raise InputError(f"COCO RLE runs cover {sum(runs)} pixels, expected {height}x{width}")
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T.copy()


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Fill COCO polygons (flat x0,y0,x1,y1,... lists in pixel-edge coordinates): a pixel
    is inside when most of it is, found on a 4x supersampled grid because cv2.fillPoly
    alone also takes every pixel the outline touches."""
    factor, shift = 4, 4
    fine = np.zeros((height * factor, width * factor), dtype=np.uint8)
    points = [np.round((np.asarray(p, dtype=np.float64).reshape(-1, 2) * factor - 0.5) * (1 << shift))
              .astype(np.int32) for p in polygons if len(p) >= 6]
    if points:
        cv2.fillPoly(fine, points, 1, lineType=cv2.LINE_8, shift=shift)
    coverage = fine.reshape(height, factor, width, factor).sum(axis=(1, 3))
    return coverage * 2 > factor * factor


def coco_segmentation_to_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):
        return polygons_to_mask(segmentation, height, width)
    return decode_coco_rle(segmentation)


@dataclass
class _CocoObject:
    file_name: str
    height: int
    width: int
    segmentation: list | dict = field(repr=False)


def _box_area(bbox) -> float | None:
    """w x h of a COCO ``bbox`` (x, y, w, h), or None where there is none."""
    return float(bbox[2]) * float(bbox[3]) if isinstance(bbox, list) and len(bbox) == 4 else None


class CocoInstances(StillImageSource):
    """COCO-style ``instances_*.json``: every non-crowd object of at least ``min_area``
    pixels is a sample."""

    def __init__(self, images_dir: Path | str, instances_json: Path | str, min_area: float = 1024.0,
                 augmentation: ViewAugmentation | None = None):
        self.images_dir = require_dir(images_dir, "COCO images")
        path = require_file(instances_json, "COCO instances json")
        self.min_area = min_area
        self.augmentation = augmentation or ViewAugmentation()
        try:
            data = json.loads(path.read_text())
            images = {im["id"]: im for im in data["images"]}
            annotations = data["annotations"]
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"{path} is not a COCO instances file: {error}") from None
        self.objects = []
        for ann in annotations:
            if ann.get("iscrowd", 0) or not ann.get("segmentation"):
                continue
            area = ann["area"] if "area" in ann else _box_area(ann.get("bbox"))
            if area is None:
                raise InputError(f"{path}: annotation {ann.get('id')} has neither an area nor a bbox")
            if area < min_area:
                continue
            if "image_id" not in ann:
                raise InputError(f"{path}: annotation {ann.get('id')} has no image_id")
            image = images.get(ann["image_id"])
            if image is None:
                raise InputError(f"{path}: annotation {ann.get('id')} refers to missing image "
                                 f"{ann['image_id']}")
            self.objects.append(_CocoObject(image["file_name"], int(image["height"]),
                                            int(image["width"]), ann["segmentation"]))
        if not self.objects:
            raise InputError(f"{path}: no non-crowd object of at least {min_area} pixels")

    def __len__(self) -> int:
        return len(self.objects)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        obj = self.objects[index]
        image_path = self.images_dir / obj.file_name
        image = read_image(image_path)
        if image.shape[:2] != (obj.height, obj.width):
            raise InputError(f"{image_path} is {image.shape[1]}x{image.shape[0]}, the json says "
                             f"{obj.width}x{obj.height}")
        return image, coco_segmentation_to_mask(obj.segmentation, obj.height, obj.width), obj.file_name


class SaliencyFolders(StillImageSource):
    """Salient-object datasets (ECSSD, MSRA10K, DUTS): image and 0/255 mask matched by
    file stem; the two folders may be the same (MSRA10K keeps .jpg images next to .png
    masks)."""

    MASK_SUFFIXES = (".png", ".bmp")

    def __init__(self, images_dir: Path | str, masks_dir: Path | str, min_area: float = 1024.0,
                 augmentation: ViewAugmentation | None = None):
        images_dir = require_dir(images_dir, "saliency images")
        masks_dir = require_dir(masks_dir, "saliency masks")
        self.min_area = min_area
        self.augmentation = augmentation or ViewAugmentation()
        masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in self.MASK_SUFFIXES}
        images = {p.stem: p for p in images_dir.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p != masks.get(p.stem)}
        self.pairs = [(images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
        if not self.pairs:
            raise InputError(f"no image in {images_dir} has a mask with the same name in {masks_dir}")
        # sizes from the files' headers, before training: a pair met hours in stopped the run
        # there, and --resume met it again
        shapes = [(pair, image_shape(pair[0]), image_shape(pair[1])) for pair in self.pairs]
        mismatched = [(pair, shape, mask_shape) for pair, shape, mask_shape in shapes if shape != mask_shape]
        if mismatched:
            (image_path, mask_path), (height, width), (mask_height, mask_width) = mismatched[0]
            raise InputError(f"saliency source: {len(mismatched)} of {len(self.pairs)} masks differ in size from "
                             f"their image, e.g. {mask_path} is {mask_width}x{mask_height} but "
                             f"{image_path} is {width}x{height}")
        unmatched = sorted(images.keys() - masks.keys())
        if unmatched:  # a renamed mask (b_mask.png) would otherwise shrink the data unseen
            note(f"saliency source: {len(unmatched)} of {len(images)} images in {images_dir} have no mask of "
                 f"the same name ({', '.join(self.MASK_SUFFIXES)}) in {masks_dir} and are left out, "
                 f"e.g. {images[unmatched[0]].name}")

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        image_path, mask_path = self.pairs[index]
        image, mask = read_image(image_path), read_binary_mask(mask_path)
        check_same_size(image, mask, image_path, mask_path)
        return image, mask, image_path.stem


class PascalVOCObjects(StillImageSource):
    """PASCAL VOC ``SegmentationObject`` palette PNGs: each object id of each image in
    ``ImageSets/Segmentation/<split>.txt`` is a sample; 255 (void) is background."""

    def __init__(self, root: Path | str, split: str = "train", min_area: float = 1024.0,
                 augmentation: ViewAugmentation | None = None):
        root = require_dir(root, "PASCAL VOC root")
        self.images_dir = require_dir(root / "JPEGImages", "PASCAL VOC images")
        self.labels_dir = require_dir(root / "SegmentationObject", "PASCAL VOC object labels")
        split_file = require_file(root / "ImageSets" / "Segmentation" / f"{split}.txt",
                                  "PASCAL VOC split")
        self.min_area = min_area
        self.augmentation = augmentation or ViewAugmentation()
        self.objects: list[tuple[str, int]] = []
        for stem in split_file.read_text().split():
            labels = read_label_png(require_file(self.labels_dir / f"{stem}.png", "PASCAL VOC label"))
            ids, areas = np.unique(labels, return_counts=True)
            self.objects += [(stem, int(i)) for i, a in zip(ids, areas)
                             if 0 < i < 255 and a >= min_area]
        if not self.objects:
            raise InputError(f"{split_file}: no object of at least {min_area} pixels")

    def __len__(self) -> int:
        return len(self.objects)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        stem, object_id = self.objects[index]
        image_path, label_path = self.images_dir / f"{stem}.jpg", self.labels_dir / f"{stem}.png"
        image, labels = read_image(image_path), read_label_png(label_path)
        check_same_size(image, labels, image_path, label_path)
        return image, labels == object_id, f"{stem}#{object_id}"
