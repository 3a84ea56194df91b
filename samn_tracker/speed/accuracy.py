"""Accuracy of one benchmark pass with the project's official-tool measures.

Boxes: GOT-10k AO / SR (frame 0 dropped, frames without target dropped, boxes clipped
to the image, IoUs pooled over sequences) and the OTB success AUC. Masks, when the
tracker gives them and the sequence is annotated: DAVIS J, F and J&F (frames 1..N-2).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from samn_tracker.speed.runs import BenchSequence, TimedRun
from samn_tracker.evaluation.box_measures import got10k_scores, got10k_sequence_ious, otb_scores
from samn_tracker.evaluation.davis_measures import ObjectScores, score_sequence, summarize


def box_ious(boxes: np.ndarray, seq: BenchSequence) -> np.ndarray:
    """GOT-10k IoUs of a run's (N, 4) boxes on ``seq``."""
    cover = seq.boxes[:, 2] * seq.boxes[:, 3] > 0
    return got10k_sequence_ious(boxes, seq.boxes, cover=cover, bounds=seq.size)


def mask_scores(run: TimedRun, seq: BenchSequence) -> Optional[ObjectScores]:
    if run.masks is None or seq.masks is None or len(seq.masks) < 3:
        return None
    ids = [m.astype(np.uint8) for m in run.masks]
    gt_ids = [m.astype(np.uint8) for m in seq.masks]
    return score_sequence(seq.name, ids, gt_ids, [1])[0]


def accuracy(runs: Sequence[TimedRun], sequences: Sequence[BenchSequence]) -> dict:
    """Benchmark-level measures and the same per sequence."""
    per_sequence, ious, objects = {}, [], []
    for run, seq in zip(runs, sequences):
        seq_ious = box_ious(run.boxes, seq)
        ious.append(seq_ious)
        entry = {"frames": len(seq.frames), "mean_iou": float(seq_ious.mean()) if seq_ious.size else None,
                 "success_auc": otb_scores([(run.boxes, seq.boxes)]).success_auc, "lost_frames": run.lost_frames}
        scores = mask_scores(run, seq)
        if scores is not None:
            objects.append(scores)
            entry.update(j=float(np.nanmean(scores.j)), f=float(np.nanmean(scores.f)))
            entry["jf"] = (entry["j"] + entry["f"]) / 2
        per_sequence[seq.name] = entry
    got = got10k_scores(ious)
    result = {"ao": got.ao, "sr50": got.sr50, "sr75": got.sr75,
              "mean_iou": float(np.mean([e["mean_iou"] for e in per_sequence.values()])),
              "success_auc": otb_scores([(r.boxes, s.boxes) for r, s in zip(runs, sequences)]).success_auc,
              "jf": None, "j": None, "f": None, "sequences": per_sequence}
    if objects:
        davis = summarize(objects)
        result.update(jf=davis.jf_mean, j=davis.j.mean, f=davis.f.mean)
    return result
