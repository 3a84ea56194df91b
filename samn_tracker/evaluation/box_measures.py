"""Box accuracy measures exactly as the official GOT-10k, OTB, TrackingNet and LaSOT tools compute them.

All functions take numpy arrays of ``x, y, w, h`` rows (N, 4). The four families differ
in details that move scores by points, so each follows its own tool:

* GOT-10k (``got10k`` toolkit, ``ExperimentGOT10k.report``): continuous areas, both boxes
  clipped to the image, frame 0 and frames with ``cover == 0`` dropped, IoUs pooled over
  all frames of all sequences, success is ``IoU > t`` (strict).
* OTB as got10k reimplements it (``ExperimentOTB.report``, what ``samn bench`` reports): no
  clipping, frame 0 set to ground truth, success ``IoU > t`` over 21 thresholds, precision
  ``error <= t`` px, per-sequence curves averaged.
* TrackingNet (devkit ``metrics.py``, used by the server): all numbers rounded to integers,
  inclusive pixel corners, ``>=`` / ``<=`` thresholds on 21 points, per-sequence curves
  averaged, every score the trapezoid area over ``linspace(0, 1, 21)``.
* OTB's and LaSOT's MATLAB toolkits (``calcSeqErrRobust.m``, LaSOT's ``calc_seq_err_robust.m``
  derived from it): an invalid box (NaN, no area) takes the frame before's, frame 0 set to
  ground truth, inclusive pixel overlap, LaSOT's absent frames left out but counted in each
  sequence's frames, sequences whose curve is all zero left out of the mean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from samn_tracker.errors import InputError
from samn_tracker.regions import iou_boxes

GOT10K_THRESHOLDS = np.linspace(0, 1, 101)
OTB_SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
OTB_PRECISION_THRESHOLDS = np.arange(0, 51)
TN_SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
TN_PRECISION_THRESHOLDS = np.linspace(0, 50, 21)
TN_NORM_PRECISION_THRESHOLDS = np.linspace(0, 0.5, 21)


def as_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """(N, 4) float64 copy; raises InputError naming ``name`` for any other shape."""
    arr = np.array(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"{name} must be rows of x,y,w,h; got shape {arr.shape}")
    return arr


def _paired(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = as_boxes(pred, "predicted boxes"), as_boxes(gt, "ground-truth boxes")
    if pred.shape != gt.shape:
        raise InputError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth boxes")
    return pred, gt


def box_iou(pred, gt, bounds: Optional[tuple[float, float]] = None) -> np.ndarray:
    """Per-row IoU of continuous areas (got10k ``rect_iou``); ``bounds = (W, H)`` clips first."""
    pred, gt = _paired(pred, gt)
    return iou_boxes(pred, gt, bounds=bounds)


# --------------------------------------------------------------------------- GOT-10k
@dataclass
class Got10kScores:
    ao: float
    sr50: float
    sr75: float
    success_curve: np.ndarray  # (101,) mean(IoU > t) for t in linspace(0, 1, 101)
    frames: int                # number of pooled IoUs


def got10k_sequence_ious(pred, gt, cover=None, bounds: Optional[tuple[float, float]] = None) -> np.ndarray:
    """IoUs of frames 1..N-1 where the target is visible (``cover > 0``), clipped to ``bounds``."""
    pred, gt = _paired(pred, gt)
    ious = box_iou(pred[1:], gt[1:], bounds)
    if cover is not None:
        cover = np.asarray(cover, dtype=np.float64).reshape(-1)
        if cover.size != len(gt):
            raise InputError(f"cover has {cover.size} entries for {len(gt)} frames")
        ious = ious[cover[1:] > 0]
    return ious


def got10k_scores(ious: np.ndarray | Iterable[np.ndarray]) -> Got10kScores:
    """AO, SR0.5, SR0.75 and the success curve of IoUs pooled over frames (and sequences)."""
    pooled = ious if isinstance(ious, np.ndarray) else np.concatenate(list(ious) or [np.zeros(0)])
    pooled = np.asarray(pooled, dtype=np.float64).reshape(-1)
    if pooled.size == 0:
        raise InputError("no frame to score (every frame is frame 0 or has cover 0)")
    curve = np.mean(pooled[:, None] > GOT10K_THRESHOLDS[None, :], axis=0)
    return Got10kScores(ao=float(pooled.mean()), sr50=float(np.mean(pooled > 0.5)),
                        sr75=float(curve[75]), success_curve=curve, frames=int(pooled.size))


def got10k_fps(times: Iterable[np.ndarray]) -> float:
    """mean(1 / t) over all positive, finite frame times (frame 0 included), -1 without any."""
    pooled = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1) for t in times] or [np.zeros(0)])
    pooled = pooled[np.isfinite(pooled) & (pooled > 0)]
    return float(np.mean(1.0 / pooled)) if pooled.size else -1.0


# --------------------------------------------------------------------------- OTB
@dataclass
class OTBScores:
    success_auc: float          # mean of the 21-point success curve
    precision_20: float         # precision curve at 20 px
    success_rate_50: float      # success curve at IoU 0.5
    success_curve: np.ndarray   # (21,)
    precision_curve: np.ndarray  # (51,)


def center_error(pred, gt) -> np.ndarray:
    """Distance of box centres (got10k ``center_error``)."""
    pred, gt = _paired(pred, gt)
    return np.sqrt(np.sum((_otb_centres(pred) - _otb_centres(gt)) ** 2, axis=1))


def _otb_centres(boxes: np.ndarray) -> np.ndarray:
    """``x + (w - 1) / 2``, ``y + (h - 1) / 2``: where OTB, got10k and LaSOT put a box's centre."""
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2


