"""GOT-10k: ``<subset>/list.txt`` and one folder per sequence (frames, ``groundtruth.txt``,
``*.label`` tags)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from samn_tracker.datasets.groundtruth import frame_shape, read_groundtruth, read_numbers, read_tags, read_text
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.datasets.splits import read_name_list
from samn_tracker.errors import InputError

SUBSETS = ("val", "test")


def got10k_sequence(path: str | Path) -> Sequence:
    """GOT-10k layout: ``00000001.jpg ...``, ``groundtruth.txt`` (one line for test
    sequences) and ``absence.label`` / ``cover.label`` / ``cut_by_image.label`` tags; also
    the older VOT layout and any frame folder with a ``groundtruth.txt``, whose frames may
    be PNGs (VOT-TIR), so every image type is listed here (the benchmark's run lists
    ``frame_files``, the toolkit's ``*.jpg``)."""
    path = Path(path)
    frames = list_frames(path)
    groundtruth_file = path / "groundtruth.txt"
    if not groundtruth_file.is_file():
        raise InputError(f"GOT-10k sequence has no groundtruth.txt: {path}")
    groundtruth = read_groundtruth(groundtruth_file, len(frames), frame_shape(frames))
    tags = read_tags(path, len(frames))
    for index in np.flatnonzero(tags.get("absence", np.zeros(0))):
        groundtruth[index] = None
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth, tags=tags)


def frame_files(folder: Path) -> list[Path]:
    """The sequence's frames, ``*.jpg`` in order, as the got10k toolkit lists them."""
    return list_frames(folder, suffixes=(".jpg",))


def cover_labels(folder: Path, frames: int) -> np.ndarray:
    """``cover.label``, one visible-fraction class per frame: the scoring needs every row."""
    path = folder / "cover.label"
    if not path.is_file():
        raise InputError(f"GOT-10k label file not found: {path}")
    values = read_numbers(path)
    if values.size != frames:
        raise InputError(f"{path} has {values.size} entries for {frames} frames")
    return values


def resolution(folder: Path) -> tuple[float, float]:
    """(W, H) from the sequence's ``meta_info.ini`` (``resolution: (1920, 1080)``), the
    image bounds that scoring clips boxes to."""
    meta_file = folder / "meta_info.ini"
    if not meta_file.is_file():
        raise InputError(f"GOT-10k meta file not found (needed for the image bounds): {meta_file}")
    for line in read_text(meta_file).splitlines()[1:]:
        key, _, value = line.partition(": ")
        if key.strip() == "resolution":
            try:
                width, height = ast.literal_eval(value.strip())
                return float(width), float(height)
            except (ValueError, SyntaxError, TypeError):
                break
    raise InputError(f"{meta_file} has no valid 'resolution: (W, H)' line")


def sequence_names(root: Path | str, subset: str) -> list[str]:
    """The sequences of ``<root>/<subset>/list.txt``."""
    if subset not in SUBSETS:
        raise InputError(f"GOT-10k subset must be one of {SUBSETS}, got {subset!r}")
    list_file = Path(root) / subset / "list.txt"
    if not list_file.is_file():
        raise InputError(f"GOT-10k sequence list not found: {list_file}")
    return read_name_list(list_file)
