"""The contract between training data sources and the training loop, and the file
reading every source shares.

A source yields :class:`Clip` objects: three full-frame RGB images with the masks of one
object. Sources live in ``still_images`` (COCO, saliency folders, PASCAL VOC),
``video_clips`` (YouTube-VOS, DAVIS) and ``synthetic``; ``sampling`` turns clips into the
cropped tensors the loop consumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from samn_tracker.errors import InputError


@dataclass
class Clip:
    """One training sample before cropping: three frames of the same object."""

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    box_init: bool = False
    name: str = field(default="", compare=False)


class ClipSource(Protocol):
    def __len__(self) -> int: ...

    def clip(self, index: int, rng: np.random.Generator) -> Clip: ...


def require_dir(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{what}: folder {path} does not exist")
    return path


def require_file(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what}: file {path} does not exist")
    return path


def read_label_png(path: Path) -> np.ndarray:
    """Per-pixel object ids of a palette (or grayscale) annotation PNG, as uint8 HxW."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise InputError(f"annotation {path} is a {image.mode} image; expected a "
                                 "palette or grayscale PNG of object ids")
            return np.array(image, dtype=np.uint8)
    except (OSError, SyntaxError) as error:
        raise InputError(f"cannot read annotation {path}: {error}") from None


def read_binary_mask(path: Path) -> np.ndarray:
    """Foreground of a 0/255 (or 0/1) mask image, any bit depth or channel count."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(f"cannot read mask {path} (missing or not an image)")
    return mask > (127 if mask.max() > 1 else 0)


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    if image.shape[:2] != mask.shape[:2]:
        raise InputError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image "
                         f"{image_path} is {image.shape[1]}x{image.shape[0]}")
