"""TrackingNet split folders: ``anno/<seq>.txt`` boxes and ``frames/<seq>/0.jpg ...``."""
from __future__ import annotations

from pathlib import Path

from samn_tracker.datasets.images import list_frames
from samn_tracker.errors import InputError


def sequence_names(split_dir: Path | str) -> list[str]:
    anno = Path(split_dir) / "anno"
    if not anno.is_dir():
        raise InputError(f"TrackingNet annotation folder not found: {anno}")
    names = sorted(p.stem for p in anno.glob("*.txt"))
    if not names:
        raise InputError(f"no <sequence>.txt annotations in {anno}")
    return names


def annotation_file(split_dir: Path | str, name: str) -> Path:
    return Path(split_dir) / "anno" / f"{name}.txt"


def frame_files(split_dir: Path | str, name: str) -> list[Path]:
    frames = list_frames(Path(split_dir) / "frames" / name, suffixes=(".jpg",))
    if frames[0].stem != "0":
        raise InputError(f"TrackingNet frames start at 0.jpg; {frames[0]} is the first file")
    return frames
