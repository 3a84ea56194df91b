"""OTB: one-pass (OPE) runs over a version's targets (or every target found), scored as the
MATLAB toolkit (tracker_benchmark v1.0) scores them; and UAV123 and UAV20L (``--version uav123``,
``uav20l``), whose toolkit scores with OTB's own ``calcSeqErrRobust.m``.

Results go to ``<out>/<version>/<tracker>/<target>.txt`` (``x,y,w,h`` per frame, row 0 the
given box), as pysot and most published archives name them, and seconds per frame to
``.../times/<target>.txt``. Scores (``box_measures.toolkit_curves`` without absent frames, as
``calcSeqErrRobust.m``, ``genPerfMat.m`` and ``plotDrawSave.m``): success AUC over overlap
thresholds 0:0.05:1, precision at 20 px, and the success AUC per attribute.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker.datasets.groundtruth import read_boxes
from samn_tracker.datasets import otb as otb_data
from samn_tracker.datasets import uav123
from samn_tracker.datasets.otb import ATTRIBUTES, Target, TargetInfo, frame_files, read_table
from samn_tracker.evaluation import options, toolkit_runs
from samn_tracker.evaluation.runner import BenchmarkSequence
from samn_tracker.evaluation.summaries import Summary, fps_text
from samn_tracker.evaluation.toolkit_runs import ToolkitResult
from samn_tracker.errors import InputError

VERSIONS = (*otb_data.VERSIONS, *uav123.SUBSETS)
HINT_FOLDERS = 50  # the folders of a wrong --root looked into for the videos, and of each the entries


@dataclass
class Truth:
    frames: list[Path]
    boxes: np.ndarray
    file: Path  # the ground-truth file the boxes come from


def find_target(root: Path, name: str, version: str) -> Optional[Target]:
    if version in uav123.SUBSETS:
        return uav123.find_sequence(root, name, version)
    return otb_data.find_target(root, name)


def target_names(root: Path, version: str, table: dict[str, TargetInfo]) -> list[str]:
    return list(uav123.ranges(version)) if version in uav123.SUBSETS else otb_data.target_names(root, version, table)


def read_truth(root: Path, name: str, version: str, table: dict[str, TargetInfo]) -> Truth:
    """A target's frames and ground truth, one box per frame; read before tracking too, so
    that a bad file stops the run first."""
    found = find_target(root, name, version)
    if found is None:
        raise InputError(f"{name} not found in {root} ({where(version)})")
    if version in uav123.SUBSETS:
        span = uav123.ranges(version)[name][1:]
    else:
        info = otb_data.target_info(table, name)
        span = info.frames if info else None
    frames = frame_files(found, span)
    boxes = read_boxes(found.groundtruth)
    if len(boxes) != len(frames):
        images = f" (images {span[0]}-{span[1]})" if span else ""
        raise InputError(f"{found.groundtruth} has {len(boxes)} boxes for the {len(frames)} frames of {name}{images}")
    return Truth(frames, boxes, found.groundtruth)


def _spelling(name: str) -> str:
    """A target's name as archives vary it: got10k's ``Jogging.1``, pytracking's ``Jogging_1``
    and ``Human4_2``, lower case."""
    key = name.lower().replace("_", "-").replace(".", "-")
    return "human4" if key == "human4-2" else key


def check_result_names(run_dir: Path, names: Sequence[str]) -> None:
    """Say which files of a published archive to rename, rather than that their targets have
    no results."""
    found = {_spelling(path.stem): path.name for path in Path(run_dir).glob("*.txt")}
    renames = [f"{found[_spelling(name)]} to {name}.txt" for name in names
               if not (Path(run_dir) / f"{name}.txt").is_file() and _spelling(name) in found]
    if renames:
        raise InputError(f"{run_dir} names {len(renames)} targets otherwise than the toolkit does: rename "
                         f"{options.listed(renames)}")


def _root_hint(args: argparse.Namespace, missing: Sequence[str]) -> str:
    """Where the videos are when ``--root`` is a level off, or a UAV123 download is read as OTB;
    a few folders looked at, so that a wrong root of thousands answers at once."""
    if args.version not in uav123.SUBSETS and (args.root / "data_seq").is_dir():
        return "; this is a UAV123 download: add --version uav123 (or uav20l)"
    children = sorted(p for p in args.root.iterdir() if p.is_dir())[:HINT_FOLDERS]
    for near in (args.root.parent, *children):
        if _looks_like_root(near, args.version):
            return f"; give --root {near}"
    takes_all = args.version in otb_data.VERSIONS and args.version != "all"
    return "; --version all takes the videos that are there" if takes_all else ""


def _looks_like_root(folder: Path, version: str) -> bool:
    if version in uav123.SUBSETS:
        return (folder / "data_seq").is_dir() and (folder / "anno").is_dir()
    try:
        return any((entry / "img").is_dir() for entry in islice(folder.iterdir(), HINT_FOLDERS))
    except OSError:  # a parent that may not be listed
        return False


def where(version: str) -> str:
    """Where a target's files lie, for the error that finds them missing."""
    if version in uav123.SUBSETS:
        return f"as data_seq/UAV123/<video>/ with anno/{uav123.SUBSETS[version]}/<sequence>.txt"
    return "as <video>/ with img/ and groundtruth_rect.txt, or <video>/groundtruth_rect.<n>.txt for <video>-<n>"


