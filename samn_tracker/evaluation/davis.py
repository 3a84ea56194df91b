"""DAVIS 2016 / 2017 semi-supervised: result PNGs in the official layout, J&F scores, zip.

Each object of the first annotation is tracked from its mask by its own pass of the
tracker over the video; the passes are merged per pixel: a pixel is background unless
some object's mask covers it, and then it belongs to the covering object with the highest
foreground probability (the mask alone, later objects winning ties, when a tracker gives
no probability). Results: ``<out>/<year>-<split>/<tracker>/<seq>/<frame>.png`` (palette PNGs
of object ids with the file names of the ground truth), timings in ``times/<tracker>/``,
the Codalab zip ``<tracker>.zip`` with the sequence folders at its root.

Frames, annotations and split lists are read by ``samn_tracker.datasets.davis``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from samn_tracker.command_parser import CommandParser
from samn_tracker import atomic
from samn_tracker.datasets.davis import (YEARS, annotation_file, frame_files, object_ids, read_annotation,
                                         refuse_object_ids, sequence_names)
from samn_tracker.datasets.groundtruth import read_numbers
from samn_tracker.evaluation import davis_measures, options
from samn_tracker.evaluation.runner import BenchmarkSequence, SequenceRun
from samn_tracker.evaluation.summaries import Summary, fps_score, fps_text, summary_path
from samn_tracker.errors import InputError


def palette() -> list[int]:
    """The PASCAL VOC / DAVIS colour map: bits of the index spread over R, G, B."""
    colours = []
    for index in range(256):
        r = g = b = 0
        code = index
        for bit in range(8):
            r |= ((code >> 0) & 1) << (7 - bit)
            g |= ((code >> 1) & 1) << (7 - bit)
            b |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        colours += [r, g, b]
    return colours


PALETTE = palette()


def load_sequences(root: Path, year: int, names: Sequence[str], resolution: str = "480p") -> list[BenchmarkSequence]:
    """Frames and one initial mask per object of the first annotation; a sequence too short
    to be scored is refused here, before any tracking."""
    sequences = []
    for name in names:
        frames = frame_files(root, name, resolution)
        if len(frames) < 3:
            raise InputError(f"{name}: DAVIS scores frames 1..N-2, so a sequence needs at least 3 frames; "
                             f"it has {len(frames)}")
        first = annotation_file(root, name, resolution, frames[0])
        if not first.is_file():
            raise InputError(f"first-frame annotation missing: {first}")
        if year == 2016:
            refuse_object_ids(first)
        ids = read_annotation(first, year)
        objects = object_ids(ids)
        if not objects:
            raise InputError(f"first-frame annotation {first} contains no object")
        sequences.append(BenchmarkSequence(name=name, frames=frames, targets=[ids == k for k in objects],
                                           target_ids=objects))
    return sequences


def foreground_scores(prediction: Any) -> np.ndarray:
    """uint8 map: 0 off the mask, 1..255 the quantised foreground probability on it (255 if none)."""
    mask = np.asarray(prediction.mask, dtype=bool)
    probability = getattr(prediction, "probability", None)
    if probability is None:
        return mask.astype(np.uint8) * np.uint8(255)
    quantised = np.clip(np.round(np.asarray(probability, dtype=np.float32) * 255), 1, 255).astype(np.uint8)
    return np.where(mask, quantised, np.uint8(0))


def merge_objects(scores: Sequence[np.ndarray], object_ids: Sequence[int]) -> np.ndarray:
    """Id map: each pixel goes to the object of highest score among those covering it; ties
    go to the later object; uncovered pixels are background."""
    stack = np.stack(scores)
    last_best = len(scores) - 1 - np.argmax(stack[::-1], axis=0)
    ids = np.asarray(object_ids, dtype=np.uint8)[last_best]
    return np.where(stack.max(axis=0) > 0, ids, np.uint8(0))


def write_png(path: Path, ids: np.ndarray) -> None:
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(PALETTE)
    image.save(path)


class DavisWriter:
    """Writes a sequence's PNG folder atomically (it marks the sequence finished) after its timings."""

    def __init__(self, masks_dir: Path, times_dir: Path):
        self.masks_dir, self.times_dir = Path(masks_dir), Path(times_dir)

    def is_done(self, sequence: BenchmarkSequence) -> bool:
        """Its folder holds a PNG for every frame scored, 1..N-2 (another method's results may
        leave out the first and last; ``submission_zip`` wants every frame)."""
        folder = self.masks_dir / sequence.name
        return folder.is_dir() and all((folder / f"{frame.stem}.png").is_file()
                                       for frame in sequence.frames[1:-1])

    def scorable(self, sequence: BenchmarkSequence) -> bool:
        return self.is_done(sequence)

    def keep(self, prediction: Any) -> np.ndarray:
        return foreground_scores(prediction)

    def write(self, run: SequenceRun) -> None:
        sequence = run.sequence
        times = np.stack([t.times for t in run.targets], axis=1)
        atomic.write_text(self.times_dir / f"{sequence.name}.txt",
                          "".join(",".join(f"{t:.8f}" for t in row) + "\n" for row in times))
        first = np.zeros(sequence.targets[0].shape, dtype=np.uint8)
        for mask, object_id in zip(sequence.targets, sequence.target_ids):
            first[mask] = object_id
        with atomic.directory(self.masks_dir / sequence.name) as folder:
            for index, frame in enumerate(sequence.frames):
                ids = first if index == 0 else merge_objects(
                    [t.outputs[index] for t in run.targets], sequence.target_ids)
                write_png(folder / f"{frame.stem}.png", ids)


