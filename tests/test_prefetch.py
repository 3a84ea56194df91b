"""Frames read ahead by a background thread arrive in order, errors arrive where they
happened, closing early stops the reader, and a reader left running does not crash the
process as it exits."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from samn_tracker.datasets import read_image
from samn_tracker.datasets.prefetch import prefetched


def test_frames_arrive_in_order_and_equal_to_reading_them_in_turn(davis_root):
    paths = sorted((davis_root / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:12]
    ahead = list(prefetched((read_image(p) for p in paths), depth=3))
    assert len(ahead) == len(paths)
    for path, image in zip(paths, ahead):
        assert np.array_equal(image, read_image(path))


def test_a_reading_error_is_raised_at_its_frame():
    def frames():
        yield np.zeros((2, 2, 3), np.uint8)
        raise OSError("frame 1 is unreadable")

    ahead = prefetched(frames())
    assert next(ahead).shape == (2, 2, 3)
    with pytest.raises(OSError, match="frame 1 is unreadable"):
        next(ahead)


def test_reading_runs_ahead_and_stops_when_the_consumer_stops():
    read = []

    def frames():
        for i in range(1000):
            read.append(i)
            yield np.full((1, 1, 3), i % 256, np.uint8)

    ahead = prefetched(frames(), depth=2)
    assert int(next(ahead)[0, 0, 0]) == 0
    time.sleep(0.2)
    assert 2 <= len(read) <= 4  # one taken, up to ``depth`` waiting, one being made
    ahead.close()
    assert not any(t.name == "frame-reader" and t.is_alive() for t in threading.enumerate())
    assert len(read) <= 5


def test_a_second_ctrl_c_while_closing_is_quiet_and_the_reader_still_stops():
    """A second Ctrl-C during the first one's cleanup came inside the wait for the reader,
    and Python printed the generator's traceback ("Exception ignored in")."""
    def frames():
        yield np.zeros((1, 1, 3), np.uint8)
        time.sleep(1.0)  # a frame slow to read: the reader is inside it when the generator closes
        yield np.ones((1, 1, 3), np.uint8)

    ahead = prefetched(frames(), depth=1)
    next(ahead)
    ctrl_c = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored in a background suite
    try:
        ctrl_c.start()  # the second Ctrl-C, during the close
        started = time.monotonic()
        ahead.close()
        assert 0.15 < time.monotonic() - started < 0.9  # cut short by the interrupt, not raised
    finally:
        ctrl_c.join()
        signal.signal(signal.SIGINT, handler)
    readers = [t for t in threading.enumerate() if t.name == "frame-reader"]
    for reader in readers:
        reader.join(timeout=5)
    assert readers and not any(t.is_alive() for t in readers)  # it stopped after its frame


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        next(prefetched(iter([]), depth=0))


def test_a_process_that_exits_with_a_reader_inside_the_decoder_exits_with_its_status():
    """A daemon thread inside OpenCV while Python finalises ends the process with SIGABRT
    (an interrupted `samn eval` did, now and then). Here the reader decodes JPEGs nearly
    all the time, and the process exits without closing the generator."""
    script = textwrap.dedent("""
        import sys
        import cv2
        import numpy as np
        from samn_tracker.datasets.prefetch import prefetched

        noise = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)
        jpeg = cv2.imencode(".jpg", noise)[1]

        def frames():
            while True:
                for _ in range(3):
                    image = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
                yield image

        ahead = prefetched(frames(), depth=1)
        for _ in range(3):
            next(ahead)
        sys.exit(7)
    """)
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.returncode == 7, result.stderr
