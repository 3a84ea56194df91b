"""Ground-truth files shared by the layouts: one region per line, per-frame tags,
key=value metadata and box files."""
from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np

from samn_tracker.datasets.images import image_shape, read_image
from samn_tracker.errors import InputError
from samn_tracker.regions import check_box, parse_region


def read_text(path: Path) -> str:
    """A text file of a dataset or a tracker's results, or an InputError naming it: a file
    saved as UTF-16 (Windows PowerShell's ``>``) or a binary file is one line, not a traceback;
    a UTF-8 byte-order mark is dropped."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 or ASCII text (saved as UTF-16?): save it as UTF-8") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err}") from None


def read_groundtruth(file: Path, num_frames: int, shape: tuple[int, int], partial: bool = True) -> list:
    """One region per line; with ``partial`` a shorter file (GOT-10k test: first frame
    only) leaves the remaining frames None."""
    lines = [line for line in read_text(file).splitlines() if line.strip()]
    if len(lines) > num_frames or (not partial and len(lines) != num_frames):
        raise InputError(f"{file} has {len(lines)} regions but the sequence has {num_frames} frames")
    regions = []
    for number, line in enumerate(lines, start=1):
        try:
            regions.append(_present(parse_region(line, shape)))
        except InputError as err:
            raise InputError(f"{file} line {number}: {err}") from err
    return regions + [None] * (num_frames - len(regions))


def _present(region: np.ndarray) -> np.ndarray | None:
    """None for boxes/polygons that carry no target (NaN or zero size); masks stay, even empty."""
    if region.dtype == bool:
        return region
    if region.ndim == 2:
        extent = region.max(axis=0) - region.min(axis=0)
    else:
        extent = region[2:]
    if not np.all(np.isfinite(region)) or np.any(extent <= 0):
        return None
    return region


def read_tags(folder: Path, num_frames: int) -> dict[str, np.ndarray]:
    """``*.tag`` / ``*.label`` (ints) and ``*.value`` (floats) files, zero-padded to the length."""
    tags = {}
    for file in sorted(folder.iterdir()):
        if file.suffix not in (".tag", ".label", ".value") or not file.is_file():
            continue
        try:
            values = [float(line) for line in read_text(file).split()]
        except ValueError as err:
            raise InputError(f"tag file must hold one number per line: {file}") from err
        if len(values) > num_frames:
            raise InputError(f"{file} has {len(values)} entries but the sequence has {num_frames} frames")
        array = np.zeros(num_frames, dtype=np.float64 if file.suffix == ".value" else np.int64)
        array[:len(values)] = values
        tags[file.stem] = array
    return tags


def frame_shape(frames: list[Path]) -> tuple[int, int]:
    return read_image(frames[0]).shape[:2]


def read_metadata(file: Path) -> dict[str, str]:
    metadata = {}
    for line in read_text(file).splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            metadata[key.strip()] = value.strip()
    return metadata


def read_boxes(path: Path | IO[str]) -> np.ndarray:
    """x,y,w,h rows as (N, 4) from a file or an open text stream: separated by commas, or by
    tabs or spaces as some tools write them (OTB's, and results of other trackers); lines of
    only whitespace are skipped."""
    try:
        text = path.read() if hasattr(path, "read") else read_text(path)
    except (OSError, UnicodeDecodeError) as err:  # a stream's own read
        raise InputError(f"cannot read boxes from {path}: {err}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",") if "," in line else line.split()
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            raise InputError(f"cannot read boxes from {path}: line {number} is not numbers: {line.strip()!r}") from None
        if len(rows[-1]) != 4:
            raise InputError(f"{path} line {number}: expected 4 numbers x,y,w,h, got {len(rows[-1])}")
    if not rows:
        raise InputError(f"{path} is empty: expected x,y,w,h lines")
    return np.array(rows, dtype=np.float64)


def read_numbers(path: Path, delimiter: str | None = None) -> np.ndarray:
    """The numbers of a label or time file, flat; InputError naming the file, not numpy's
    traceback, where one is not a number."""
    text = read_text(path)
    try:
        return np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=1).reshape(-1)
    except ValueError as err:
        raise InputError(f"cannot read numbers from {path}: {err}") from None


def initial_box(box_file: Path, first_frame: Path) -> np.ndarray:
    """Line 1 of ``box_file`` checked as a tracker's start (finite, with area, on the first
    frame), so that a benchmark can refuse a bad sequence before tracking any."""
    return check_box(read_boxes(box_file)[0], image_shape(first_frame), name=f"{box_file} line 1: the initial box")
