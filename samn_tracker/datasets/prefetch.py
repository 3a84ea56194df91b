"""Frames read ahead of the tracker by a background thread.

Reading and JPEG decoding (OpenCV releases the GIL) then overlap tracking instead of
adding to it. With ``pin`` each frame is placed in page-locked memory, so the tracker's
upload to the GPU (``non_blocking``) does not wait for the host.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

import numpy as np
import torch

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def pinned(image: np.ndarray) -> np.ndarray:
    """The same pixels in page-locked memory (a numpy view of a pinned tensor)."""
    return torch.from_numpy(np.ascontiguousarray(image)).pin_memory().numpy()


def prefetched(frames: Iterable[np.ndarray], depth: int = 2, pin: bool = False) -> Iterator[np.ndarray]:
    """``frames`` in order, up to ``depth`` of them read ahead; an error while reading is
    raised here, at the frame where it happened. Closing the iterator early stops the
    reader."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for image in frames:
                if not put(pinned(image) if pin else image):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))
            return
        put(_END)

    reader = threading.Thread(target=read, name="frame-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
