"""Procedural 3-frame clips for machines without a segmentation dataset.

A random shape (polygon, ellipse or blob) cut from one real photo moves by a random
affine motion over a background cut from another, with a slight camera motion and
distractor shapes behind it; the target's mask is known exactly. Real textures keep
the appearance statistics close to what the ImageNet backbone expects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from samn_tracker.errors import InputError
from samn_tracker.datasets import read_image
from samn_tracker.train.clips import Clip, require_file
from samn_tracker.train.still_images import ViewAugmentation, photometric
from samn_tracker.train.video_clips import refuse_eval_photos


@dataclass
class SyntheticMotion:
    """Per-frame motion ranges; sizes are fractions of the frame's shorter side."""

    object_size: tuple[float, float] = (0.15, 0.4)
    velocity: float = 0.08
    rotation_deg: float = 15.0
    log_scale: float = 0.1
    camera_shift: float = 0.03
    max_distractors: int = 2


def random_shape(side: int, rng: np.random.Generator) -> np.ndarray:
    """Float alpha (side x side) of a random polygon, ellipse or blob, edges softened
    by a pixel so the object does not stand out by a perfect aliased outline."""
    canvas = np.zeros((side, side), dtype=np.uint8)
    centre = side / 2.0
    kind = rng.integers(3)
    if kind == 0:
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 11))))
        radii = rng.uniform(0.4, 1.0, angles.size) * side * 0.48
        points = np.stack([centre + radii * np.cos(angles), centre + radii * np.sin(angles)], 1)
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)
    elif kind == 1:
        axes = (int(side * 0.48), int(side * 0.48 * rng.uniform(0.3, 1.0)))
        cv2.ellipse(canvas, (int(centre), int(centre)), axes, float(rng.uniform(0, 180)), 0, 360,
                    255, -1)
    else:
        for _ in range(int(rng.integers(3, 7))):
            radius = side * rng.uniform(0.12, 0.25)
            x, y = centre + rng.uniform(-1, 1, 2) * (side * 0.48 - radius)
            cv2.circle(canvas, (int(x), int(y)), int(radius), 255, -1)
        canvas = ((cv2.GaussianBlur(canvas, (0, 0), side * 0.05) > 127) * 255).astype(np.uint8)
    return cv2.GaussianBlur(canvas, (0, 0), 0.7).astype(np.float32) / 255.0


def random_patch(photo: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random region of a photo (at least a third of its shorter side), resized."""
    ph, pw = photo.shape[:2]
    aspect = width / height
    crop_h = int(rng.uniform(1 / 3, 1.0) * min(ph, pw / aspect))
    crop_w = max(int(crop_h * aspect), 1)
    crop_h = max(crop_h, 1)
    y = int(rng.integers(0, ph - crop_h + 1))
    x = int(rng.integers(0, pw - crop_w + 1))
    return cv2.resize(photo[y:y + crop_h, x:x + crop_w], (width, height), interpolation=cv2.INTER_AREA)


def similarity(centre: np.ndarray, angle_deg: float, scale: float, pivot: float) -> np.ndarray:
    """2x3 map from shape-canvas coordinates (pivot at its centre) to frame coordinates."""
    matrix = cv2.getRotationMatrix2D((pivot, pivot), angle_deg, scale)
    matrix[:, 2] += centre - pivot
    return matrix


def paste(frame: np.ndarray, texture: np.ndarray, alpha: np.ndarray,
          placement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend a placed shape over a frame; returns the frame and the shape's alpha."""
    h, w = frame.shape[:2]
    a = cv2.warpAffine(alpha, placement, (w, h), flags=cv2.INTER_LINEAR)
    tex = cv2.warpAffine(texture, placement, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
    blended = frame.astype(np.float32) * (1 - a[..., None]) + tex * a[..., None]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8), a


class SyntheticClips:
    """``count`` procedural clips built from ``photos`` (any RGB images)."""

    def __init__(self, photos: list[Path], count: int, frame_size: tuple[int, int] = (240, 320),
                 motion: SyntheticMotion | None = None):
        if not photos:
            raise InputError("SyntheticClips needs at least one photo for textures and backgrounds")
        if count < 1:
            raise InputError(f"SyntheticClips count must be positive, got {count}")
        self.photos = [require_file(p, "synthetic-clip photo") for p in photos]
        refuse_eval_photos(self.photos)
        self.count = count
        self.frame_size = frame_size
        self.motion = motion or SyntheticMotion()
        self.photometric = ViewAugmentation(blur_prob=0.2, brightness=0.1)

    def __len__(self) -> int:
        return self.count

    def photo(self, rng: np.random.Generator) -> np.ndarray:
        return read_image(self.photos[int(rng.integers(len(self.photos)))])

    def moving_object(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Texture, alpha and the three frame placements of one shape."""
        h, w = self.frame_size
        m = self.motion
        side = max(int(rng.uniform(*m.object_size) * min(h, w)), 8)
        alpha = random_shape(side, rng)
        texture = random_patch(self.photo(rng), side, side, rng)
        start = rng.uniform(0.25, 0.75, 2) * (w, h)
        velocity = rng.uniform(-m.velocity, m.velocity, 2) * min(h, w)
        spin = rng.uniform(-m.rotation_deg, m.rotation_deg)
        growth = rng.uniform(-m.log_scale, m.log_scale)
        angle0 = rng.uniform(0, 360)
        placements = [similarity(start + t * velocity, angle0 + t * spin, math.exp(t * growth),
                                 (side - 1) / 2.0) for t in range(3)]
        return texture, alpha, placements

    def clip(self, index: int, rng: np.random.Generator, attempts: int = 10) -> Clip:
        """A clip whose target is visible in frame 0; a random shape that ends up with no
        pixel (rare: thin shapes, strong shrink) is drawn again."""
        for _ in range(attempts):
            frames, masks = self._draw(rng)
            if masks[0].any():
                return Clip(frames, masks, name=f"synthetic-{index}")
        h, w = self.frame_size
        raise InputError(f"synthetic clip {index}: empty target after {attempts} draws "
                         f"(frame size {w}x{h} too small)")

    def _draw(self, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
        h, w = self.frame_size
        m = self.motion
        background = random_patch(self.photo(rng), w, h, rng)
        distractors = [self.moving_object(rng) for _ in range(int(rng.integers(0, m.max_distractors + 1)))]
        target = self.moving_object(rng)
        shake = rng.uniform(-m.camera_shift, m.camera_shift, (3, 2)) * (w, h)
        frames, masks = [], []
        for t in range(3):
            camera = np.float64([[1, 0, shake[t, 0]], [0, 1, shake[t, 1]]])
            frame = cv2.warpAffine(background, camera, (w, h), borderMode=cv2.BORDER_REFLECT_101)
            for texture, alpha, placements in distractors:
                frame, _ = paste(frame, texture, alpha, placements[t])
            frame, target_alpha = paste(frame, target[0], target[1], target[2][t])
            frames.append(photometric(frame, rng, self.photometric))
            masks.append(target_alpha >= 0.5)
        return frames, masks
