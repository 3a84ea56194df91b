"""GOT-10k: runs in the ``got10k`` toolkit's result layout, AO / SR scores, test-server zip.

Results go to ``<out>/<subset>/GOT-10k/<tracker>/<seq>/<seq>_001.txt`` (``%.3f`` boxes,
comma separated, row 0 = the given box) and ``<seq>_time.txt`` (seconds per frame), which
is exactly what ``ExperimentGOT10k(root, subset, result_dir=<out>/<subset>)`` writes and
reads; so its ``report`` works on our runs and our scores equal its AO / SR. The tracker
is seeded and deterministic, so one repetition is run (the toolkit does the same for
``is_deterministic`` trackers). ``--toolkit`` runs through ``ExperimentGOT10k`` itself.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker import atomic
from samn_tracker.devices import Rank
from samn_tracker.datasets.got10k import SUBSETS, cover_labels, frame_files, resolution, sequence_names
from samn_tracker.datasets.groundtruth import read_boxes, read_numbers
from samn_tracker.evaluation import box_measures, options
from samn_tracker.evaluation.runner import BenchmarkSequence, BoxWriter, Tracker
from samn_tracker.evaluation.summaries import Summary, fps_score, fps_text, summary_path
from samn_tracker.errors import InputError

TOOLKIT_FOLDER = "GOT-10k"
# What --toolkit cannot honour: ExperimentGOT10k tracks the whole split itself, one target
# at a time in one process, with its own progress lines.
NOT_WITH_TOOLKIT = {"sequences": "--sequences", "score_only": "--score-only", "batch": "--batch",
                    "groups": "--groups", "no_progress": "--no-progress"}


def load_sequences(root: Path, subset: str) -> list[BenchmarkSequence]:
    """Frames (``*.jpg`` in order) and the first ground-truth box of every listed sequence."""
    folders = [(name, Path(root) / subset / name) for name in sequence_names(root, subset)]
    return [BenchmarkSequence.from_box_file(name, frame_files(folder), folder / "groundtruth.txt")
            for name, folder in folders]


class Got10kWriter(BoxWriter):
    """The got10k toolkit's layout: ``<seq>/<seq>_001.txt`` and ``<seq>/<seq>_time.txt``."""

    def result_file(self, name: str) -> Path:
        return self.run_dir / name / f"{name}_001.txt"

    def time_file(self, name: str) -> Path:
        return self.run_dir / name / f"{name}_time.txt"


@dataclass
class Got10kResult:
    scores: box_measures.Got10kScores
    fps: float
    per_sequence: dict[str, dict[str, float]]


def score(root: Path, run_dir: Path, subset: str = "val",
          names: Optional[Sequence[str]] = None) -> Got10kResult:
    """AO / SR0.5 / SR0.75 / fps as ``ExperimentGOT10k.report`` computes them (all repetitions)."""
    if subset == "test":
        raise InputError("the GOT-10k test ground truth is withheld: submit the zip to the server")
    pooled, times, per_sequence = [], [], {}
    for name in names or sequence_names(root, subset):
        gt, cover, bounds = read_truth(root, subset, name)
        records = sorted((Path(run_dir) / name).glob(f"{glob_escape(name)}_[0-9]*.txt"))
        if not records:
            raise InputError(f"no results for sequence {name} in {Path(run_dir) / name}")
        ious = []
        for record in records:
            boxes = read_boxes(record)
            if boxes.shape != gt.shape:
                raise InputError(f"{record} has {len(boxes)} boxes for {len(gt)} frames")
            ious.append(box_measures.got10k_sequence_ious(boxes, gt, cover, bounds))
        ious = np.concatenate(ious)
        time_file = Path(run_dir) / name / f"{name}_time.txt"
        if not time_file.is_file():
            raise InputError(f"timing file missing: {time_file}")
        seq_times = read_numbers(time_file, delimiter=",")
        pooled.append(ious)
        times.append(seq_times)
        per_sequence[name] = {"AO": float(ious.mean()) if ious.size else float("nan"),
                              "SR0.5": float(np.mean(ious > 0.5)) if ious.size else float("nan"),
                              "FPS": box_measures.got10k_fps([seq_times]), "frames": len(gt) - 1}
    return Got10kResult(scores=box_measures.got10k_scores(pooled), fps=box_measures.got10k_fps(times),
                        per_sequence=per_sequence)


