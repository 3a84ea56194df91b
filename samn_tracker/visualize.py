"""Overlay videos and mask PNGs for people to look at."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from samn_tracker.atomic import replacing
from samn_tracker.errors import InputError
from samn_tracker.regions import MaskCounts

MASK_COLOUR = np.array([255, 64, 64], dtype=np.float32)  # RGB
MASK_TINT = 0.35  # light enough that the target's own colours and texture show through


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """0/255 single-channel PNG, written atomically."""
    with replacing(path) as tmp:
        if not cv2.imwrite(str(tmp), mask.astype(np.uint8) * 255):
            raise OSError(f"could not write {path}")


def draw_prediction(image: np.ndarray, prediction) -> np.ndarray:
    """RGB frame with the mask tinted and outlined, the axis-aligned box in green, the
    rotated box in yellow and the confidence in a label that stays inside the frame."""
    out = image.astype(np.uint8)  # a copy to draw on
    m = prediction.mask
    bounds = MaskCounts.of(m).bounds
    if bounds is not None:  # only the mask's bounds pass through float (a 4K frame's tint: 114 ms -> 55 ms)
        region = out[bounds]
        tinted = ((1 - MASK_TINT) * region.astype(np.float32) + MASK_TINT * MASK_COLOUR).astype(np.uint8)
        np.copyto(region, tinted, where=m[bounds][..., None])
    outline, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, outline, -1, MASK_COLOUR.tolist(), 2, cv2.LINE_AA)
    x, y, w, h = (int(round(v)) for v in prediction.box)
    cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
    cv2.polylines(out, [np.round(prediction.polygon).astype(np.int32)], True, (255, 255, 0), 1)
    draw_label(out, f"conf {prediction.confidence:.2f}", x, y)
    return out


def draw_label(image: np.ndarray, text: str, x: int, y: int) -> None:
    """White ``text`` on a dark plate whose lower left corner is at (x, y), the top left of
    a box, moved inside the frame where that is outside it (a box at the top edge gets it
    inside, below its line)."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    (width, height), baseline = cv2.getTextSize(text, font, scale, 1)
    plate_w, plate_h = width + 6, height + baseline + 4
    rows, cols = image.shape[:2]
    left = min(max(x, 0), max(cols - plate_w, 0))
    top = y - plate_h if y - plate_h >= 0 else y + 2
    top = min(max(top, 0), max(rows - plate_h, 0))
    cv2.rectangle(image, (left, top), (left + plate_w - 1, top + plate_h - 1), (24, 24, 24), cv2.FILLED)
    cv2.putText(image, text, (left + 3, top + height + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def check_overlay_size(shape: tuple[int, int]) -> None:
    """Open the overlay's encoder at this size once, on a scratch file: frames it cannot take
    (mp4v stops short of 8192 pixels a side), or an OpenCV without the encoder, are refused
    before the tracker is built, not after the first frame is tracked."""
    if _encoder_opens(shape):
        return
    if not _encoder_opens((64, 64)):
        raise InputError("this OpenCV cannot write mp4v video (built without its FFmpeg backend?); add --no-video")
    raise InputError(f"the overlay's video encoder (mp4v) cannot take {shape[1]}x{shape[0]} frames; add --no-video")


def _mp4v(path: Path, shape: tuple[int, int], fps: float) -> cv2.VideoWriter:
    """The overlay's encoder for frames of ``shape`` (rows, columns), at even sizes, the only
    ones it takes (``OverlayWriter`` repeats an odd frame's last row or column)."""
    h, w = shape
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w + w % 2, h + h % 2))


def _encoder_opens(shape: tuple[int, int]) -> bool:
    """Whether mp4v opens for frames of ``shape``; OpenCV's own error lines are silenced meanwhile."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            writer = _mp4v(Path(scratch) / "probe.mp4", shape, 30.0)
            opened = writer.isOpened()
            writer.release()
    finally:
        logging.setLogLevel(level)
    return opened


class OverlayWriter:
    """MP4 of the frames with the predictions drawn on them. The encoder takes even sizes
    only and cut an odd frame's last row or column; such a frame gets that row or column
    once more instead, so the whole frame is in the video."""

    def __init__(self, path: Path, shape: tuple[int, int], fps: float = 30.0):
        h, w = shape
        self.path = path
        self.pad = (h % 2, w % 2)  # rows, columns to repeat at the bottom and the right
        self.writer = _mp4v(path, shape, fps)
        if not self.writer.isOpened():
            raise OSError(f"OpenCV cannot write video {path}")

    def write(self, image: np.ndarray, prediction) -> None:
        frame = cv2.cvtColor(draw_prediction(image, prediction), cv2.COLOR_RGB2BGR)
        if any(self.pad):
            frame = cv2.copyMakeBorder(frame, 0, self.pad[0], 0, self.pad[1], cv2.BORDER_REPLICATE)
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()
