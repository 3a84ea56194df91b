"""Square search-region crops around a target and the mapping back to the frame.

A crop is described by its centre (x, y) in frame pixels and its side in frame
pixels; it is resampled to ``out_size`` x ``out_size``. The same functions make the
training crops, so training sees what the tracker sees on a CPU (on a GPU the tracker
crops by ``grid_sample``, ``frame_ops.DeviceFrames``: the same window, other rounding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from samn_tracker.regions import box_centre


@dataclass(frozen=True)
class CropWindow:
    """Where a crop lies in the frame: centre (cx, cy), side in frame pixels, output size."""

    cx: float
    cy: float
    side: float
    out_size: int

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.out_size / self.side

    def affine(self) -> np.ndarray:
        """2x3 matrix mapping frame coordinates to crop coordinates."""
        s = self.scale
        # Pixel centres: frame point (cx, cy) lands on the crop's centre (out-1)/2.
        half = (self.out_size - 1) / 2.0
        return np.array([[s, 0.0, half - s * self.cx], [0.0, s, half - s * self.cy]])

    def to_crop(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple:
        half = (self.out_size - 1) / 2.0
        return (x - self.cx) * self.scale + half, (y - self.cy) * self.scale + half

    def to_frame(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple:
        half = (self.out_size - 1) / 2.0
        return (u - half) / self.scale + self.cx, (v - half) / self.scale + self.cy


def window_around(box: np.ndarray, factor: float, out_size: int) -> CropWindow:
    """Crop of side ``factor * sqrt(w h)`` centred on a box (x, y, w, h)."""
    x, y, w, h = (float(v) for v in box)
    side = factor * math.sqrt(max(w, 1.0) * max(h, 1.0))
    return CropWindow(*box_centre((x, y, w, h)), max(side, 1.0), out_size)


def jittered_window(box: np.ndarray, search_factor: float, crop_size: int, rng: np.random.Generator,
                    centre_jitter: float, scale_jitter: float) -> CropWindow:
    """Crop as the tracker would place it from an imperfect estimate: centre moved by up
    to ``centre_jitter`` x sqrt(w h) per axis, side scaled by exp(N(0, scale_jitter))."""
    truth = window_around(box, search_factor, crop_size)
    size = math.sqrt(max(box[2], 1.0) * max(box[3], 1.0))
    dx, dy = rng.uniform(-centre_jitter, centre_jitter, 2) * size
    side = truth.side * math.exp(rng.normal() * scale_jitter)
    return CropWindow(truth.cx + dx, truth.cy + dy, side, crop_size)


def crop_image(image: np.ndarray, window: CropWindow) -> np.ndarray:
    """Resample the window of an HxWxC (or HxW) image bilinearly (``warpAffine`` has no
    area averaging: INTER_AREA gives the same pixels); outside the frame repeats the border."""
    return cv2.warpAffine(image, window.affine(), (window.out_size, window.out_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_mask(mask: np.ndarray, window: CropWindow) -> np.ndarray:
    """Float mask in [0, 1] over the window; outside the frame is background."""
    return cv2.warpAffine(mask.astype(np.float32), window.affine(),
                          (window.out_size, window.out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def paste_back(crop_values: np.ndarray, window: CropWindow, shape: tuple[int, int]) -> np.ndarray:
    """Map a float map over the crop back to an HxW frame (zero outside the crop)."""
    h, w = shape
    return cv2.warpAffine(crop_values.astype(np.float32), window.affine(), (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