def read_truth(root: Path, subset: str, name: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """What a val sequence is scored against: its boxes, cover labels and image bounds;
    read once before tracking too, so that a bad file stops the run before it starts."""
    folder = Path(root) / subset / name
    gt = read_boxes(folder / "groundtruth.txt")
    cover = cover_labels(folder, len(gt))
    scored = np.flatnonzero((cover > 0) & ~np.isfinite(gt).all(axis=1))
    scored = scored[scored > 0]  # frame 0 is not scored
    if scored.size:  # the toolkit scores the frame: its IoU, and so AO, is NaN
        raise InputError(f"{folder / 'groundtruth.txt'} line {scored[0] + 1} has no box (NaN) where cover.label "
                         f"says the target is in view ({scored.size} such frames): AO would be NaN; mend the "
                         "files or leave the sequence out with --sequences")
    return gt, cover, resolution(folder)


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def submission_zip(root: Path, run_dir: Path, subset: str = "test") -> Path:
    """``<run_dir>.zip`` with the sequence folders at the zip root, as the server wants."""
    run_dir = Path(run_dir)
    members = []
    for name in sequence_names(root, subset):
        files = sorted((run_dir / name).glob(f"{glob_escape(name)}_*.txt"))
        if not any(f.name == f"{name}_001.txt" for f in files):
            raise InputError(f"cannot pack the submission: no results for {name} in {run_dir / name}")
        members += [(f, f"{name}/{f.name}") for f in files]
    path = run_dir.with_suffix(".zip")
    atomic.write_zip(path, members)
    return path


def timed(fps: float) -> Optional[float]:
    """The toolkit's fps, or None for its -1 (no time files: results made elsewhere)."""
    return None if fps < 0 else fps


def summary(tracker: str, subset: str, result: Got10kResult) -> Summary:
    s = result.scores
    return Summary(benchmark="got10k", split=subset, tracker=tracker,
                   scores={"AO": s.ao, "SR0.5": s.sr50, "SR0.75": s.sr75, **fps_score(timed(result.fps))},
                   curves={"success": s.success_curve.tolist(),
                           "success_x": box_measures.GOT10K_THRESHOLDS.tolist()},
                   sequences=list(result.per_sequence))


# ----------------------------------------------------------------------- toolkit adapter
def toolkit_tracker(tracker: Tracker, name: str):
    """Our tracker as a ``got10k.trackers.Tracker`` (PIL images in, ``x,y,w,h`` boxes out)."""
    from got10k.trackers import Tracker as ToolkitTracker

    class Adapter(ToolkitTracker):
        def __init__(self) -> None:
            super().__init__(name=name, is_deterministic=True)

        def init(self, image, box) -> None:
            tracker.initialize(np.asarray(image), np.asarray(box, dtype=np.float64))

        def update(self, image) -> np.ndarray:
            return np.array(tracker.track(np.asarray(image)).box, dtype=np.float64)

    return Adapter()


def run_toolkit(root: Path, subset: str, out: Path, tracker: Tracker, name: str):
    """``ExperimentGOT10k.run`` + ``report`` with the workarounds its 2019 code needs.

    Absolute result / report folders (its test report ``chdir``s into relative ones) and a
    folder per subset (val and test otherwise share one and the zip holds both). Returns
    the toolkit's performance dict (val) or None (test: it writes ``<tracker>.zip``).
    """
    from got10k.experiments import ExperimentGOT10k

    split_dir = (Path(out) / subset).resolve()
    experiment = ExperimentGOT10k(str(Path(root).resolve()), subset=subset, result_dir=str(split_dir),
                                  report_dir=str(split_dir / "reports"))
    adapter = toolkit_tracker(tracker, name)
    experiment.run(adapter)
    return experiment.report([name])


# ----------------------------------------------------------------------- command line
def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="samn eval got10k", epilog="examples:\n"
        "  samn eval got10k --root /data/GOT-10k --subset val\n"
        "  samn eval got10k --root /data/GOT-10k --subset test --preset paper --device cuda   (the server zip)\n"
        "  torchrun --nproc_per_node 4 -m samn_tracker.evaluation.cli got10k --root /data/GOT-10k",
        description="Run SAMN on GOT-10k val or test; val: AO/SR0.5/SR0.75/fps "
        "and the success curve in the summary (samn report plots it); test: the server zip. Resumable; "
        "shard with torchrun.")
    parser.add_argument("--root", type=Path, required=True, help="GOT-10k root (holds val/ and test/)")
    parser.add_argument("--subset", choices=SUBSETS, default="val")
    parser.add_argument("--out", type=Path, default=Path("results/got10k"), help="default: results/got10k")
    parser.add_argument("--toolkit", action="store_true",
                        help="run and report through got10k's ExperimentGOT10k: the toolkit's own loop over "
                             "the whole split, one target at a time in one process (so not with "
                             f"{', '.join(NOT_WITH_TOOLKIT.values())} or torchrun)")
    parser.add_argument("--score-only", action="store_true", help="do not track, only score / pack")
    options.add_tracker_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return options.run_command("samn eval got10k", build_parser(), _run, argv)


