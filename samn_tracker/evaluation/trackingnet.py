"""TrackingNet: runs over a split, the evaluation-server zip, and local scores of splits with GT.

Dataset layout (per split, e.g. ``TEST``, ``TRAIN_0``): ``frames/<seq>/0.jpg, 1.jpg, ...``
and ``anno/<seq>.txt`` (``x,y,w,h`` per frame; TEST has the first frame only). Results:
``<out>/<split>/<tracker>/<seq>.txt`` with one ``x,y,w,h`` line per frame including
frame 0 (the given box), ``times/<seq>.txt`` with seconds per frame; the submission zip
``<out>/<split>/<tracker>.zip`` holds the ``<seq>.txt`` files at its root.
"""
from __future__ import annotations

import argparse
import io
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker import atomic
from samn_tracker.datasets.groundtruth import read_boxes
from samn_tracker.datasets.trackingnet import annotation_file, frame_files, sequence_names
from samn_tracker.evaluation import box_measures, options
from samn_tracker.evaluation.runner import BenchmarkSequence, BoxWriter
from samn_tracker.evaluation.summaries import Summary, fps_score, fps_text, frames_per_second, summary_path
from samn_tracker.errors import InputError


def load_sequences(split_dir: Path) -> list[BenchmarkSequence]:
    """Frames ``0.jpg ...`` and the first annotated box of every sequence of the split."""
    split_dir = Path(split_dir)
    return [BenchmarkSequence.from_box_file(name, frame_files(split_dir, name), annotation_file(split_dir, name))
            for name in sequence_names(split_dir)]


class TrackingNetWriter(BoxWriter):
    """``<seq>.txt`` (what the server reads) and ``times/<seq>.txt``."""

    def result_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.txt"

    def time_file(self, name: str) -> Path:
        return self.run_dir / "times" / f"{name}.txt"


def submission_zip(run_dir: Path, names: Sequence[str]) -> Path:
    """``<run_dir>.zip`` with one ``<seq>.txt`` per sequence at the zip root."""
    run_dir = Path(run_dir)
    missing = [n for n in names if not (run_dir / f"{n}.txt").is_file()]
    if missing:
        raise InputError(f"cannot pack the submission: {len(missing)} sequences have no results "
                         f"in {run_dir}: {options.listed(missing)}")
    path = run_dir.with_suffix(".zip")
    atomic.write_zip(path, [(run_dir / f"{n}.txt", f"{n}.txt") for n in names])
    return path


@dataclass
class TrackingNetResult:
    scores: box_measures.TrackingNetScores
    fps: Optional[float]  # None: no time files (a zip, results made elsewhere)
    missing: list[str]
    names: list[str] = field(default_factory=list)  # the sequences scored, the missing ones as zero


