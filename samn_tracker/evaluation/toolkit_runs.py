"""What the OTB and LaSOT adapters share. LaSOT's MATLAB toolkit was derived from OTB's, and
both score one-pass result files with ``box_measures.toolkit_curves``: reading a run's files,
the success per attribute, the summary and the step from tracking to a saved summary are one
code for both."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Optional, Sequence

import numpy as np

from samn_tracker.datasets.groundtruth import read_text
from samn_tracker.errors import InputError
from samn_tracker.evaluation import box_measures, options
from samn_tracker.evaluation.runner import BenchmarkSequence, OnePassWriter
from samn_tracker.evaluation.summaries import Summary, fps_score, frames_per_second, summary_path


@dataclass
class ToolkitResult:
    scores: box_measures.ToolkitScores
    fps: Optional[float]  # None: no time files (results made elsewhere)
    names: list[str]
    per_attribute: dict[str, float] = field(default_factory=dict)  # success AUC, attributes of >= 2 sequences


def read_result_boxes(path: Path) -> np.ndarray:
    """A result file as the toolkit's ``dlmread`` takes it: numbers split by commas, tabs or
    spaces (pytracking writes tabs), so that published trackers' results score too."""
    rows = [re.split(r"[,\s]+", line.strip()) for line in read_text(path).splitlines() if line.strip()]
    try:
        boxes = np.array(rows, dtype=np.float64)
    except ValueError:  # a word, or rows of different lengths
        boxes = np.zeros(0)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"{path}: expected 4 numbers per line (x,y,w,h), separated by commas, tabs or spaces")
    return boxes


def result_curves(run_dir: Path, name: str, truth: np.ndarray, absent: Optional[np.ndarray] = None,
                  mend_partial_nan: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sequence's curves from its result file: a longer file is cut, as the toolkits cut it,
    a shorter one or none is named."""
    result_file = Path(run_dir) / f"{name}.txt"
    if not result_file.is_file():
        raise InputError(f"no results for sequence {name}: {result_file}")
    boxes = read_result_boxes(result_file)
    if len(boxes) < len(truth):
        raise InputError(f"{result_file} has {len(boxes)} boxes for {len(truth)} frames")
    return box_measures.toolkit_curves(boxes, truth, absent, mend_partial_nan)


def scored(run_dir: Path, names: Sequence[str], curves: list, attributes: Optional[Sequence[Collection[str]]],
           order: Sequence[str]) -> ToolkitResult:
    """The run's scores and FPS; given each sequence's attributes, the success (AUC) per
    attribute, in ``order``, over the sequences that have it where at least two do, as the
    toolkits' attribute plots are drawn."""
    per_attribute = {}
    if attributes is not None:
        success = np.array([c[0] for c in curves])
        for attribute in order:
            having = [i for i, held in enumerate(attributes) if attribute in held]
            if len(having) >= 2:
                per_attribute[attribute] = float(box_measures.toolkit_mean_curve(success[having]).mean())
    return ToolkitResult(scores=box_measures.toolkit_scores(curves),
                         fps=frames_per_second(OnePassWriter(run_dir).time_files(names)), names=list(names),
                         per_attribute=per_attribute)


def summary(benchmark: str, split: str, tracker: str, result: ToolkitResult, norm_precision: bool) -> Summary:
    """Success and precision with their curves; LaSOT's normalised precision too."""
    s = result.scores
    scores = {"Success": s.success, "Precision": s.precision}
    curves = {"success": s.success_curve.tolist(), "success_x": box_measures.OTB_SUCCESS_THRESHOLDS.tolist(),
              "precision": s.precision_curve.tolist(),
              "precision_x": box_measures.OTB_PRECISION_THRESHOLDS.astype(float).tolist()}
    if norm_precision:
        scores["Norm. Precision"] = s.norm_precision
        curves.update(norm_precision=s.norm_precision_curve.tolist(),
                      norm_precision_x=box_measures.LASOT_NORM_PRECISION_THRESHOLDS.tolist())
    return Summary(benchmark=benchmark, split=split, tracker=tracker, scores={**scores, **fps_score(result.fps)},
                   curves=curves, sequences=list(result.names), per_attribute=result.per_attribute)


def track_and_score(args: argparse.Namespace, sequences: list[BenchmarkSequence], run_dir: Path, split_dir: Path,
                    split_size: int, score: Callable[[], ToolkitResult],
                    summarise: Callable[[ToolkitResult], Summary]) -> Optional[ToolkitResult]:
    """Track this rank's share of ``sequences`` into ``run_dir`` (unless ``--score-only``);
    on rank 0, once every result is there, score them and save the summary in ``split_dir``.
    None on the other ranks."""
    tracker = options.tracker_name(args)
    options.prepare(args, run_dir, beside=(summary_path(split_dir, tracker).parent,))
    if not options.run_shard(args, sequences, OnePassWriter(run_dir)):
        return None
    result = score()
    replace(summarise(result), split_size=split_size).save(summary_path(split_dir, tracker))
    return result
