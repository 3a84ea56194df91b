"""A tracked mask snapped to the frame's edges: a guided filter (He, Sun and Tang, TPAMI
2013) of the mask, with the frame's colours as the guide (``EdgeConfig``).

The decoder's logits are at a quarter of the crop's resolution, and the crop is the search
region scaled to ``crop_size``: a target larger than a few dozen pixels comes back with an
outline blurred over several frame pixels. In each window of side 2 ``radius`` + 1 the filter
fits the mask as a linear function of the colour, so its 0.5 level moves onto the colour
edges near the decoder's outline. The coefficients are fitted at 1/``subsample`` of the
resolution and applied at full resolution (He and Sun's fast guided filter, 2015). Only
core OpenCV is used: ``ximgproc``'s filter lives in the contrib package, which
``opencv-python`` can overwrite (``opencv_contrib.py``).
"""
from __future__ import annotations

import cv2
import numpy as np

from samn_tracker.config import EdgeConfig
from samn_tracker.regions import MaskCounts


def snap_to_edges(image: np.ndarray, mask: np.ndarray, counts: MaskCounts,
                  cfg: EdgeConfig) -> tuple[np.ndarray, MaskCounts]:
    """``mask`` (bool HxW, with its ``counts``) filtered with ``image`` (HxWx3 uint8) as the
    guide, and the new mask's counts. The filter stays below 0.5 farther than 2 ``radius`` +
    ``subsample`` pixels from the mask (its two box filters reach 2 ``radius``), so only the
    mask's bounds and that margin, grown to whole ``subsample`` cells, are filtered. An empty
    mask, or one the filter would empty, comes back as it is."""
    bounds = counts.bounds
    if bounds is None:
        return mask, counts
    height, width = mask.shape
    margin = 2 * cfg.radius + cfg.subsample
    rows = _whole_cells(bounds[0].start - margin, bounds[0].stop + margin, cfg.subsample, height)
    columns = _whole_cells(bounds[1].start - margin, bounds[1].stop + margin, cfg.subsample, width)
    level = _guided_filter(image[rows, columns], mask[rows, columns], cfg) >= 0.5
    if not level.any():
        return mask, counts
    snapped = np.zeros_like(mask)
    snapped[rows, columns] = level
    return snapped, MaskCounts.of(snapped, (rows, columns))


def _whole_cells(start: int, stop: int, cell: int, limit: int) -> slice:
    """[start, stop) clipped to [0, limit) and grown to a whole number of ``cell``s where the
    frame has room: OpenCV's area resize to 1/``cell`` takes a path several times faster at a
    whole-number scale (camel's 413 x 531 colour region: 0.4 ms against 1.8, one thread)."""
    start, stop = max(start, 0), min(stop, limit)
    length = -(-(stop - start) // cell) * cell
    stop = min(start + length, limit)
    return slice(max(stop - length, 0), stop)


def _guided_filter(image: np.ndarray, mask: np.ndarray, cfg: EdgeConfig) -> np.ndarray:
    """The filter's output (float32, the region's size), the colour guide scaled to [0, 1]."""
    height, width = mask.shape
    small = (max(width // cfg.subsample, 1), max(height // cfg.subsample, 1))
    guide = cv2.resize(image, small, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    target = cv2.resize(mask.view(np.uint8).astype(np.float32), small, interpolation=cv2.INTER_AREA)
    radius = max(cfg.radius // cfg.subsample, 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return cv2.blur(values, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    guide_mean, target_mean = mean(guide), mean(target)
    covariance = mean(guide * target[..., None]) - guide_mean * target_mean[..., None]
    channels = [guide[..., i] for i in range(3)]
    means = [guide_mean[..., i] for i in range(3)]
    var = {(i, j): mean(channels[i] * channels[j]) - means[i] * means[j] + (cfg.eps if i == j else 0.0)
           for i in range(3) for j in range(i, 3)}
    # the 3x3 colour covariance of each window, inverted by its adjugate
    rr, rg, rb, gg, gb, bb = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
    inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * inv_rr + rg * inv_rg + rb * inv_rb
    c0, c1, c2 = covariance[..., 0], covariance[..., 1], covariance[..., 2]
    slope = np.stack([inv_rr * c0 + inv_rg * c1 + inv_rb * c2,
                      inv_rg * c0 + inv_gg * c1 + inv_gb * c2,
                      inv_rb * c0 + inv_gb * c1 + inv_bb * c2], axis=-1) / det[..., None]
    offset = target_mean - (slope * guide_mean).sum(axis=-1)
    full = (width, height)
    slope = cv2.resize(mean(slope), full, interpolation=cv2.INTER_LINEAR)
    offset = cv2.resize(mean(offset), full, interpolation=cv2.INTER_LINEAR)
    # slope . colour / 255 + offset; OpenCV's per-pixel sum over channels is ~10x numpy's
    weighted = cv2.multiply(slope, image, dtype=cv2.CV_32F)
    return cv2.transform(weighted, np.full((1, 3), 1 / 255, np.float32)) + offset
