"""OTB sequences (``img/`` and ``groundtruth_rect.txt``)."""
from __future__ import annotations

from pathlib import Path

from samn_tracker.datasets.groundtruth import frame_shape, read_groundtruth
from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.errors import InputError


def otb_sequence(path: str | Path) -> Sequence:
    """OTB layout: ``img/0001.jpg ...`` and ``groundtruth_rect.txt`` (comma, tab or
    space separated). Sequences whose annotation starts later than frame 1 (OTB's
    David, Tiger1, ...) fail the length check instead of being silently misaligned."""
    path = Path(path)
    frames = list_frames(path / "img")
    candidates = [path / "groundtruth_rect.txt"] + sorted(path.glob("groundtruth_rect.*.txt"))
    groundtruth_file = next((f for f in candidates if f.is_file()), None)
    if groundtruth_file is None:
        raise InputError(f"OTB sequence has no groundtruth_rect.txt: {path}")
    groundtruth = read_groundtruth(groundtruth_file, len(frames), frame_shape(frames), partial=False)
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth)
