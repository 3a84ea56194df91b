"""OTB (``<root>/<video>/img/0001.jpg ...`` and ``groundtruth_rect.txt``, comma, tab or space
separated), the layout of tracker_benchmark v1.0's download.

A video is one target, except where it has numbered ground-truth files: Jogging and Skating2
hold ``groundtruth_rect.1.txt`` and ``.2.txt``, the targets ``Jogging-1`` and ``Jogging-2``
(the toolkit's names, and those of published result files); Human4's ``.1`` file is empty,
its one target ``Human4``. The targets of each version, the frames of those whose ground
truth covers part of ``img/`` (David's starts at image 300) and their attributes are data
(``otb_sequences.txt``), from the toolkit's configurations."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from samn_tracker.datasets.groundtruth import frame_shape, read_groundtruth, read_text
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.errors import InputError

TABLE = Path(__file__).with_name("otb_sequences.txt")
VERSIONS = ("otb2015", "otb2013", "tb50", "all")
ATTRIBUTES = ("IV", "SV", "OCC", "DEF", "MB", "FM", "IPR", "OPR", "OV", "BC", "LR")
GROUNDTRUTH = "groundtruth_rect.txt"
_NUMBERED_GROUNDTRUTH = re.compile(r"groundtruth_rect\.(\d+)\.txt")


@dataclass(frozen=True)
class TargetInfo:
    """A line of ``otb_sequences.txt``."""

    name: str
    frames: Optional[tuple[int, int]]  # first and last image number; None: all of img/
    versions: tuple[str, ...]
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """One tracked object: its name, the folder of its video's images and its ground-truth file."""

    name: str
    images: Path
    groundtruth: Path


def read_table(path: Path = TABLE) -> dict[str, TargetInfo]:
    targets = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 4:
            raise InputError(f"{path} line {number}: expected target, frames, versions, attributes")
        name, frames, versions, attributes = words
        first, _, last = frames.partition("-")
        targets[name] = TargetInfo(name, None if frames == "-" else (int(first), int(last)),
                                   tuple(versions.split(",")), tuple(attributes.split(",")))
    return targets


def video_targets(folder: Path) -> list[Target]:
    """The targets of a video folder: ``groundtruth_rect.txt`` alone names the folder's one
    target; otherwise each non-empty ``groundtruth_rect.<n>.txt`` is ``<video>-<n>``, or
    ``<video>`` where only one of them has boxes (Human4)."""
    folder = Path(folder)
    if (folder / GROUNDTRUTH).is_file():
        return [Target(folder.name, folder / "img", folder / GROUNDTRUTH)]
    numbered = sorted((int(m.group(1)), p) for p in folder.glob("groundtruth_rect.*.txt")
                      if (m := _NUMBERED_GROUNDTRUTH.fullmatch(p.name)) and read_text(p).strip())
    if len(numbered) == 1:
        return [Target(folder.name, folder / "img", numbered[0][1])]
    return [Target(f"{folder.name}-{n}", folder / "img", path) for n, path in numbered]


def find_target(root: Path | str, name: str) -> Target | None:
    """``<root>/<name>/`` or, for ``<video>-<n>``, ``<root>/<video>/``; in any case of the
    letters, as some mirrors lower-case the folders (the target keeps the name asked for)."""
    root = Path(root)
    for video in (name, name.rpartition("-")[0]):
        folder = _video_folder(root, video) if video else None
        if folder is not None:
            found = [t for t in video_targets(folder) if t.name.lower() == name.lower()]
            if found:
                return replace(found[0], name=name)
    return None


def _video_folder(root: Path, video: str) -> Path | None:
    if (root / video / "img").is_dir():
        return root / video
    wanted = video.lower()
    return next((p for p in sorted(root.iterdir()) if p.name.lower() == wanted and (p / "img").is_dir()), None)


def target_info(table: dict[str, TargetInfo], name: str) -> TargetInfo | None:
    """A target's line of the table, whatever the case of its name (a mirror's ``david``)."""
    if name in table:
        return table[name]
    return next((info for key, info in table.items() if key.lower() == name.lower()), None)


def target_names(root: Path | str, version: str, table: dict[str, TargetInfo]) -> list[str]:
    """A version's targets in the table's order; ``all``: every target of the videos in ``root``."""
    if version not in VERSIONS:
        raise InputError(f"OTB version must be one of {VERSIONS}, got {version!r}")
    if version != "all":
        return [name for name, info in table.items() if version in info.versions]
    names = [t.name for p in sorted(Path(root).iterdir(), key=lambda p: p.name.lower()) if p.is_dir()
             and (p / "img").is_dir() for t in video_targets(p)]
    if not names:
        raise InputError(f"no OTB video (a folder with img/ and groundtruth_rect.txt) in {root}")
    return names


def frame_files(found: Target, frames: Optional[tuple[int, int]] = None) -> list[Path]:
    """The images of a target, image ``first + i`` its frame ``i``; all of them without a range."""
    images = list_frames(found.images)
    if frames is None:
        return images
    first, last = frames
    numbers = [int(p.stem) if p.stem.isdigit() else -1 for p in images]
    chosen = [p for p, n in zip(images, numbers) if first <= n <= last]
    if len(chosen) != last - first + 1:
        raise InputError(f"{found.images} has images {numbers[0]}-{numbers[-1]}; {found.name} is images "
                         f"{first}-{last}")
    return chosen


def otb_sequence(path: str | Path) -> Sequence:
    """A video folder's first target, on the frames its ground truth covers (David's from
    image 300, as the toolkit runs it); a ground truth of another length is refused."""
    path = Path(path)
    targets = video_targets(path)
    if not targets:
        raise InputError(f"OTB sequence has no groundtruth_rect.txt: {path}")
    info = target_info(read_table(), targets[0].name)
    frames = frame_files(targets[0], info.frames if info else None)
    groundtruth = read_groundtruth(targets[0].groundtruth, len(frames), frame_shape(frames), partial=False)
    return Sequence(name=targets[0].name, frames=frames, video=None, groundtruth=groundtruth)
