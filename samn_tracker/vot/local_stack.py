"""Build VOT-layout sequences from a DAVIS 2016 folder (box or mask ground truth).

The local stacks (``local_box``, ``local_mask``, ``local_lt``) run the reset-based,
anchor-based and long-term experiments offline on real video. ``box`` ground truth is the
per-frame ``x,y,w,h`` of ``boxes/<seq>.txt``, else the tight box of each DAVIS mask;
``mask`` ground truth is the DAVIS mask in VOT RLE. Frames are symlinked (copied with
``copy=True``) as ``color/%08d.jpg``, never duplicated into the repo.

Tags: DAVIS has no per-frame VOT attributes, so ``size_change`` and ``motion_change``
are derived from the ground-truth boxes (rules below) and ``empty`` marks frames with
no tag; camera motion, illumination change and occlusion need human labels and are not
produced. Anchors (``anchor.value``) follow VOT2020: every ``anchor_spacing`` frames,
forward if at least half of the sequence lies ahead, else backward.

Away spans (``local_lt``, the long-term stack): after every ``away_every`` frames of a
sequence come ``away_for`` frames of the next sequence in the list, where the target is
absent (ground truth ``nan,nan,nan,nan``, as VOT-LT marks it), then the sequence goes on
where it left. A cut to another scene and back, not a target leaving the view: it measures
whether the tracker's confidence tells absence from presence and whether it finds the
target again where it returns, not a search over the whole frame. Such sequences have no
derived tags (VOT-LT has no per-attribute measure).

Every input is checked before anything is written, and the sequences are built in a
hidden folder beside ``--out`` and moved into place whole (replacing an earlier local
stack there), so a refused, failed or interrupted run leaves nothing.
"""
from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import numpy as np
from PIL import Image

from samn_tracker import atomic
from samn_tracker.atomic import write_text
from samn_tracker.command_parser import CommandParser
from samn_tracker.datasets import davis
from samn_tracker.datasets.roots import DATA_VARIABLE, data_root
from samn_tracker.datasets.splits import SPLITS_FILE, names_in_split
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.regions import encode_vot_mask
from samn_tracker.run_folder import check_writable

GroundTruth = Literal["box", "mask"]
SIZE_CHANGE_RATIO = 1.2      # sqrt-area change vs. 5 frames earlier
MOTION_CHANGE_FACTOR = 0.15  # velocity change relative to the target size


@dataclass
class LocalStackOptions:
    groundtruth: GroundTruth = "box"
    sequences: Optional[list[str]] = None   # None = the ``eval`` split of splits.txt
    max_frames: Optional[int] = None
    anchor_spacing: int = 50
    tags: bool = True
    copy: bool = False
    away_every: int = 0     # frames of the target between away spans; 0: no away spans
    away_for: int = 0       # frames of each away span

    def __post_init__(self) -> None:
        """Refuse counts that would build no frame, or crash half-way (InputError)."""
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.anchor_spacing < 1:
            raise InputError(f"--anchor-spacing must be at least 1, got {self.anchor_spacing}")
        if self.away_every < 0 or self.away_for < 0 or (self.away_every == 0) != (self.away_for == 0):
            raise InputError(f"--away-every and --away-for are both at least 1 (away spans) or both 0 "
                             f"(none), got {self.away_every} and {self.away_for}")
        if self.away_every and self.groundtruth != "box":
            raise InputError("away spans need --groundtruth box: the long-term measures score boxes")

    @property
    def away(self) -> bool:
        return self.away_every > 0


def derived_tags(boxes: np.ndarray) -> dict[str, np.ndarray]:
    """``size_change``: sqrt(area) differs from 5 frames earlier by more than 20%;
    ``motion_change``: the centre's velocity changes by more than 15% of sqrt(area)
    between consecutive frames; ``empty``: neither."""
    n = len(boxes)
    size = np.sqrt(np.maximum(boxes[:, 2] * boxes[:, 3], 1.0))
    earlier = size[np.maximum(np.arange(n) - 5, 0)]
    ratio = np.maximum(size / earlier, earlier / size)
    size_change = ratio > SIZE_CHANGE_RATIO
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    velocity = np.diff(centre, axis=0, prepend=centre[:1])
    acceleration = np.linalg.norm(np.diff(velocity, axis=0, prepend=velocity[:1]), axis=1)
    motion_change = acceleration > MOTION_CHANGE_FACTOR * size
    empty = ~(size_change | motion_change)
    return {"size_change": size_change, "motion_change": motion_change, "empty": empty}


