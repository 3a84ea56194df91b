"""A plain folder of numbered frames, without ground truth."""
from __future__ import annotations

from pathlib import Path

from samn_tracker.datasets.images import list_frames
from samn_tracker.datasets.sequence import Sequence


def frames_dir(path: str | Path) -> Sequence:
    """A plain folder of numbered frames, without ground truth; numbered one after another
    or in one even step (a video's frames sampled, as YouTube-VOS keeps every fifth)."""
    path = Path(path)
    return Sequence(name=path.name, frames=list_frames(path, stepped=True), video=None)
