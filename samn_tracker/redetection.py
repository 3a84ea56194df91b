"""Where a lost target is looked for beyond its search region (``RedetectionConfig``).

The target's own DCF scores crops of its search region's size laid over the frame: the
scale it was fitted at, so a peak there means what it means while tracking. A search scores
``max_windows`` crops, the nearest the target first and the next ones at each later search,
round the whole frame and then again from the nearest: that bounds the cost of a small
target in a large frame, and the search spreads out from where the target was lost.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from samn_tracker.config import RedetectionConfig
from samn_tracker.crops import CropWindow


def due(lost: int, cfg: RedetectionConfig) -> bool:
    """Whether a target lost for ``lost`` frames in a row is looked for in this frame."""
    return cfg.after > 0 and lost >= cfg.after and (lost - cfg.after) % cfg.every == 0


def turn(lost: int, cfg: RedetectionConfig) -> int:
    """Which search of this loss a due one is: 0 for the first."""
    return (lost - cfg.after) // cfg.every


def _centres(length: int, side: float) -> np.ndarray:
    """Crop centres along one frame axis, half-overlapping from edge to edge; one in the
    middle where a crop spans the axis."""
    first, last = side / 2 - 0.5, length - side / 2 - 0.5
    if last <= first:
        return np.array([(length - 1) / 2])
    return np.linspace(first, last, math.ceil((last - first) / (side / 2)) + 1)


def search_windows(search: CropWindow, shape: tuple[int, int], most: int, turn: int = 0) -> list[CropWindow]:
    """Crops the size of ``search`` over a frame of ``shape`` (H, W), ranked by how near their
    centres lie to ``search``'s: the ``most`` nearest at turn 0, the next ``most`` at turn 1,
    and so on round the ranking (all of them, when there are no more)."""
    height, width = shape
    grid = [(x, y) for y in _centres(height, search.side) for x in _centres(width, search.side)]
    grid.sort(key=lambda c: (c[0] - search.cx) ** 2 + (c[1] - search.cy) ** 2)
    if len(grid) > most:
        first = turn * most % len(grid)
        grid = (grid + grid)[first:first + most]
    return [CropWindow(float(x), float(y), search.side, search.out_size) for x, y in grid]


def moved_box(box: np.ndarray, found: tuple[float, float], peak: float, accepted: float,
              cfg: RedetectionConfig) -> Optional[np.ndarray]:
    """``box`` (x, y, w, h) centred on ``found`` when its ``peak`` reaches ``cfg.min_peak`` x
    the target's mean ``accepted`` peak and ``found`` lies more than the target's size from
    the box's centre (nearer, the tracker's own crop sees it); None: the box stays."""
    x, y, w, h = (float(v) for v in box)
    away = math.hypot(found[0] - (x + (w - 1) / 2), found[1] - (y + (h - 1) / 2))
    if peak < cfg.min_peak * accepted or away <= math.sqrt(w * h):
        return None
    return np.array([found[0] - (w - 1) / 2, found[1] - (h - 1) / 2, w, h])
