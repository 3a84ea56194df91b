"""DAVIS region similarity J and boundary F-measure, as ``davis2017-evaluation`` defines them.

Semi-supervised protocol: the first and the last frame are not scored; every object is
scored separately and the benchmark means are means over objects (not sequences). F
uses the Martin et al. boundary map and a disk tolerance of ``ceil(0.008 * diagonal)``
pixels with plain dilation (no bipartite matching). The decay bins are computed with
integer indices that do not wrap past 255 frames (the official code casts them to uint8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from samn_tracker.errors import InputError

BOUNDARY_TOLERANCE = 0.008
RECALL_THRESHOLD = 0.5
DECAY_BINS = 4


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: mask IoU; 1.0 when both masks are empty."""
    pred, gt = _pair(pred, gt)
    union = np.count_nonzero(pred | gt)
    return np.count_nonzero(pred & gt) / union if union else 1.0


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary: a pixel differs from its east, south or south-east neighbour.

    On the last row only the east neighbour and on the last column only the south
    neighbour is compared; the bottom-right pixel is never boundary.
    """
    seg = np.asarray(mask, dtype=bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance(shape: tuple[int, int], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """Tolerance radius in pixels: ``tolerance`` itself when >= 1, else ceil(tolerance * diagonal)."""
    if tolerance >= 1:
        return int(tolerance)
    return int(math.ceil(tolerance * math.hypot(*shape)))


def disk(radius: int) -> np.ndarray:
    """Structuring element {(x, y): x^2 + y^2 <= r^2} of size (2r+1, 2r+1)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[None, :] ** 2 + offsets[:, None] ** 2 <= radius ** 2).astype(np.uint8)


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """F: harmonic mean of boundary precision and recall within the disk tolerance."""
    pred, gt = _pair(pred, gt)
    element = disk(boundary_tolerance(pred.shape, tolerance))
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0  # one of precision / recall is 0, the other 1
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), element).astype(bool)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), element).astype(bool)
    precision = np.count_nonzero(pred_b & gt_dil) / n_pred
    recall = np.count_nonzero(gt_b & pred_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass
class Statistics:
    mean: float
    recall: float   # fraction of frames with value > 0.5
    decay: float    # mean of the first quarter minus mean of the last quarter


def statistics(values: np.ndarray) -> Statistics:
    """Mean, recall and decay of one object's per-frame J or F values (NaNs left out of means)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InputError("no scored frame: DAVIS sequences need at least 3 frames")
    recall = np.mean(values > RECALL_THRESHOLD)
    ids = (np.round(np.linspace(1, values.size, DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(DECAY_BINS)]
    return Statistics(mean=float(np.nanmean(values)), recall=float(recall),
                      decay=float(np.nanmean(bins[0]) - np.nanmean(bins[-1])))


@dataclass
class ObjectScores:
    """Per-frame J and F of one object over the scored frames 1..N-2."""

    sequence: str
    object_id: int
    j: np.ndarray
    f: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"


def score_sequence(name: str, pred_ids: list[Optional[np.ndarray]], gt_ids: list[np.ndarray],
                   object_ids: list[int], tolerance: float = BOUNDARY_TOLERANCE) -> list[ObjectScores]:
    """J and F of every object on frames 1..N-2 of id maps (0 = background, k = object k).

    ``pred_ids`` and ``gt_ids`` hold all N frames; frames 0 and N-1 are skipped (their
    predictions may be None).
    """
    if len(pred_ids) != len(gt_ids):
        raise InputError(f"{name}: {len(pred_ids)} result frames for {len(gt_ids)} annotated frames")
    if len(gt_ids) < 3:
        raise InputError(f"{name}: DAVIS scores frames 1..N-2, so it needs at least 3 frames")
    scored = range(1, len(gt_ids) - 1)
    scores = []
    for obj in object_ids:
        j = np.array([region_similarity(pred_ids[t] == obj, gt_ids[t] == obj) for t in scored])
        f = np.array([boundary_f(pred_ids[t] == obj, gt_ids[t] == obj, tolerance) for t in scored])
        scores.append(ObjectScores(sequence=name, object_id=obj, j=j, f=f))
    return scores


@dataclass
class DavisScores:
    jf_mean: float
    j: Statistics
    f: Statistics
    objects: int


def summarize(objects: list[ObjectScores]) -> DavisScores:
    """Benchmark means over objects: J&F-Mean = (J-Mean + F-Mean) / 2."""
    if not objects:
        raise InputError("no object to score")
    js = [statistics(o.j) for o in objects]
    fs = [statistics(o.f) for o in objects]

    def mean_of(stats: list[Statistics]) -> Statistics:
        return Statistics(mean=float(np.mean([s.mean for s in stats])),
                          recall=float(np.mean([s.recall for s in stats])),
                          decay=float(np.mean([s.decay for s in stats])))

    j, f = mean_of(js), mean_of(fs)
    return DavisScores(jf_mean=(j.mean + f.mean) / 2, j=j, f=f, objects=len(objects))


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise InputError(f"masks must be 2-D and of one shape: {pred.shape} vs {gt.shape}")
    return pred, gt