@dataclass
class DavisResult:
    scores: davis_measures.DavisScores
    objects: list[davis_measures.ObjectScores]
    fps: Optional[float]  # None: no time files
    names: list[str] = field(default_factory=list)  # the sequences scored


def has_full_annotations(root: Path, name: str, resolution: str) -> bool:
    frames = frame_files(root, name, resolution)
    return all(annotation_file(root, name, resolution, f).is_file() for f in frames)


def score(root: Path, year: int, names: Sequence[str], masks_dir: Path, resolution: str = "480p",
          times_dir: Optional[Path] = None) -> DavisResult:
    """J and F of every object (1..K, K = largest id of the first annotation) on frames 1..N-2."""
    objects: list[davis_measures.ObjectScores] = []
    for name in names:
        frames = frame_files(root, name, resolution)
        gt = []
        for frame in frames:
            path = annotation_file(root, name, resolution, frame)
            if not path.is_file():
                raise InputError(f"ground truth missing (test split?): {path}")
            gt.append(read_annotation(path, year))
        count = int(gt[0].max())
        pred: list[Optional[np.ndarray]] = [None] * len(frames)
        for index in range(1, len(frames) - 1):
            path = Path(masks_dir) / name / f"{frames[index].stem}.png"
            if not path.is_file():
                raise InputError(f"result mask missing: {path}")
            pred[index] = read_annotation(path, year)
            if pred[index].shape != gt[index].shape:
                raise InputError(f"{path} is {pred[index].shape}, the ground truth {gt[index].shape}")
            if pred[index].max() > count:
                raise InputError(f"{path} holds object id {pred[index].max()} but {name} has {count} objects")
        objects += davis_measures.score_sequence(name, pred, gt, list(range(1, count + 1)))
    return DavisResult(scores=davis_measures.summarize(objects), objects=objects,
                       fps=_fps(times_dir, names) if times_dir else None, names=list(names))


def _fps(times_dir: Path, names: Sequence[str]) -> Optional[float]:
    seconds = calls = 0.0
    for name in names:
        path = Path(times_dir) / f"{name}.txt"
        if path.is_file():
            times = read_numbers(path, delimiter=",")
            seconds, calls = seconds + float(times.sum()), calls + times.size
    return calls / seconds if seconds > 0 else None


def per_object_table(objects: Sequence[davis_measures.ObjectScores]) -> pd.DataFrame:
    """Rows ``<seq>_<k>`` with J-Mean and F-Mean, as the official per-sequence CSV."""
    rows = {o.name: {"J-Mean": float(np.nanmean(o.j)), "F-Mean": float(np.nanmean(o.f))} for o in objects}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("Sequence")


def summary(year: int, split: str, tracker: str, result: DavisResult) -> Summary:
    s = result.scores
    return Summary(benchmark=f"davis{year}", split=split, tracker=tracker,
                   scores={"J&F": s.jf_mean, "J-Mean": s.j.mean, "J-Recall": s.j.recall,
                           "J-Decay": s.j.decay, "F-Mean": s.f.mean, "F-Recall": s.f.recall,
                           "F-Decay": s.f.decay, **fps_score(result.fps)},
                   sequences=list(result.names),
                   per_object=object_jf(result.objects))


def object_jf(objects: Sequence[davis_measures.ObjectScores]) -> dict[str, float]:
    """J&F of each object, the mean of its row in ``per_object_table``."""
    if not objects:
        return {}
    table = per_object_table(objects)
    return {name: float(value) for name, value in ((table["J-Mean"] + table["F-Mean"]) / 2).items()}