def anchors(length: int, spacing: int) -> np.ndarray:
    values = np.zeros(length, dtype=int)
    for frame in range(0, length, spacing):
        values[frame] = 1 if length - frame >= frame or frame == 0 else -1
    return values


def _mask_line(png: Path) -> str:
    """VOT RLE line (``m<x0>,<y0>,<w>,<h>,<runs>``) of a DAVIS annotation."""
    if not png.is_file():
        raise InputError(f"missing DAVIS annotation {png}")
    return encode_vot_mask(davis.read_annotation(png, 2016) > 0)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    write_text(path, "\n".join(lines) + "\n")


@dataclass
class SourceSequence:
    """One DAVIS sequence's frames and boxes, read and checked before anything is written."""

    name: str
    frames: list[Path]
    boxes: np.ndarray


def read_sequence(davis_root: Path, name: str, options: LocalStackOptions) -> SourceSequence:
    """The frames and boxes of ``name`` (the first ``max_frames``); InputError when the
    frames are missing or the boxes do not match them."""
    frames = davis.frame_files(davis_root, name)
    boxes = davis.box_groundtruth(davis_root, name, frames)
    if len(boxes) != len(frames):
        raise InputError(f"{davis.boxes_file(davis_root, name)} has {len(boxes)} lines for "
                         f"{len(frames)} frames")
    return SourceSequence(name, frames[:options.max_frames], boxes[:options.max_frames])


def write_sequence(davis_root: Path, source: SourceSequence, out: Path, options: LocalStackOptions) -> Path:
    """Write one VOT sequence folder ``out/<name>``; returns its path."""
    frames, boxes, target = source.frames, source.boxes, out / source.name
    color = target / "color"
    color.mkdir(parents=True)
    for index, frame in enumerate(frames, start=1):
        link = color / f"{index:08d}.jpg"
        if options.copy:
            shutil.copyfile(frame, link)
        else:
            link.symlink_to(frame.resolve())
    width, height = _size(frames[0])
    if options.groundtruth == "box":
        lines = [",".join(f"{v:g}" for v in b) for b in boxes]
    else:
        lines = [_mask_line(davis.annotation_file(davis_root, source.name, "480p", f)) for f in frames]
    _write_lines(target / "groundtruth.txt", lines)
    if options.tags and not options.away:
        for tag, flags in derived_tags(boxes).items():
            _write_lines(target / f"{tag}.tag", [str(int(v)) for v in flags])
    _write_lines(target / "anchor.value", [str(v) for v in anchors(len(frames), options.anchor_spacing)])
    _write_lines(target / "sequence", [
        "channels.color=color/%08d.jpg", "fps=30", "format=default",
        f"name={source.name}", f"width={width}", f"height={height}", f"length={len(frames)}"])
    return target


def _size(frame: Path) -> tuple[int, int]:
    with Image.open(frame) as image:
        return image.size


def with_away_spans(source: SourceSequence, away: SourceSequence, options: LocalStackOptions) -> SourceSequence:
    """``source`` with ``options.away_for`` frames of ``away`` (cycled, in order) after every
    ``options.away_every`` of its own, the target absent there; a box of zero area (DAVIS's
    absent target) is absent too. InputError when the two sequences' frame sizes differ."""
    (width, height), (away_width, away_height) = _size(source.frames[0]), _size(away.frames[0])
    if (width, height) != (away_width, away_height):
        raise InputError(f"{away.name}'s frames are {away_width}x{away_height}, {source.name}'s "
                         f"{width}x{height}: an away span needs frames of the sequence's size")
    absent = np.full(4, np.nan)
    boxes = [box if box[2] > 0 and box[3] > 0 else absent for box in source.boxes]
    filler = itertools.cycle(away.frames)
    frames, kept = [], []
    for start in range(0, len(source.frames), options.away_every):
        if start:
            frames += [next(filler) for _ in range(options.away_for)]
            kept += [absent] * options.away_for
        frames += source.frames[start:start + options.away_every]
        kept += boxes[start:start + options.away_every]
    return SourceSequence(source.name, frames, np.array(kept))


def eval_split(davis_root: Path) -> list[str]:
    """Names marked ``eval`` in ``splits.txt``, else the official ``val`` list of a full
    DAVIS 2016 release, else every sequence: the local stacks measure, they never score
    a sequence used for training."""
    if (davis_root / SPLITS_FILE).is_file():
        return names_in_split(davis_root, "eval")
    if (davis_root / "ImageSets" / "480p" / "val.txt").is_file():
        return davis.sequence_names(davis_root, 2016, "val")
    return davis.sequence_folders(davis_root)


