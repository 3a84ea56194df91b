"""Build VOT-layout sequences from a DAVIS 2016 folder (box or mask ground truth).

The local stacks (``local_box``, ``local_mask``) run the reset-based and anchor-based
experiments offline on real video. ``box`` ground truth is the per-frame ``x,y,w,h`` of
``boxes/<seq>.txt``, else the tight box of each DAVIS mask; ``mask`` ground truth is the
DAVIS mask in VOT RLE. Frames are
symlinked (copied with ``copy=True``) as ``color/%08d.jpg``, never duplicated into the repo.

Tags: DAVIS has no per-frame VOT attributes, so ``size_change`` and ``motion_change``
are derived from the ground-truth boxes (rules below) and ``empty`` marks frames with
no tag; camera motion, illumination change and occlusion need human labels and are not
produced. Anchors (``anchor.value``) follow VOT2020: every ``anchor_spacing`` frames,
forward if at least half of the sequence lies ahead, else backward.

Every input is checked before anything is written, and the sequences are built in a
hidden folder beside ``--out`` and moved into place whole (replacing an earlier local
stack there), so a refused, failed or interrupted run leaves nothing.
"""
from __future__ import annotations

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

    def __post_init__(self) -> None:
        """Refuse counts that would build no frame, or crash half-way (InputError)."""
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.anchor_spacing < 1:
            raise InputError(f"--anchor-spacing must be at least 1, got {self.anchor_spacing}")


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
    width, height = Image.open(frames[0]).size
    if options.groundtruth == "box":
        lines = [",".join(f"{v:g}" for v in b) for b in boxes]
    else:
        lines = [_mask_line(davis.annotation_file(davis_root, source.name, "480p", f)) for f in frames]
    _write_lines(target / "groundtruth.txt", lines)
    if options.tags:
        for tag, flags in derived_tags(boxes).items():
            _write_lines(target / f"{tag}.tag", [str(int(v)) for v in flags])
    _write_lines(target / "anchor.value", [str(v) for v in anchors(len(frames), options.anchor_spacing)])
    _write_lines(target / "sequence", [
        "channels.color=color/%08d.jpg", "fps=30", "format=default",
        f"name={source.name}", f"width={width}", f"height={height}", f"length={len(frames)}"])
    return target


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
    with atomic.directory(out) as folder:
        for source in sources:
            write_sequence(davis_root, source, folder, options)
        _write_lines(folder / "list.txt", [source.name for source in sources])
    return [out / source.name for source in sources]


def sequence_names(text: Optional[str]) -> Optional[list[str]]:
    """``--sequences`` split on commas, each once (a note names repeats); None: not given."""
    if text is None:
        return None
    from samn_tracker.evaluation.options import requested  # imports torch: only when needed

    return requested([text])


@guarded("samn vot local-stack", on_interrupt="(nothing written)")
def main(argv: Optional[list[str]] = None) -> int:
    parser = CommandParser(prog="samn vot local-stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path,
                        help=f"DAVIS 2016 folder; boxes come from boxes/ where it has them, else from "
                             f"the masks (default: ${DATA_VARIABLE})")
    parser.add_argument("--out", required=True, type=Path,
                        help="sequences folder of a workspace, e.g. vot_workspace/local_box/sequences: "
                             "new, empty or an earlier local stack (replaced whole)")
    parser.add_argument("--groundtruth", choices=["box", "mask"], default="box",
                        help="groundtruth.txt holds boxes x,y,w,h (for local_box) or VOT RLE masks "
                             "(for local_mask); default: box")
    parser.add_argument("--sequences", help="comma-separated names (default: the eval split)")
    parser.add_argument("--max-frames", type=int, metavar="N",
                        help="keep the first N frames of each sequence (default: all)")
    parser.add_argument("--anchor-spacing", type=int, default=50, metavar="N",
                        help="an anchor (anchor.value) every N frames, for anchor-based experiments "
                             "(default: 50)")
    parser.add_argument("--no-tags", action="store_true",
                        help="write no derived attribute tags (size_change, motion_change, empty)")
    parser.add_argument("--copy", action="store_true", help="copy frames instead of symlinking")
    args = parser.parse_args(argv)
    options = LocalStackOptions(
        groundtruth=args.groundtruth,
        sequences=sequence_names(args.sequences),
        max_frames=args.max_frames, anchor_spacing=args.anchor_spacing,
        tags=not args.no_tags, copy=args.copy)
    built = build_local_stack(data_root(args.davis, "--davis"), args.out, options)
    print(f"wrote {len(built)} sequence{'s' * (len(built) != 1)} to {args.out}")
    return 0
