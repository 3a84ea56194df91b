"""Overlay videos and mask PNGs for people to look at."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from samn_tracker.atomic import replacing

MASK_COLOUR = np.array([255, 64, 64], dtype=np.float32)  # RGB


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """0/255 single-channel PNG, written atomically."""
    with replacing(path) as tmp:
        if not cv2.imwrite(str(tmp), mask.astype(np.uint8) * 255):
            raise OSError(f"could not write {path}")


def draw_prediction(image: np.ndarray, prediction) -> np.ndarray:
    """RGB frame with the mask tinted, the axis-aligned box in green and the rotated box in yellow."""
    out = image.astype(np.float32)
    m = prediction.mask
    out[m] = 0.5 * out[m] + 0.5 * MASK_COLOUR
    out = out.astype(np.uint8)
    x, y, w, h = (int(round(v)) for v in prediction.box)
    cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (0, 255, 0), 2)
    cv2.polylines(out, [np.round(prediction.polygon).astype(np.int32)], True, (255, 255, 0), 1)
    cv2.putText(out, f"{prediction.confidence:.2f}", (x, max(y - 4, 12)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA)
    return out


class OverlayWriter:
    """MP4 of the frames with the predictions drawn on them. The encoder takes even sizes
    only and cut an odd frame's last row or column; such a frame gets that row or column
    once more instead, so the whole frame is in the video."""

    def __init__(self, path: Path, shape: tuple[int, int], fps: float = 30.0):
        h, w = shape
        self.path = path
        self.pad = (h % 2, w % 2)  # rows, columns to repeat at the bottom and the right
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w + w % 2, h + h % 2))
        if not self.writer.isOpened():
            raise OSError(f"OpenCV cannot write video {path}")

    def write(self, image: np.ndarray, prediction) -> None:
        frame = cv2.cvtColor(draw_prediction(image, prediction), cv2.COLOR_RGB2BGR)
        if any(self.pad):
            frame = cv2.copyMakeBorder(frame, 0, self.pad[0], 0, self.pad[1], cv2.BORDER_REPLICATE)
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()