def check_davis_folder(davis_root: Path | str) -> Path:
    """``davis_root`` as a Path; InputError when it has no 480p frames (the layout read here)."""
    davis_root = Path(davis_root)
    if not (davis_root / "JPEGImages" / "480p").is_dir():
        raise InputError(f"{davis_root} is not a DAVIS folder (no JPEGImages/480p)")
    return davis_root


def check_out(out: Path) -> None:
    """InputError unless ``out`` can take the sequences: new, empty or an earlier local
    stack (``list.txt``), in a place this process can write to."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "list.txt").is_file():
        raise InputError(f"--out {out} is a folder with other files in it (no list.txt); "
                         "give a new or empty folder, or an earlier local stack")
    check_writable(out, out)


def build_local_stack(davis_root: Path | str, out: Path | str,
                      options: LocalStackOptions = LocalStackOptions()) -> list[Path]:
    """Write ``out/list.txt`` and one folder per sequence (VOT layout), replacing ``out``."""
    davis_root, out = check_davis_folder(davis_root), Path(out)
    check_out(out)
    sources = [read_sequence(davis_root, name, options)
               for name in options.sequences or eval_split(davis_root)]
    if options.away:
        if len(sources) < 2:
            raise InputError("away spans take their frames from another sequence of the stack; "
                             "give at least two sequences")
        sources = [with_away_spans(source, sources[(k + 1) % len(sources)], options)
                   for k, source in enumerate(sources)]
    with atomic.directory(out) as folder:
        for source in sources:
            write_sequence(davis_root, source, folder, options)
        _write_lines(folder / "list.txt", [source.name for source in sources])
    return [out / source.name for source in sources]


def sequence_names(items: Optional[list[str]]) -> Optional[list[str]]:
    """``--sequences`` split on commas, each once (a note names repeats); None: not given."""
    if items is None:
        return None
    from samn_tracker.evaluation.options import requested  # imports torch: only when needed

    return requested(items)


@guarded("samn vot local-stack", on_interrupt="(nothing written)")
def main(argv: Optional[list[str]] = None) -> int:
    parser = CommandParser(prog="samn vot local-stack", description=__doc__.split("\n\n")[0], epilog="""examples:
  samn vot local-stack --davis ../shared/data/davis16 --out vot_workspace/local_box/sequences
  samn vot local-stack --davis ../shared/data/davis16 --out vot_workspace/local_mask/sequences --groundtruth mask
  samn vot local-stack --davis /data/DAVIS --sequences blackswan,dog,cows --out W/sequences --away-every 30 --away-for 20""")
    parser.add_argument("--davis", type=Path,
                        help=f"DAVIS 2016 folder; boxes come from boxes/ where it has them, else from "
                             f"the masks (default: ${DATA_VARIABLE})")
    parser.add_argument("--out", required=True, type=Path,
                        help="sequences folder of a workspace, e.g. vot_workspace/local_box/sequences: "
                             "new, empty or an earlier local stack (replaced whole)")
    parser.add_argument("--groundtruth", choices=["box", "mask"], default="box",
                        help="groundtruth.txt holds boxes x,y,w,h (for local_box) or VOT RLE masks "
                             "(for local_mask); default: box")
    parser.add_sequences_option("these sequences (default: the eval split)")
    parser.add_argument("--max-frames", type=int, metavar="N",
                        help="keep the first N frames of each sequence (default: all)")
    parser.add_argument("--anchor-spacing", type=int, default=50, metavar="N",
                        help="an anchor (anchor.value) every N frames, for anchor-based experiments "
                             "(default: 50)")
    parser.add_argument("--away-every", type=int, default=0, metavar="N",
                        help="long-term stack: after every N frames, --away-for frames of the next "
                             "sequence where the target is absent (default: 0, none)")
    parser.add_argument("--away-for", type=int, default=0, metavar="N",
                        help="frames of each away span (default: 0)")
    parser.add_argument("--no-tags", action="store_true",
                        help="write no derived attribute tags (size_change, motion_change, empty)")
    parser.add_argument("--copy", action="store_true", help="copy frames instead of symlinking")
    args = parser.parse_args(argv)
    options = LocalStackOptions(
        groundtruth=args.groundtruth,
        sequences=sequence_names(args.sequences),
        max_frames=args.max_frames, anchor_spacing=args.anchor_spacing,
        tags=not args.no_tags, copy=args.copy, away_every=args.away_every, away_for=args.away_for)
    built = build_local_stack(data_root(args.davis, "--davis"), args.out, options)
    print(f"wrote {len(built)} sequence{'s' * (len(built) != 1)} to {args.out}")
    return 0