def check_toolkit_options(args: argparse.Namespace) -> None:
    """Refuse, before any work, what ``--toolkit`` would silently ignore."""
    defaults = build_parser()
    ignored = [flag for dest, flag in NOT_WITH_TOOLKIT.items() if getattr(args, dest) != defaults.get_default(dest)]
    if ignored:
        raise InputError(f"--toolkit runs the toolkit's own loop over the whole {args.subset} split, "
                         f"one target at a time: it cannot honour {', '.join(ignored)}")
    if Rank.from_env().world > 1:
        raise InputError("--toolkit runs in one process: start it without torchrun")


def _run(args: argparse.Namespace) -> int:
    if args.toolkit:
        check_toolkit_options(args)
    options.check_root(args.root, args.subset, "list.txt", "GOT-10k", "--subset")
    name = options.tracker_name(args)
    split_dir = args.out / args.subset
    run_dir = split_dir / TOOLKIT_FOLDER / name
    sequences = options.select(load_sequences(args.root, args.subset), args.sequences,
                               args.root / args.subset)
    if args.subset == "val":
        for sequence in sequences:
            read_truth(args.root, args.subset, sequence.name)
    options.prepare(args, run_dir, beside=(run_dir.parent, summary_path(split_dir, name).parent))
    if args.toolkit:
        tracker = options.tracker_factory(args)(args.device)
        performance = run_toolkit(args.root, args.subset, args.out, tracker, name)
        if performance is not None:  # val: also our summary, as a run without --toolkit writes
            summary(name, args.subset, score(args.root, run_dir, args.subset)).save(summary_path(split_dir, name))
            overall = performance[name]["overall"]
            print(f"{name}: AO {overall['ao']:.3f}  SR0.5 {overall['sr']:.3f}  "
                  f"SR0.75 {overall['succ_curve'][75]:.3f}  fps {overall['speed_fps']:.1f}")
        return 0
    writer = Got10kWriter(run_dir)
    if not options.run_shard(args, sequences, writer):
        return 0
    if args.subset == "test":
        if args.sequences:
            print(f"results in {run_dir} (no zip: --sequences given, the server needs all 180)")
            return 0
        print(f"submission: {submission_zip(args.root, run_dir, args.subset)}")
        return 0
    result = score(args.root, run_dir, args.subset, [s.name for s in sequences])
    split_size = len(sequence_names(args.root, args.subset))
    replace(summary(name, args.subset, result), split_size=split_size).save(summary_path(split_dir, name))
    s = result.scores
    print(f"{name} on GOT-10k {args.subset} ({len(sequences)} sequences, {s.frames} frames): "
          f"AO {s.ao:.3f}  SR0.5 {s.sr50:.3f}  SR0.75 {s.sr75:.3f}  fps {fps_text(timed(result.fps))}")
    options.print_coverage(len(sequences), split_size, f"GOT-10k {args.subset}")
    return 0
