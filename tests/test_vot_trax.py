"""TraX server: real SAMN tracker over the TraX protocol, re-initialisation in one
process, output kinds, and clear errors (not hangs) on malformed input."""
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
from trax.region import Mask, Polygon, Rectangle, Region  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO.parent / "shared" / "data" / "davis16"
SEQ = "car-shadow"
FAST_CONFIG = "crop_size=96 use_dcf=False"
TIMEOUT = 180  # whole sessions of several starts, each tuning, on a busy 2-core CI machine


def _frame(i: int) -> Path:
    return DAVIS / "JPEGImages" / "480p" / SEQ / f"{i:05d}.jpg"


@pytest.fixture(autouse=True)
def _need_data():
    if not _frame(0).is_file():
        pytest.skip(f"DAVIS test data not found in {DAVIS}")


class Session:
    """A TraX server process and a client; a watchdog kills the server after TIMEOUT s,
    so a hang fails the test instead of blocking it."""

    def __init__(self, tmp_path: Path, output: str = "auto",
                 server: tuple[str, ...] = ("-m", "samn_tracker.vot.trax_server")):
        env = dict(os.environ, PYTHONPATH=str(REPO), SAMN_VOT_CONFIG=FAST_CONFIG,
                   SAMN_VOT_OUTPUT=output, PYTHONUNBUFFERED="1")
        self.stderr_path = tmp_path / "stderr.txt"
        self._stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen([sys.executable, *server],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=env, cwd=tmp_path)
        self._timer = threading.Timer(TIMEOUT, self.process.kill)
        self._timer.start()
        self.log: list[str] = []
        self.client = Client(stream=(self.process.stdin.fileno(), self.process.stdout.fileno()),
                             log=self.log.append)

    def initialize(self, image: Path, region):
        return self.client.initialize({"color": FileImage.create(str(image))}, [(region, {})], {})

    def frame(self, image: Path):
        return self.client.frame({"color": FileImage.create(str(image))}, {}, [])

    def close(self) -> int:
        try:
            self.process.wait(TIMEOUT)
        finally:
            self._timer.cancel()
            self._stderr.close()
        return self.process.returncode

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()


def _gt_box(i: int) -> np.ndarray:
    return np.loadtxt(DAVIS / "boxes" / f"{SEQ}.txt", delimiter=",")[i]


def test_reinitialise_in_one_process_with_each_region_kind(tmp_path):
    session = Session(tmp_path)
    x, y, w, h = _gt_box(0)
    objects, _ = session.initialize(_frame(0), Rectangle.create(x, y, w, h))
    region, properties = objects[0]
    assert region.type == Region.RECTANGLE  # auto: the kind of the initial region
    assert "confidence" not in properties  # frame 0 predicts nothing, as in the toolkit's own integration
    objects, _ = session.frame(_frame(1))
    region, properties = objects[0]
    assert region.type == Region.RECTANGLE and 0 <= float(properties.get("confidence")) <= 1
    # re-initialise the same process with a polygon, then with a mask
    x, y, w, h = _gt_box(2)
    objects, _ = session.initialize(_frame(2), Polygon.create([(x, y), (x + w, y), (x + w, y + h), (x, y + h)]))
    assert objects[0][0].type == Region.POLYGON
    from PIL import Image
    mask = (np.asarray(Image.open(DAVIS / "Annotations" / "480p" / SEQ / "00003.png")) > 0).astype(np.uint8)
    objects, _ = session.initialize(_frame(3), Mask.create(np.ascontiguousarray(mask)))
    assert objects[0][0].type == Region.MASK
    objects, _ = session.frame(_frame(4))
    out = objects[0][0]
    assert out.type == Region.MASK
    ox, oy = out.offset()
    height, width = out.array().shape
    assert 0 <= ox and ox + width <= 854 and 0 <= oy and oy + height <= 480
    session.client.quit()
    assert session.close() == 0


def test_a_given_output_kind_overrides_the_initial_regions(tmp_path):
    session = Session(tmp_path, output="polygon")
    x, y, w, h = _gt_box(0)
    objects, _ = session.initialize(_frame(0), Rectangle.create(x, y, w, h))
    assert objects[0][0].type == Region.POLYGON and len(list(objects[0][0])) == 4
    objects, _ = session.frame(_frame(1))
    assert objects[0][0].type == Region.POLYGON
    session.client.quit()
    assert session.close() == 0


def _unreadable(tmp_path: Path) -> Path:
    path = tmp_path / "broken.jpg"
    path.write_text("not an image")
    return path


@pytest.mark.parametrize("case, expected", [
    ("empty rectangle", "no area"),
    ("rectangle outside", "outside"),
    ("empty mask", "is empty"),
    ("unreadable image", "cannot decode"),
])
def test_malformed_input_gives_clear_error_and_exit(tmp_path, case, expected):
    session = Session(tmp_path)
    image = _unreadable(tmp_path) if case == "unreadable image" else _frame(0)
    region = {
        "empty rectangle": Rectangle.create(100, 100, 0, 0),
        "rectangle outside": Rectangle.create(5000, 5000, 20, 20),
        "empty mask": Mask.create(np.zeros((5, 5), dtype=np.uint8), 10, 10),
        "unreadable image": Rectangle.create(100, 100, 50, 50),
    }[case]
    with pytest.raises(trax.TraxException, match=expected):
        session.initialize(image, region)
    assert session.close() == 1
    assert "samn trax server: error:" in session.stderr and expected in session.stderr