def otb_curves(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """One sequence's success curve (IoU > t) and precision curve (error <= t px); frame 0 = GT."""
    pred, gt = _paired(pred, gt)
    pred[0] = gt[0]
    ious = box_iou(pred, gt)
    errors = center_error(pred, gt)
    success = np.mean(ious[:, None] > OTB_SUCCESS_THRESHOLDS[None, :], axis=0)
    precision = np.mean(errors[:, None] <= OTB_PRECISION_THRESHOLDS[None, :], axis=0)
    return success, precision


def otb_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> OTBScores:
    """Success AUC / precision@20 of (prediction, ground truth) pairs: mean of per-sequence curves."""
    curves = [otb_curves(pred, gt) for pred, gt in pairs]
    if not curves:
        raise InputError("no sequence to score")
    success = np.mean([c[0] for c in curves], axis=0)
    precision = np.mean([c[1] for c in curves], axis=0)
    return OTBScores(success_auc=float(success.mean()), precision_20=float(precision[20]),
                     success_rate_50=float(success[10]), success_curve=success,
                     precision_curve=precision)


# --------------------------------------------------------------------------- TrackingNet
@dataclass
class TrackingNetScores:
    success: float              # 100 x trapezoid area of the success curve
    precision: float            # 100 x area of the 0..50 px precision curve (x normalised to 0..1)
    norm_precision: float       # 100 x area of the 0..0.5 normalised-precision curve
    coverage: float             # % of frames whose submitted x + y + w + h > 0
    success_curve: np.ndarray
    precision_curve: np.ndarray
    norm_precision_curve: np.ndarray
    sequences: int


def trackingnet_frame_measures(pred, gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IoU, centre distance and GT-size-normalised distance after rounding.

    Rows of ``pred`` beyond its length (NaN) stay NaN and count as misses; frame 0 of the
    prediction is replaced by the ground truth as on the server.
    """
    pred, gt = np.round(as_boxes(pred, "predicted boxes")), np.round(as_boxes(gt, "ground-truth boxes"))
    if len(pred) != len(gt):
        padded = np.full_like(gt, np.nan)
        padded[:min(len(pred), len(gt))] = pred[:len(gt)]
        pred = padded
    pred[0] = gt[0]
    left = np.maximum(gt[:, 0], pred[:, 0])
    top = np.maximum(gt[:, 1], pred[:, 1])
    right = np.minimum(gt[:, 0] + gt[:, 2] - 1, pred[:, 0] + pred[:, 2] - 1)
    bottom = np.minimum(gt[:, 1] + gt[:, 3] - 1, pred[:, 1] + pred[:, 3] - 1)
    inter = np.clip(np.round(right - left + 1), 0, None) * np.clip(np.round(bottom - top + 1), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (gt[:, 2] * gt[:, 3] + pred[:, 2] * pred[:, 3] - inter)
        diff = _centres(gt) - _centres(pred)
        distance = np.sqrt(np.sum(diff ** 2, axis=1))
        norm_distance = np.sqrt(np.sum((diff / gt[:, 2:]) ** 2, axis=1))
    return iou, distance, norm_distance


def _centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] + 1) / 2


def trackingnet_curves(pred, gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence's success (IoU >= t), precision and normalised precision (<= t) curves."""
    iou, distance, norm_distance = trackingnet_frame_measures(pred, gt)
    with np.errstate(invalid="ignore"):
        success = np.mean(iou[:, None] >= TN_SUCCESS_THRESHOLDS[None, :], axis=0)
        precision = np.mean(distance[:, None] <= TN_PRECISION_THRESHOLDS[None, :], axis=0)
        norm = np.mean(norm_distance[:, None] <= TN_NORM_PRECISION_THRESHOLDS[None, :], axis=0)
    return success, precision, norm


def trackingnet_scores(pairs: Iterable[tuple[Optional[np.ndarray], np.ndarray]]) -> TrackingNetScores:
    """Server scores of (prediction, ground truth) pairs; a missing prediction (None) is all zeros."""
    curves, covered, frames = [], 0, 0
    for pred, gt in pairs:
        gt = as_boxes(gt, "ground-truth boxes")
        pred = np.zeros_like(gt) if pred is None else as_boxes(pred, "predicted boxes")
        submitted = np.full(len(gt), np.nan)
        rows = min(len(pred), len(gt))
        submitted[:rows] = np.round(pred[:rows]).sum(axis=1)
        submitted[0] = np.round(gt[0]).sum()  # the server overwrites frame 0 before counting
        with np.errstate(invalid="ignore"):
            covered += int(np.sum(submitted > 0))
        frames += len(gt)
        curves.append(trackingnet_curves(pred, gt))
    if not curves:
        raise InputError("no sequence to score")
    success, precision, norm = (np.mean([c[i] for c in curves], axis=0) for i in range(3))
    x = TN_SUCCESS_THRESHOLDS
    return TrackingNetScores(
        success=100 * float(np.trapezoid(success, x=x)),
        precision=100 * float(np.trapezoid(precision, x=x)),
        norm_precision=100 * float(np.trapezoid(norm, x=x)),
        coverage=100 * covered / frames, success_curve=success, precision_curve=precision,
        norm_precision_curve=norm, sequences=len(curves))


# --------------------------------------------------------------------------- OTB and LaSOT toolkits
LASOT_NORM_PRECISION_THRESHOLDS = OTB_PRECISION_THRESHOLDS / 100
_MATLAB_EPS = float(np.finfo(np.float64).eps)


@dataclass
class ToolkitScores:
    success: float               # mean of the 21-point success curve (AUC)
    precision: float             # precision curve at 20 px
    norm_precision: float        # normalised precision curve at 0.20 (LaSOT's; OTB's toolkit has none)
    success_curve: np.ndarray    # (21,) over OTB_SUCCESS_THRESHOLDS
    precision_curve: np.ndarray  # (51,) over OTB_PRECISION_THRESHOLDS
    norm_precision_curve: np.ndarray  # (51,) over LASOT_NORM_PRECISION_THRESHOLDS
    sequences: int


def toolkit_curves(pred, gt, absent=None, mend_partial_nan: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sequence's success, precision and normalised precision curves as the MATLAB
    toolkits compute them (OTB's ``calcSeqErrRobust.m``; LaSOT's ``calc_seq_err_robust.m``,
    derived from it, adds the ``absent`` frames), quirks included: a box with no area, or
    with NaN, takes the (mended) box of the frame before where the ground truth has no NaN
    (OTB's test ``isnan(r) | ...`` is elementwise inside an ``if``, so there, with
    ``mend_partial_nan=False``, a box is mended for NaN only where all four numbers are NaN);
    a result longer than the ground truth is cut; frame 0 is the ground truth's box; centres
    are ``x + (w - 1) / 2``; a frame whose ground truth has a coordinate <= 0 or NaN (a box
    touching the left or top edge too) scores overlap -1 (a miss) and error -1 (a hit); an
    absent frame is left out, but every count is over all frames of the sequence."""
    pred, gt = as_boxes(pred, "predicted boxes"), as_boxes(gt, "ground-truth boxes")
    absent = np.zeros(len(gt), dtype=bool) if absent is None else np.asarray(absent).reshape(-1) == 1
    if len(pred) < len(gt) or absent.size != len(gt):
        raise InputError(f"{len(pred)} predicted boxes and {absent.size} absence flags "
                         f"for {len(gt)} ground-truth boxes")
    pred = pred[:len(gt)].copy()
    nan = np.isnan(pred).any(axis=1) if mend_partial_nan else np.isnan(pred).all(axis=1)
    with np.errstate(invalid="ignore"):
        invalid = nan | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
    mended = invalid & ~np.isnan(gt).any(axis=1)
    mended[0] = False
    index = np.arange(len(pred))
    pred = pred[np.maximum.accumulate(np.where(mended, 0, index))]
    pred[0] = gt[0]
    pred, kept = pred[~absent], gt[~absent]
    with np.errstate(invalid="ignore"):
        error = center_error(pred, kept)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm_error = np.sqrt(np.sum((_otb_centres(pred) / kept[:, 2:] - _otb_centres(kept) / kept[:, 2:]) ** 2,
                                    axis=1))
        scored = (kept > 0).all(axis=1)
    overlap = np.full(len(kept), -1.0)
    overlap[scored] = _pixel_overlap(pred[scored], kept[scored])
    error[~scored] = norm_error[~scored] = -1.0
    frames = len(gt) + _MATLAB_EPS
    with np.errstate(invalid="ignore"):
        success = np.sum(overlap[:, None] > OTB_SUCCESS_THRESHOLDS[None, :], axis=0) / frames
        precision = np.sum(error[:, None] <= OTB_PRECISION_THRESHOLDS[None, :], axis=0) / frames
        norm = np.sum(norm_error[:, None] <= LASOT_NORM_PRECISION_THRESHOLDS[None, :], axis=0) / frames
    return success, precision, norm


def _pixel_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``calcRectInt.m``: inclusive pixel corners ``x + w - 1``, areas ``w * h``; MATLAB's
    ``min`` and ``max`` skip NaN, so a box with one NaN coordinate still overlaps."""
    right = np.fmin(a[:, 0] + a[:, 2] - 1, b[:, 0] + b[:, 2] - 1)
    bottom = np.fmin(a[:, 1] + a[:, 3] - 1, b[:, 1] + b[:, 3] - 1)
    inter = (np.fmax(0, right - np.fmax(a[:, 0], b[:, 0]) + 1)
             * np.fmax(0, bottom - np.fmax(a[:, 1], b[:, 1]) + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def toolkit_mean_curve(curves: np.ndarray) -> np.ndarray:
    """``plotDrawSave.m`` (LaSOT's ``plot_draw_save.m``): the mean of the per-sequence curves that are not all zero."""
    curves = np.asarray(curves, dtype=np.float64)
    kept = curves[curves.sum(axis=1) > _MATLAB_EPS]
    return kept.mean(axis=0) if len(kept) else np.full(curves.shape[1], np.nan)


def toolkit_scores(curves: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> ToolkitScores:
    """The toolkits' ranking scores of per-sequence ``toolkit_curves``: success AUC, precision
    at 20 px and normalised precision at 0.20 (their ``rankIdx`` 21 of 0:50 and 0:0.01:0.5)."""
    curves = list(curves)
    if not curves:
        raise InputError("no sequence to score")
    success, precision, norm = (toolkit_mean_curve([c[i] for c in curves]) for i in range(3))
    return ToolkitScores(success=float(success.mean()), precision=float(precision[20]),
                         norm_precision=float(norm[20]), success_curve=success, precision_curve=precision,
                         norm_precision_curve=norm, sequences=len(curves))
