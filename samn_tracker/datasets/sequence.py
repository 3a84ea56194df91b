"""The ``Sequence`` every reader returns: frames read lazily as RGB uint8, so a long
video costs no memory until it is iterated, with optional per-frame ground truth.

Ground truth is a per-frame list of regions (box (4,), polygon (N, 2), bool mask) with
None where the target is absent or not annotated (boxes with NaN or zero size, GOT-10k
``absence.label``, frames past the end of a short ground-truth file, DAVIS frames
without an annotation PNG).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from samn_tracker.datasets.images import read_frames, read_image, to_rgb
from samn_tracker.errors import InputError


@dataclass
class Sequence:
    """Frames (image files or one video) with optional ground truth and per-frame tags."""

    name: str
    frames: list[Path] | None
    video: Path | None
    groundtruth: list | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    video_frames: int = 0
    """Number of decodable frames of ``video`` (counted by ``video_file``)."""
    fps: float | None = None
    """Frame rate of ``video`` as the container states it (None for image folders, and
    where the container states none or one above ``video.MAX_FPS``)."""

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else self.video_frames

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8, read from disk now (videos are decoded up to it)."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range for {self.name} ({len(self)} frames)")
        if self.frames is not None:
            return read_image(self.frames[index])
        return self._video_reader.read(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.frames is not None:
            yield from read_frames(self.frames)
        else:
            yield from decode_video(self.video, self.video_frames)

    @cached_property
    def size(self) -> tuple[int, int]:
        """(W, H) of the first frame."""
        height, width = self.image(0).shape[:2]
        return width, height

    @cached_property
    def _video_reader(self) -> VideoReader:
        return VideoReader(self.video)


class VideoReader:
    """Random access into a video by sequential decoding (seeking is not frame-exact)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture: cv2.VideoCapture | None = None
        self.position = 0

    def read(self, index: int) -> np.ndarray:
        if self.capture is None or index < self.position:
            self.capture = open_video(self.path)
            self.position = 0
        while self.position < index:
            if not self.capture.grab():
                raise InputError(f"video ends before frame {index}: {self.path}")
            self.position += 1
        ok, frame = self.capture.read()
        if not ok:
            raise InputError(f"cannot decode frame {index} of video {self.path}")
        self.position += 1
        return to_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{self.path} frame {index}")


def open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot open video file: {path}")
    return capture


def decode_video(path: Path, frames: int = 0) -> Iterator[np.ndarray]:
    """The decoded frames of ``path``; a warning where they end before the ``frames``
    counted: OpenCV stops at a frame it cannot decode, and the rest are lost, and an MP4
    edit list (a cut made without re-encoding) leaves out packets the count includes."""
    capture = open_video(path)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                if index < frames:
                    warnings.warn(f"{path}: OpenCV decodes {index} of its {frames} frames (frame {index} "
                                  "cannot be decoded and it reads no further, or an edit list trims the "
                                  "video): the video ends there", stacklevel=2)
                return
            yield to_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{path} frame {index}")
            index += 1
    finally:
        capture.release()
