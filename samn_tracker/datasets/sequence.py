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
        return VideoReader(self.video, self.video_frames)


class VideoReader:
    """Random access into a video by sequential decoding (seeking is not frame-exact), the
    frames ``decode_video`` gives, so that frame ``i`` is the same either way."""

    def __init__(self, path: Path, frames: int) -> None:
        self.path, self.frames = path, frames
        self.decoded: Iterator[np.ndarray] | None = None
        self.position = 0

    def read(self, index: int) -> np.ndarray:
        if self.decoded is None or index < self.position:
            self.decoded = decode_video(self.path, self.frames)
            self.position = 0
        for frame in self.decoded:
            self.position += 1
            if self.position > index:
                return frame
        raise InputError(f"video ends before frame {index}: {self.path}")


def open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot open video file: {path}")
    return capture


def decode_video(path: Path, frames: int = 0) -> Iterator[np.ndarray]:
    """The decoded frames of ``path``, ``frames`` of them as counted from its packets. A
    frame that cannot be decoded, where later ones can, is the frame before it again (with
    a warning naming it), so that every later frame keeps its number; the first frame must
    decode, since the target is given on it. Where decoding ends before ``frames`` (a
    truncated file, or an MP4 edit list, a cut made without re-encoding, that leaves out
    packets the count includes) the video ends there, with a warning."""
    capture = open_video(path)
    try:
        index, previous, failed = 0, None, []
        while True:
            ok, frame = capture.read()
            if not ok:
                failed.append(index + len(failed))
                if index + len(failed) < frames:
                    continue  # a bad frame, or the end: the next read tells
                if index == 0:
                    raise InputError(f"no frame of {path} can be decoded (corrupt, or a codec OpenCV lacks)")
                if index < frames:
                    warnings.warn(f"{path}: OpenCV decodes {index} of its {frames} frames (none from frame "
                                  f"{index} on, or an edit list trims the video): the video ends there",
                                  stacklevel=2)
                return
            if failed and previous is None:
                raise InputError(f"the first frame of {path} cannot be decoded (frame {len(failed)} can): "
                                 "the target is given on the first frame; cut the video after the damage")
            if failed:
                warnings.warn(f"{path}: frame(s) {', '.join(map(str, failed))} cannot be decoded; the frame "
                              "before stands in for each", stacklevel=2)
                for _ in failed:
                    yield previous
                index += len(failed)
                failed = []
            previous = to_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{path} frame {index}")
            yield previous
            index += 1
    finally:
        capture.release()
