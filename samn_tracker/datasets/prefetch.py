"""Frames read ahead of the tracker by a background thread.

Reading and JPEG decoding (OpenCV releases the GIL) then overlap tracking instead of
adding to it. With ``pin`` each frame is placed in page-locked memory, so the tracker's
upload to the GPU (``non_blocking``) does not wait for the host.

A reader still running when Python exits is stopped first (``_stop_readers``): a daemon
thread that is inside native code (OpenCV's image or video decoder) while the interpreter
finalises ends the process with SIGABRT instead of its exit status. An interrupted command
can leave one running, when the interrupt comes before the consumer's ``finally`` is set up,
when a reference keeps the generator open until exit, or when a second Ctrl-C cuts short the
generator's wait for its reader (quietly: it comes while the first one is handled).
"""
from __future__ import annotations

import atexit
import queue
import threading
from typing import Iterable, Iterator

import numpy as np
import torch

_END = object()
_RUNNING: dict[threading.Event, threading.Event] = {}  # each running reader's stop -> finished


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
    stop, finished = threading.Event(), threading.Event()

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
            put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))
        finally:
            _RUNNING.pop(stop, None)
            finished.set()

    reader = threading.Thread(target=read, name="frame-reader", daemon=True)
    _RUNNING[stop] = finished
    try:
        reader.start()
    except RuntimeError:  # no thread could be made
        del _RUNNING[stop]
        raise
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        try:
            reader.join(timeout=5)
        except KeyboardInterrupt:  # a second Ctrl-C while the first one's cleanup closes this:
            pass                   # the reader stops at its next frame, and _stop_readers waits


@atexit.register
def _stop_readers(timeout: float = 5.0) -> None:
    """Stop the readers still running and wait for each to leave the frame it is reading
    (atexit runs before the interpreter finalises its daemon threads)."""
    for stop, finished in list(_RUNNING.items()):
        stop.set()
        finished.wait(timeout)