def submission_zip(masks_dir: Path, sequences: Sequence[BenchmarkSequence]) -> Path:
    """``<masks_dir>.zip`` with ``<seq>/<frame>.png`` at the root (Codalab layout), a PNG for
    every frame, which Codalab needs."""
    masks_dir = Path(masks_dir)
    members = []
    for sequence in sequences:
        files = [masks_dir / sequence.name / f"{frame.stem}.png" for frame in sequence.frames]
        lacking = [f.name for f in files if not f.is_file()]
        if lacking:
            raise InputError(f"cannot pack the submission: {masks_dir / sequence.name} has no {lacking[0]} "
                             f"({len(lacking)} of its {len(files)} frames' PNGs missing); remove that folder and "
                             "run the same command to track the sequence again")
        members += [(f, f"{sequence.name}/{f.name}") for f in files]
    path = masks_dir.with_suffix(".zip")
    atomic.write_zip(path, members)
    return path


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="samn eval davis", epilog="examples:\n"
        "  samn eval davis --root /data/DAVIS2017 --year 2017 --split val\n"
        "  samn eval davis --root /data/DAVIS2017 --year 2017 --split test-dev   (the Codalab zip)\n"
        "  samn eval davis --root ../shared/data/davis16 --year 2016 --split eval   (splits.txt)",
        description="Run SAMN on DAVIS 2016/2017 (semi-supervised): palette "
        "PNG results, J&F / J / F mean, recall and decay, and the Codalab zip. Resumable; shard "
        "with torchrun.")
    parser.add_argument("--root", type=Path, required=True,
                        help="DAVIS root (holds JPEGImages/, Annotations/, ImageSets/)")
    parser.add_argument("--year", type=int, choices=YEARS, default=2017)
    parser.add_argument("--split", default="val", help="ImageSets list name (default: val)")
    parser.add_argument("--resolution", default="480p",
                        help="a folder of the root's JPEGImages/: 480p (default) or Full-Resolution")
    parser.add_argument("--out", type=Path, default=Path("results/davis"), help="default: results/davis")
    parser.add_argument("--score-only", action="store_true", help="do not track, only score / pack")
    options.add_tracker_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return options.run_command("samn eval davis", build_parser(), _run, argv)


def check_resolution(root: Path, resolution: str) -> None:
    """Name a ``--resolution`` the root has no frames for, listing those it has, before a
    missing sequence list or frame folder under it is reported instead."""
    frames = Path(root) / "JPEGImages"
    if (frames / resolution).is_dir():
        return
    found = sorted(p.name for p in frames.iterdir() if p.is_dir()) if frames.is_dir() else []
    if not found:
        raise InputError(f"--root {root} has no JPEGImages/<resolution>/ folder: not a DAVIS root"
                         + options.near_root(Path(root), Path("JPEGImages") / resolution))
    raise InputError(f"--resolution {resolution}: no {frames / resolution}; {root} has {', '.join(found)}")


def _run(args: argparse.Namespace) -> int:
    check_resolution(args.root, args.resolution)
    name = options.tracker_name(args)
    args.overrides = ["probability_maps=True", *args.overrides]  # the results quantise it
    split_names = _split_names(args)
    names = options.requested(args.sequences)
    if names is None:  # the split's list, read once; without one, sequence_names says which it looked for
        names = split_names if split_names is not None else sequence_names(args.root, args.year, args.split,
                                                                             args.resolution)
    elif split_names is not None:
        options.check_known(names, split_names, f"DAVIS {args.year} {args.split}",
                            f"its summary would count them as {args.split}: give the --split that lists them")
    # another resolution's results are kept, resumed, packed and reported apart from 480p's
    split = args.split if args.resolution == "480p" else f"{args.split}-{args.resolution}"
    split_dir = args.out / f"{args.year}-{split}"
    masks_dir, times_dir = split_dir / name, split_dir / "times" / name
    sequences = load_sequences(args.root, args.year, names, args.resolution)
    options.prepare(args, masks_dir, beside=(split_dir, times_dir, summary_path(split_dir, name).parent))
    writer = DavisWriter(masks_dir, times_dir)
    if not options.run_shard(args, sequences, writer):
        return 0
    if args.sequences:  # a quick check must not replace the whole split's zip with a part of it
        print(f"results in {masks_dir} (no zip: --sequences given, Codalab needs the whole split)")
    else:
        print(f"submission: {submission_zip(masks_dir, sequences)}")
    unannotated = [n for n in names if not has_full_annotations(args.root, n, args.resolution)]
    if unannotated:  # test-dev / test-challenge; elsewhere a lost PNG, which must not end without a word
        print(f"no scores: {options.listed(unannotated)} lack the annotation of some frame "
              "(test-dev and test-challenge are scored by the server)")
        return 0
    result = score(args.root, args.year, names, masks_dir, args.resolution, times_dir)
    split_size = None if split_names is None else len(split_names)
    replace(summary(args.year, split, name, result), split_size=split_size).save(summary_path(split_dir, name))
    table = per_object_table(result.objects)
    atomic.write_text(split_dir / "summaries" / f"{name}-per-object.csv", table.to_csv())
    s = result.scores
    print(f"{name} on DAVIS {args.year} {args.split} ({len(names)} sequences, {s.objects} objects): "
          f"J&F {s.jf_mean:.3f}  J {s.j.mean:.3f} (recall {s.j.recall:.3f}, decay {s.j.decay:.3f})  "
          f"F {s.f.mean:.3f} (recall {s.f.recall:.3f}, decay {s.f.decay:.3f})  fps {fps_text(result.fps)}")
    options.print_coverage(len(names), split_size, f"DAVIS {args.year} {args.split}")
    return 0


def _split_names(args: argparse.Namespace) -> Optional[list[str]]:
    """The sequences ``--split`` lists; None where the root has no list for it (the
    sequences are then named by ``--sequences`` alone)."""
    try:
        return sequence_names(args.root, args.year, args.split, args.resolution)
    except InputError:
        return None
