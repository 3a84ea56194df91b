"""LaSOT: one-pass runs over the test split (or every sequence found), scored as its toolkit scores.

Results go to ``<out>/<split>/<tracker>_tracking_result/<seq>.txt`` (``x,y,w,h`` per frame,
row 0 the given box), the layout the official MATLAB toolkit reads from its
``tracking_results/`` folder, and seconds per frame to ``.../times/<seq>.txt``. Scores
(``box_measures.toolkit_curves``): success AUC, precision at 20 px and normalised precision at
0.20. The toolkit reads its own ground truth and absence flags (``annos/<seq>.txt``,
``annos/absent/<seq>.txt``) and the 14 attributes of each sequence (``annos/att``);
``--toolkit-annos`` scores with those, as it does, and adds the success AUC per attribute.
Without them a frame is absent where the dataset flags full occlusion or out of view.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker.datasets.groundtruth import read_boxes, read_numbers
from samn_tracker.datasets.lasot import (SPLITS, absent_frames, find_sequence, frame_files, sequence_folder,
                                        sequence_folders, sequence_names)
from samn_tracker.evaluation import options, toolkit_runs
from samn_tracker.evaluation.runner import BenchmarkSequence
from samn_tracker.evaluation.summaries import Summary, fps_text
from samn_tracker.evaluation.toolkit_runs import ToolkitResult
from samn_tracker.errors import InputError

# The order of the flags in the toolkit's annos/att/<seq>.txt (run_tracker_performance_evaluation.m).
ATTRIBUTES = ("Illumination Variation", "Partial Occlusion", "Deformation", "Motion Blur", "Camera Motion",
              "Rotation", "Background Clutter", "Viewpoint Change", "Scale Variation", "Full Occlusion",
              "Fast Motion", "Out-of-View", "Low Resolution", "Aspect Ratio Change")


def load_sequences(root: Path, names: Sequence[str]) -> list[BenchmarkSequence]:
    """Frames and the first ground-truth box of each sequence."""
    folders = [(name, sequence_folder(root, name)) for name in names]
    return [BenchmarkSequence.from_box_file(name, frame_files(folder), folder / "groundtruth.txt")
            for name, folder in folders]


def result_folder(out: Path, split: str, tracker: str) -> Path:
    return Path(out) / split / f"{tracker}_tracking_result"


@dataclass
class Truth:
    boxes: np.ndarray
    absent: np.ndarray
    attributes: Optional[np.ndarray] = None  # (14,) flags, from the toolkit's annos/att


def read_truth(root: Path, name: str, annos: Optional[Path] = None) -> Truth:
    """What a sequence is scored against: the toolkit's files where ``annos`` is given,
    else the dataset's; read before tracking too, so that a bad file stops the run first."""
    if annos is None:
        folder = sequence_folder(root, name)
        boxes = read_boxes(folder / "groundtruth.txt")
        return Truth(boxes, absent_frames(folder, len(boxes)))
    boxes = read_boxes(_toolkit_file(annos, f"{name}.txt"))
    absent = read_numbers(_toolkit_file(annos / "absent", f"{name}.txt"))
    attributes = read_numbers(_toolkit_file(annos / "att", f"{name}.txt"), delimiter=",")
    if absent.size != len(boxes):
        raise InputError(f"{annos / 'absent' / (name + '.txt')} has {absent.size} flags for {len(boxes)} boxes")
    if attributes.size != len(ATTRIBUTES):
        raise InputError(f"{annos / 'att' / (name + '.txt')} has {attributes.size} flags, not {len(ATTRIBUTES)}")
    return Truth(boxes, absent, attributes)


def _toolkit_file(folder: Path, name: str) -> Path:
    if not (folder / name).is_file():
        raise InputError(f"--toolkit-annos: {folder / name} not found (give the toolkit's annos/ folder, "
                         "which holds <seq>.txt, absent/ and att/)")
    return folder / name