def _predictions(results: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Boxes per sequence from a results folder or a submission zip (matched by file name)."""
    found = {}
    if results.is_file():
        try:
            with zipfile.ZipFile(results) as archive:
                entries = {Path(n).name: n for n in archive.namelist() if n.endswith(".txt")}
                for name in names:
                    if f"{name}.txt" in entries:
                        text = archive.read(entries[f"{name}.txt"]).decode(errors="replace")
                        found[name] = read_boxes(io.StringIO(text)) if text.strip() else np.zeros((0, 4))
        except zipfile.BadZipFile as err:
            raise InputError(f"{results} is not a readable zip file ({err})") from None
    elif results.is_dir():
        for name in names:
            if (results / f"{name}.txt").is_file():
                found[name] = read_boxes(results / f"{name}.txt")
    else:
        raise InputError(f"TrackingNet results not found: {results}")
    return found


def score(split_dir: Path, results: Path, names: Optional[Sequence[str]] = None) -> TrackingNetResult:
    """Success / precision / normalised precision like the server; missing sequences score zero."""
    split_dir, results = Path(split_dir), Path(results)
    names = list(names or sequence_names(split_dir))
    predictions = _predictions(results, names)
    pairs = []
    for name in names:
        gt = read_boxes(annotation_file(split_dir, name))
        if len(gt) < 2:
            raise InputError(f"{split_dir / 'anno' / (name + '.txt')} holds only the first frame: "
                             "this split's ground truth is withheld (submit the zip to the server)")
        pairs.append((predictions.get(name), gt))
    if not predictions:  # a zip or folder of another split: all zero would say nothing
        raise InputError(f"{results} holds no results for any of the {len(names)} sequences scored "
                         f"({options.listed(names)}): is it a run on {split_dir.name}?")
    fps = frames_per_second(results / "times" / f"{name}.txt" for name in names) if results.is_dir() else None
    return TrackingNetResult(scores=box_measures.trackingnet_scores(pairs), fps=fps,
                             missing=[n for n in names if n not in predictions], names=names)


def summary(tracker: str, split: str, result: TrackingNetResult) -> Summary:
    s = result.scores
    return Summary(benchmark="trackingnet", split=split, tracker=tracker,
                   scores={"Success": s.success, "Precision": s.precision,
                           "Norm. Precision": s.norm_precision, **fps_score(result.fps)},
                   curves={"success": s.success_curve.tolist(),
                           "success_x": box_measures.TN_SUCCESS_THRESHOLDS.tolist(),
                           "precision": s.precision_curve.tolist(),
                           "precision_x": box_measures.TN_PRECISION_THRESHOLDS.tolist(),
                           "norm_precision": s.norm_precision_curve.tolist(),
                           "norm_precision_x": box_measures.TN_NORM_PRECISION_THRESHOLDS.tolist()},
                   sequences=list(result.names))


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="samn eval trackingnet", epilog="examples:\n"
        "  samn eval trackingnet --root /data/TrackingNet --split TEST   (the server zip)\n"
        "  samn eval trackingnet --root /data/TrackingNet --split TRAIN_0 --sequences=-3TIfnTSM6c_2,NAME2\n"
        "  samn eval trackingnet --root /data/TrackingNet --split TRAIN_0 --score-zip results.zip",
        description="Run SAMN on a TrackingNet split: TEST -> the "
        "server zip; a split with full annotations -> Success / Precision / Norm. Precision. "
        "Resumable; shard with torchrun.")
    parser.add_argument("--root", type=Path, required=True, help="TrackingNet root (holds TEST/, TRAIN_0/...)")
    parser.add_argument("--split", default="TEST", help="split folder name (default: TEST)")
    parser.add_argument("--out", type=Path, default=Path("results/trackingnet"),
                        help="default: results/trackingnet")
    parser.add_argument("--score-only", action="store_true", help="do not track, only score / pack")
    parser.add_argument("--score-zip", type=Path,
                        help="score this submission zip against the split's annotations and exit")
    options.add_tracker_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return options.run_command("samn eval trackingnet", build_parser(), _run, argv)


def _print_scores(label: str, result: TrackingNetResult) -> None:
    s = result.scores
    print(f"{label}: Success {s.success:.2f}  Precision {s.precision:.2f}  "
          f"Norm. Precision {s.norm_precision:.2f}  Coverage {s.coverage:.2f}  fps {fps_text(result.fps)}")
    if result.missing:
        print(f"  {len(result.missing)} sequences without results scored as zero, as the server does: "
              f"{options.listed(result.missing)}")


def _run(args: argparse.Namespace) -> int:
    options.check_root(args.root, args.split, "anno", "TrackingNet", "--split")
    split_dir = args.root / args.split
    if args.score_zip:
        names = options.requested(args.sequences)
        options.check_known(names or [], sequence_names(split_dir), split_dir)
        _print_scores(str(args.score_zip), score(split_dir, args.score_zip, names))
        return 0
    name = options.tracker_name(args)
    out_dir = args.out / args.split
    run_dir = out_dir / name
    sequences = options.select(load_sequences(split_dir), args.sequences, split_dir)
    names = [s.name for s in sequences]
    withheld = any(len(read_boxes(annotation_file(split_dir, n))) < 2 for n in names)  # TEST
    options.prepare(args, run_dir, beside=(out_dir, summary_path(out_dir, name).parent))
    writer = TrackingNetWriter(run_dir)
    if not options.run_shard(args, sequences, writer, missing_score_zero=not withheld):
        return 0
    missing = [s.name for s in sequences if not writer.is_done(s)]
    if not args.sequences:
        print(f"submission: {submission_zip(run_dir, names)}" if not missing
              else f"no submission zip: {len(missing)} sequences have no complete results")
    elif withheld:  # nothing is scored either: say where the results are
        print(f"results in {run_dir} (no zip: --sequences given, the server needs all "
              f"{len(sequence_names(split_dir))})")
    if withheld:
        return 0
    result = score(split_dir, run_dir, names)
    split_size = len(sequence_names(split_dir))
    replace(summary(name, args.split, result), split_size=split_size).save(summary_path(out_dir, name))
    _print_scores(f"{name} on TrackingNet {args.split} ({len(names)} sequences)", result)
    options.print_coverage(len(names), split_size, f"TrackingNet {args.split}")
    return 0