def score(root: Path, run_dir: Path, names: Sequence[str], version: str,
          table: dict[str, TargetInfo]) -> ToolkitResult:
    """The toolkit's scores of the results in ``run_dir``, and the success per attribute over
    the targets that have it where there are at least two (perfPlot.m's attribute plots; OTB's
    attributes only)."""
    curves = [toolkit_runs.result_curves(run_dir, name, read_truth(root, name, version, table).boxes,
                                         mend_partial_nan=False) for name in names]
    infos = [otb_data.target_info(table, name) for name in names]
    attributes = None if version in uav123.SUBSETS else [info.attributes if info else () for info in infos]
    return toolkit_runs.scored(run_dir, names, curves, attributes, ATTRIBUTES)


def summary(tracker: str, version: str, result: ToolkitResult) -> Summary:
    return toolkit_runs.summary("otb", version, tracker, result, norm_precision=False)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="samn eval otb", epilog="examples:\n"
        "  samn eval otb --root /data/OTB100\n"
        "  samn eval otb --root /data/OTB100 --version otb2013\n"
        "  samn eval otb --root /data/OTB100 --score-only --tracker-name SiamRPN++\n"
        "  samn eval otb --root /data/UAV123 --version uav123\n"
        "  samn eval otb --root /data/UAV123 --version uav20l\n"
        "  torchrun --nproc_per_node 4 -m samn_tracker.evaluation.cli otb --root /data/OTB100",
        description="Run SAMN on OTB (one pass from the first box) and score it as the MATLAB toolkit "
        "(tracker_benchmark v1.0) does: success AUC, precision at 20 px, success per attribute, and their "
        "plots (samn report). Resumable; shard with torchrun.")
    parser.add_argument("--root", type=Path, required=True,
                        help="OTB root: <video>/img/ and groundtruth_rect.txt; UAV123's: data_seq/ and anno/")
    parser.add_argument("--version", choices=VERSIONS, default="otb2015",
                        help="otb2015 (OTB-100, 100 targets), otb2013 (CVPR13, 51), tb50 (50), all: every "
                             "target under --root, uav123 (123 sequences) or uav20l (UAV20L, 20 whole videos) "
                             "(default: otb2015)")
    parser.add_argument("--out", type=Path, default=Path("results/otb"), help="default: results/otb")
    parser.add_argument("--score-only", action="store_true",
                        help="do not track, only score what <out>/<version>/<tracker>/ holds")
    options.add_tracker_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return options.run_command("samn eval otb", build_parser(), _run, argv)


def _run(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        raise InputError(f"--root {args.root} is not a folder")
    table = read_table()
    dataset = uav123.SUBSETS.get(args.version, f"OTB {args.version}")
    every = target_names(args.root, args.version, table)
    names = options.requested(args.sequences) or every
    options.check_known(names, every, dataset)
    missing = [name for name in names if find_target(args.root, name, args.version) is None]
    if missing:
        raise InputError(f"{len(missing)} of the {len(names)} targets are not in {args.root} "
                         f"({where(args.version)}): {options.listed(missing)}{_root_hint(args, missing)}")
    truths = {name: read_truth(args.root, name, args.version, table) for name in names}
    sequences = [BenchmarkSequence.from_box_file(name, truth.frames, truth.file) for name, truth in truths.items()]
    tracker = options.tracker_name(args)
    run_dir = args.out / args.version / tracker
    if args.score_only:
        check_result_names(run_dir, names)
    result = toolkit_runs.track_and_score(args, sequences, run_dir, args.out / args.version, len(every),
                                          lambda: score(args.root, run_dir, names, args.version, table),
                                          lambda scores: summary(tracker, args.version, scores))
    if result is None:
        return 0
    s = result.scores
    print(f"{tracker} on {dataset} ({len(names)} sequences): Success {s.success:.3f}  "
          f"Precision {s.precision:.3f}  fps {fps_text(result.fps)}")
    options.print_coverage(len(names), len(every), dataset)
    return 0
