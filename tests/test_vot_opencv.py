"""The OpenCV CSRT baseline over TraX: the same request loop as SAMN's server, so
`vot evaluate csrt` compares both on identical terms."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

trax = pytest.importorskip("trax")
from trax.client import Client  # noqa: E402
from trax.image import FileImage  # noqa: E402
from trax.region import Mask, Rectangle, Region  # noqa: E402

from samn_tracker.regions import iou_boxes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO.parent / "shared" / "data" / "davis16"
SEQ = "car-shadow"


def _frame(i: int) -> str:
    return str(DAVIS / "JPEGImages" / "480p" / SEQ / f"{i:05d}.jpg")


def _gt_box(i: int) -> np.ndarray:
    return np.loadtxt(DAVIS / "boxes" / f"{SEQ}.txt", delimiter=",")[i]


@pytest.fixture
def client(tmp_path):
    if not Path(_frame(0)).is_file():
        pytest.skip(f"DAVIS test data not found in {DAVIS}")
    env = dict(os.environ, PYTHONPATH=str(REPO), SAMN_VOT_OPENCV="csrt", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "samn_tracker.vot.opencv_server"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    timer = threading.Timer(60, process.kill)
    timer.start()
    yield Client(stream=(process.stdin.fileno(), process.stdout.fileno()), log=lambda _: None)
    process.wait(60)
    timer.cancel()
    assert process.returncode == 0, process.stderr.read().decode()


def _image(i: int) -> dict:
    return {"color": FileImage.create(_frame(i))}


def test_csrt_follows_the_car_and_accepts_a_mask_initialisation(client):
    x, y, w, h = _gt_box(0)
    objects, _ = client.initialize(_image(0), [(Rectangle.create(x, y, w, h), {})], {})
    assert objects[0][0].type == Region.RECTANGLE
    ious = []
    for i in range(1, 8):
        objects, _ = client.frame(_image(i), {}, [])
        region = objects[0][0]
        assert region.type == Region.RECTANGLE
        ious.append(iou_boxes(np.asarray(region.bounds(), float), _gt_box(i)))
    assert min(ious) > 0.5, ious

    from PIL import Image
    mask = (np.asarray(Image.open(DAVIS / "Annotations" / "480p" / SEQ / "00010.png")) > 0)
    objects, _ = client.initialize(_image(10), [(Mask.create(mask.astype(np.uint8)), {})], {})
    assert iou_boxes(np.asarray(objects[0][0].bounds(), float), _gt_box(10)) > 0.9
    client.quit()


def test_an_unknown_opencv_tracker_is_one_line_and_exit_status_2(tmp_path):
    """``SAMN_VOT_OPENCV`` is the option's default, which argparse does not check against
    the choices: a KeyError traceback with exit 1 before."""
    env = dict(os.environ, PYTHONPATH=str(REPO), SAMN_VOT_OPENCV="foo")
    done = subprocess.run([sys.executable, "-m", "samn_tracker.vot.opencv_server"], input="",
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "SAMN_VOT_OPENCV='foo': choose one of csrt, kcf" in done.stderr
