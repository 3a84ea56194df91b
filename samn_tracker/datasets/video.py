"""Video files decoded with OpenCV."""
from __future__ import annotations

import warnings
from contextlib import closing
from pathlib import Path

import cv2

from samn_tracker.datasets.sequence import Sequence, decode_video, open_video
from samn_tracker.errors import InputError

MAX_FPS = 1000.0
"""Above this a container's rate is a clock (MPEG-TS says 90000), not its frames': an
overlay at it cannot be written (MPEG-4 takes at most 65535) or would not play."""


def video_file(path: str | Path) -> Sequence:
    """A video decoded with OpenCV; the frame count is counted, not taken from the
    container (``CAP_PROP_FRAME_COUNT`` is an estimate for many codecs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not 0 < fps <= MAX_FPS:
        if fps > MAX_FPS:
            warnings.warn(f"{path} states {fps:g} frames per second, above {MAX_FPS:g}: a clock's "
                          "rate, not its frames'; its frame rate is taken as unknown", stacklevel=2)
        fps = None
    count = count_frames(capture)
    capture.release()
    with closing(decode_video(path, count)) as decoded:
        next(decoded)  # the first frame decodes, or the InputError says why not
    return Sequence(name=path.stem, frames=None, video=path, video_frames=count, fps=fps)


def count_frames(capture: cv2.VideoCapture) -> int:
    """The frames of a freshly opened ``capture``: its packets, read without decoding
    (FFmpeg's raw mode, ``CAP_PROP_FORMAT`` -1), or decoded where the backend has no raw
    mode. Decoding them all cost as long as decoding for tracking again: a 10-minute 4K
    video was read for 13 minutes before its first frame was tracked, --max-frames or not."""
    capture.set(cv2.CAP_PROP_FORMAT, -1)
    count = 0
    while capture.grab():
        count += 1
    return count
