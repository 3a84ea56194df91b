"""DAVIS 2016 / 2017: ``JPEGImages/<resolution>/<seq>/*.jpg``, ``Annotations/<resolution>/<seq>/*.png``,
split lists in ``ImageSets/`` (or the shared data's ``splits.txt``) and, in the shared
data, box ground truth ``boxes/<seq>.txt``.

Annotations: DAVIS 2017 PNGs hold object ids (palette; 255 = void, read as background).
DAVIS 2016 PNGs are 0/255 masks, read as object 1 wherever non-zero; a few PNGs of the
full 2016 release carry an alpha channel (LA), whose grey is thresholded at 127. The
official 2017 evaluation reads 0/255 masks as void with no object, so a 0/255 grayscale
mask read as 2017 is an error here instead of a silent zero.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from samn_tracker.datasets import splits
from samn_tracker.datasets.groundtruth import read_boxes
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.errors import InputError
from samn_tracker.regions import mask_to_box

YEARS = (2016, 2017)
VOID = 255


def frame_files(root: Path | str, name: str, resolution: str = "480p") -> list[Path]:
    return list_frames(Path(root) / "JPEGImages" / resolution / name, suffixes=(".jpg",))


def annotation_file(root: Path | str, name: str, resolution: str, frame: Path) -> Path:
    return Path(root) / "Annotations" / resolution / name / f"{frame.stem}.png"


def boxes_file(root: Path | str, name: str) -> Path:
    """``x,y,w,h`` per frame: the shared data's box ground truth (not part of DAVIS)."""
    return Path(root) / "boxes" / f"{name}.txt"


def box_groundtruth(root: Path | str, name: str, frames: list[Path],
                    resolution: str = "480p") -> np.ndarray:
    """(N, 4) ``x,y,w,h`` per frame: ``boxes/<name>.txt`` where the data has it, else the
    tight box of each frame's mask (the same convention), zeros where the object is absent."""
    path = boxes_file(root, name)
    if path.is_file():
        return read_boxes(path)
    boxes = []
    for frame in frames:
        annotation = annotation_file(root, name, resolution, frame)
        if not annotation.is_file():
            raise InputError(f"no box ground truth for {name}: neither {path} nor {annotation}")
        box = mask_to_box(read_annotation(annotation) > 0)
        boxes.append(np.zeros(4) if box is None else box)
    return np.asarray(boxes, dtype=np.float64)


def sequence_folders(root: Path | str, resolution: str = "480p") -> list[str]:
    """Every sequence that has a frame folder, sorted."""
    return sorted(p.name for p in (Path(root) / "JPEGImages" / resolution).iterdir() if p.is_dir())


def read_annotation(path: Path, year: Optional[int] = None) -> np.ndarray:
    """Object-id map (uint8, 0 = background) of a ground-truth or result PNG. ``year``
    2016: 0/1; 2017: object ids; None: ids of a palette PNG, else read as 2016."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            values = np.array(image.convert("L") if mode in ("LA", "RGB", "RGBA") else image)
    except (OSError, SyntaxError) as err:
        raise InputError(f"cannot read the DAVIS mask PNG {path}: {err}") from None  # a truth's or a result's
    if year == 2016 or (year is None and mode != "P"):
        if mode in ("LA", "RGB", "RGBA"):
            return (values > 127).astype(np.uint8)
        return (values > 0).astype(np.uint8)
    if values.ndim != 2 or mode in ("LA", "RGB", "RGBA"):
        raise InputError(f"DAVIS masks are single-channel (palette or grayscale) PNGs; {path} is {mode}")
    present = set(np.unique(values).tolist())
    if mode != "P" and VOID in present and present <= {0, VOID}:
        raise InputError(f"{path} is a 0/255 binary mask (DAVIS 2016 style); read it as 2016: "
                         "--year 2016, or as a training source davis:ROOT:2016")
    ids = values.astype(np.uint8)
    ids[values == VOID] = 0
    return ids


def refuse_object_ids(path: Path) -> None:
    """For scoring as DAVIS 2016: refuse a palette PNG of more than one nonzero value (object
    ids, or an object and the void), which 2016's reading makes one target (training reads a
    2017 tree so on purpose, ``davis:ROOT:2016``; a benchmark score must not). One value, 1
    or 255, is a 2016 mask saved with a palette."""
    try:
        with Image.open(path) as image:
            ids = set(np.unique(np.array(image)).tolist()) - {0} if image.mode == "P" else set()
    except (OSError, SyntaxError) as err:
        raise InputError(f"cannot read the DAVIS mask PNG {path}: {err}") from None
    if len(ids) > 1:
        raise InputError(f"{path} is a palette PNG of object ids {sorted(ids)} (DAVIS 2017 style); "
                         "score it as 2017: --year 2017")


def object_ids(annotation: np.ndarray) -> list[int]:
    return [int(i) for i in np.unique(annotation) if i != 0]


def sequence_names(root: Path | str, year: int, split: str, resolution: str = "480p") -> list[str]:
    """Names of an official list (``ImageSets/<year>/<split>.txt``, or the 2016 download's
    ``ImageSets/<resolution>/<split>.txt``), else of ``splits.txt``."""
    root = Path(root)
    candidates = [root / "ImageSets" / str(year) / f"{split}.txt",
                  root / "ImageSets" / resolution / f"{split}.txt"]
    for path in candidates:
        if path.is_file():
            return splits.read_name_list(path)
    if (root / splits.SPLITS_FILE).is_file():
        return splits.names_in_split(root, split)
    tried = " or ".join(map(str, candidates + [root / splits.SPLITS_FILE]))
    found = sorted(str(p.relative_to(root)) for p in root.glob("ImageSets/*/*.txt"))
    has = f"; {root} has {', '.join(found)}" if found else ""  # the lists of another split or year
    raise InputError(f"DAVIS sequence list not found: {tried} (or name the sequences){has}")


def davis_sequence(root: Path | str, name: str, resolution: str = "480p") -> Sequence:
    """Frames with object 1 as bool masks (DAVIS 2016: every foreground pixel); None on
    frames without an annotation PNG."""
    root = Path(root)
    frames = frame_files(root, name, resolution)
    folder = root / "Annotations" / resolution / name
    if not folder.is_dir():
        raise InputError(f"DAVIS annotation folder not found: {folder}")
    if not any(folder.glob("*.png")):
        raise InputError(f"no annotation PNGs in {folder}")
    groundtruth = []
    for frame in frames:
        path = annotation_file(root, name, resolution, frame)
        groundtruth.append(read_annotation(path) == 1 if path.is_file() else None)
    return Sequence(name=name, frames=frames, video=None, groundtruth=groundtruth)