def test_an_initial_mask_is_refused_as_empty_or_as_outside_the_image():
    """Both said "no pixel inside the image", which sends a user looking for a wrong offset."""
    from trax.region import Mask

    from samn_tracker.errors import InputError
    from samn_tracker.vot.trax_server import region_from_trax

    blob = np.zeros((20, 30), np.uint8)
    blob[5:10, 5:10] = 1
    with pytest.raises(InputError, match=r"initial mask \(offset 0,0, size 30x20\) is empty"):
        region_from_trax(Mask.create(np.zeros((20, 30), np.uint8)), (480, 854))
    with pytest.raises(InputError, match="has no pixel inside the 854x480 image"):
        region_from_trax(Mask.create(blob, 900, 10), (480, 854))
    assert region_from_trax(Mask.create(blob, 100, 10), (480, 854)).sum() == 25


def test_an_empty_mask_is_reported_as_the_box_the_tracker_holds():
    from samn_tracker.tracker import Prediction
    from samn_tracker.vot.trax_server import region_to_trax

    empty = Prediction(mask=np.zeros((40, 60), bool), box=np.array([10.0, 5.0, 8.0, 6.0]),
                       confidence=0.0, uncertain=True)
    region = region_to_trax(empty, "mask")
    assert region.type == Region.MASK
    assert region.offset() == (10, 5) and region.size() == (8, 6)
    assert np.asarray(region.array()).all()


def _server(tmp_path: Path, env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    """The TraX server started as the toolkit starts it, with ``env`` added and ``stdin``
    as all its input (no TraX client)."""
    return subprocess.run([sys.executable, "-m", "samn_tracker.vot.trax_server"], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO), "SAMN_VOT_CONFIG": FAST_CONFIG, **env})


@pytest.mark.parametrize("env, said", [
    ({"SAMN_VOT_CONFIG": "memory.interval=abc"}, "memory.interval='abc'"),
    ({"SAMN_VOT_OUTPUT": "bogus"}, "SAMN_VOT_OUTPUT='bogus'"),
    ({"SAMN_VOT_THREADS": "0"}, "SAMN_VOT_THREADS='0': must be at least 1"),
])
def test_a_bad_setting_at_start_up_is_one_line_and_exit_status_2(tmp_path, env, said):
    done = _server(tmp_path, env)
    assert done.returncode == 2
    assert said in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("stdin", ["", "not trax\n"])
def test_a_stream_that_is_not_trax_ends_in_one_line_not_a_traceback(tmp_path, stdin):
    done = _server(tmp_path, {}, stdin)
    assert done.returncode == 1
    assert done.stderr.startswith("samn trax server: error: the TraX connection failed")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_lite_serves_on_one_cpu_thread_unless_told(monkeypatch):
    """As in ``samn track``: two threads of lite wait on each other whenever another program
    takes a core, and the toolkit runs the tracker beside its own work."""
    import torch

    from samn_tracker.vot.trax_server import options_from_args, tracker_for

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("SAMN_VOT_CONFIG", FAST_CONFIG)
    monkeypatch.delenv("SAMN_VOT_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        tracker_for(options_from_args(["--device", "cpu"]))
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SAMN_VOT_THREADS", "2")
        options = options_from_args(["--device", "cpu"])
        assert options.threads == 2
        tracker_for(options)
        assert torch.get_num_threads() == 2
        assert options_from_args(["--threads", "3"]).threads == 3  # the option before the variable
    finally:
        torch.set_num_threads(before)


SCRIPTED_SERVER = """
import sys
import numpy as np
from samn_tracker.tracker import Prediction
from samn_tracker.vot.trax_server import serve

class Scripted:
    \"\"\"Answers the box and confidence of the tracked frame's number; frame 2 fails.\"\"\"
    frame = 0

    def answer(self, image, confidence):
        box = np.array([10.5 + self.frame, 20.0, 40.0 + self.frame, 30.0])
        return Prediction(mask=np.zeros(image.shape[:2], bool), box=box, confidence=confidence, uncertain=False)

    def initialize(self, image, region):
        self.frame = 0
        return self.answer(image, 1.0)

    def track(self, image):
        self.frame += 1
        if self.frame == 2:
            raise RuntimeError("scripted failure")
        return self.answer(image, 0.125 * self.frame)

raise SystemExit(serve(Scripted(), "rectangle"))
"""


def test_track_answers_carry_the_trackers_box_and_confidence_and_a_crash_exits_2(tmp_path):
    """Over TraX, a tracked frame's answer is the tracker's own box (x, y, w, h as it is) and
    its own confidence; an unexpected error in the tracker ends the session with a line
    naming it and exit status 2. A scripted tracker behind the real ``serve``: no network."""
    script = tmp_path / "scripted_server.py"
    script.write_text(SCRIPTED_SERVER)
    session = Session(tmp_path, server=(str(script),))
    session.initialize(_frame(0), Rectangle.create(100, 100, 50, 50))
    objects, _ = session.frame(_frame(1))
    region, properties = objects[0]
    assert region.type == Region.RECTANGLE
    assert region.bounds() == pytest.approx((11.5, 20.0, 41.0, 30.0))
    assert float(properties.get("confidence")) == pytest.approx(0.125)
    with pytest.raises(trax.TraxException, match="scripted failure"):
        session.frame(_frame(2))
    assert session.close() == 2
    assert "samn trax server: unexpected RuntimeError: scripted failure" in session.stderr


def test_an_initial_polygon_outside_the_image_is_refused():
    """As an initial rectangle outside the image is: a clear error, not a tracker started on
    nothing."""
    from samn_tracker.errors import InputError
    from samn_tracker.vot.trax_server import region_from_trax

    with pytest.raises(InputError, match="outside"):
        region_from_trax(Polygon.create([(5000, 5000), (5020, 5000), (5020, 5020)]), (480, 854))
    triangle = [(100.0, 100.0), (150.0, 100.0), (150.0, 140.0)]
    np.testing.assert_array_equal(region_from_trax(Polygon.create(triangle), (480, 854)), triangle)
