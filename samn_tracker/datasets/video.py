"""Video files decoded with OpenCV."""
from __future__ import annotations

from pathlib import Path

import cv2

from samn_tracker.datasets.sequence import Sequence, open_video
from samn_tracker.errors import InputError


def video_file(path: str | Path) -> Sequence:
    """A video decoded with OpenCV; the frame count is counted by decoding, not taken
    from the container (``CAP_PROP_FRAME_COUNT`` is an estimate for many codecs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    if count == 0:
        raise InputError(f"video has no decodable frames (corrupt or unsupported codec): {path}")
    return Sequence(name=path.stem, frames=None, video=path, video_frames=count, fps=fps)
