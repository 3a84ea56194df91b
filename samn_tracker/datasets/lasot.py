"""LaSOT: ``<root>/<class>/<class>-<n>/`` (the full release; the test-only download has the
sequence folders at its root, which is read too), each with ``img/00000001.jpg ...``,
``groundtruth.txt`` (``x,y,w,h`` per frame, ``0,0,0,0`` where nothing is drawn) and
``full_occlusion.txt`` / ``out_of_view.txt`` (one line of comma-separated 0/1 flags)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from samn_tracker.datasets.groundtruth import frame_shape, read_groundtruth, read_numbers
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.datasets.splits import read_name_list
from samn_tracker.errors import InputError

SPLITS = ("test", "all")
TEST_LIST = Path(__file__).with_name("lasot_test.txt")
ABSENCE_FILES = ("full_occlusion.txt", "out_of_view.txt")


def is_lasot_sequence(path: Path) -> bool:
    return (path / "img").is_dir() and (path / "groundtruth.txt").is_file()


def find_sequence(root: Path | str, name: str) -> Path | None:
    """``<root>/<class>/<name>`` or ``<root>/<name>``; the class is the name up to its last ``-``."""
    root = Path(root)
    return next((folder for folder in (root / name.rsplit("-", 1)[0] / name, root / name)
                 if is_lasot_sequence(folder)), None)


def sequence_folder(root: Path | str, name: str) -> Path:
    folder = find_sequence(root, name)
    if folder is not None:
        return folder
    root = Path(root)
    raise InputError(f"LaSOT sequence {name} not found in {root} (looked for "
                     f"{root / name.rsplit('-', 1)[0] / name} and {root / name}, each with img/ and groundtruth.txt)")


def sequence_names(root: Path | str, split: str) -> list[str]:
    """``test``: the 280 sequences of the official toolkit's test list (Protocol II); ``all``:
    every sequence folder under ``root``, class by class."""
    if split not in SPLITS:
        raise InputError(f"LaSOT split must be one of {SPLITS}, got {split!r}")
    if split == "test":
        return read_name_list(TEST_LIST)
    folders = sequence_folders(root)
    if not folders:
        raise InputError(f"no LaSOT sequence (a folder with img/ and groundtruth.txt) in {root} or its class folders")
    return sorted((p.name for p in folders), key=_class_and_number)


def sequence_folders(root: Path | str) -> list[Path]:
    """The sequence folders in ``root``'s class folders or in ``root`` itself, where
    ``find_sequence`` finds them: a folder of another name is not a class folder (a root
    given one folder too high)."""
    in_classes = [p for p in Path(root).glob("*/*") if p.parent.name == p.name.rsplit("-", 1)[0]]
    return [p for p in in_classes + list(Path(root).glob("*")) if is_lasot_sequence(p)]


def _class_and_number(name: str) -> tuple[str, int, str]:
    category, _, number = name.rpartition("-")
    return (category, int(number), "") if number.isdigit() else (name, 0, name)


def frame_files(folder: Path) -> list[Path]:
    return list_frames(folder / "img", suffixes=(".jpg",))


def absent_frames(folder: Path, frames: int) -> np.ndarray:
    """Frames whose target is fully occluded or out of view (either flag 1), as pytracking
    reads LaSOT's visibility; the official toolkit reads its own ``annos/absent`` files."""
    absent = np.zeros(frames, dtype=bool)
    for name in ABSENCE_FILES:
        flags = read_numbers(folder / name, delimiter=",")
        if flags.size != frames:
            raise InputError(f"{folder / name} has {flags.size} flags for {frames} frames")
        absent |= flags == 1
    return absent


def lasot_sequence(path: str | Path) -> Sequence:
    """A LaSOT sequence folder; frames without a target (flagged, or a zero box) have None."""
    path = Path(path)
    frames = frame_files(path)
    groundtruth = read_groundtruth(path / "groundtruth.txt", len(frames), frame_shape(frames), partial=False)
    if all((path / name).is_file() for name in ABSENCE_FILES):
        for index in np.flatnonzero(absent_frames(path, len(frames))):
            groundtruth[index] = None
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth)