def score(root: Path, run_dir: Path, names: Sequence[str], annos: Optional[Path] = None) -> ToolkitResult:
    """The toolkit's scores of the results in ``run_dir``; with ``annos`` also per attribute,
    over the sequences that have it where there are at least two, as its plots are drawn."""
    curves, attributes = [], []
    for name in names:
        truth = read_truth(root, name, annos)
        curves.append(toolkit_runs.result_curves(run_dir, name, truth.boxes, truth.absent))
        if annos is not None:
            attributes.append({a for a, flag in zip(ATTRIBUTES, truth.attributes) if flag > 0})
    return toolkit_runs.scored(run_dir, names, curves, attributes if annos is not None else None, ATTRIBUTES)


def summary(tracker: str, split: str, result: ToolkitResult) -> Summary:
    return toolkit_runs.summary("lasot", split, tracker, result, norm_precision=True)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="samn eval lasot", epilog="examples:\n"
        "  samn eval lasot --root /data/LaSOT\n"
        "  samn eval lasot --root /data/LaSOT --toolkit-annos /data/LaSOT_Evaluation_Toolkit/annos\n"
        "  samn eval lasot --root /data/LaSOT --preset paper --device cuda --batch 16\n"
        "  torchrun --nproc_per_node 4 -m samn_tracker.evaluation.cli lasot --root /data/LaSOT",
        description="Run SAMN on LaSOT (one pass from the first box) and score it as the official "
        "toolkit does: success AUC, precision at 20 px, normalised precision at 0.20, and their plots "
        "(samn report). Resumable; shard with torchrun.")
    parser.add_argument("--root", type=Path, required=True,
                        help="LaSOT root: <class>/<class>-<n>/ folders, or the test download's <class>-<n>/")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="test: the toolkit's 280 test sequences (Protocol II); all: every sequence under "
                             "--root (default: test)")
    parser.add_argument("--out", type=Path, default=Path("results/lasot"), help="default: results/lasot")
    parser.add_argument("--toolkit-annos", type=Path, metavar="DIR",
                        help="the official toolkit's annos/ folder: score with its ground truth and absence "
                             "flags, exactly as it does, and add the success per attribute")
    parser.add_argument("--score-only", action="store_true", help="do not track, only score")
    options.add_tracker_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return options.run_command("samn eval lasot", build_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        raise InputError(f"--root {args.root} is not a folder")
    if not sequence_folders(args.root):
        near = [p for p in (args.root.parent, *sorted(args.root.iterdir())) if p.is_dir() and sequence_folders(p)]
        raise InputError(f"--root {args.root} is not a LaSOT root (no <class>/<class>-<n>/ or <class>-<n>/ folder "
                         "with img/ and groundtruth.txt)" + (f"; give --root {near[0]}" if near else ""))
    if args.toolkit_annos is not None and not args.toolkit_annos.is_dir():
        raise InputError(f"--toolkit-annos {args.toolkit_annos} is not a folder")
    every = sequence_names(args.root, args.split)
    names = options.requested(args.sequences) or every
    options.check_known(names, every, f"LaSOT {args.split}")
    missing = [name for name in names if find_sequence(args.root, name) is None]
    if missing:
        raise InputError(f"{len(missing)} of the {len(names)} sequences are not in {args.root} (as <class>/<name>/ "
                         f"or <name>/, with img/ and groundtruth.txt): {options.listed(missing)}"
                         + ("; --split all takes the sequences that are there" if args.split == "test" else ""))
    for name in names:
        read_truth(args.root, name, args.toolkit_annos)
    sequences = load_sequences(args.root, names)
    tracker = options.tracker_name(args)
    run_dir = result_folder(args.out, args.split, tracker)
    result = toolkit_runs.track_and_score(args, sequences, run_dir, args.out / args.split, len(every),
                                          lambda: score(args.root, run_dir, names, args.toolkit_annos),
                                          lambda scores: summary(tracker, args.split, scores))
    if result is None:
        return 0
    s = result.scores
    print(f"{tracker} on LaSOT {args.split} ({len(names)} sequences): Success {s.success:.3f}  "
          f"Precision {s.precision:.3f}  Norm. Precision {s.norm_precision:.3f}  fps {fps_text(result.fps)}")
    options.print_coverage(len(names), len(every), f"LaSOT {args.split}")
    return 0
