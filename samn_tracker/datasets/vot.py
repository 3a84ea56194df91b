"""VOT sequences (``sequence`` metadata, ``color/``, ``groundtruth.txt``, tags)."""
from __future__ import annotations

from pathlib import Path

from samn_tracker.datasets.groundtruth import frame_shape, read_groundtruth, read_metadata, read_tags
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.errors import InputError


def vot_sequence(path: str | Path) -> Sequence:
    """VOT layout: ``sequence`` metadata (``channels.color=color/%08d.jpg``), ``groundtruth.txt``
    with rectangle, polygon or mask lines, and per-frame ``*.tag`` / ``*.label`` / ``*.value``."""
    path = Path(path)
    metadata_file = path / "sequence"
    metadata = read_metadata(metadata_file) if metadata_file.is_file() else {}
    pattern = metadata.get("channels.color", "color/%08d.jpg")
    frame_folder = (path / pattern).parent
    frames = list_frames(frame_folder, (Path(pattern).suffix.lower(),))
    groundtruth_file = path / "groundtruth.txt"
    if not groundtruth_file.is_file():
        raise InputError(f"VOT sequence has no groundtruth.txt: {path}")
    groundtruth = read_groundtruth(groundtruth_file, len(frames), frame_shape(frames), partial=False)
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth,
                    tags=read_tags(path, len(frames)))
