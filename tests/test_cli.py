"""`samn track` on a real sequence: the files a user gets, and errors for bad input."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from samn_tracker.cli import check_start, main
from samn_tracker.errors import InputError

from conftest import SHORT_TUNING_ARGS, read_boxes


def test_track_a_frames_folder_writes_boxes_masks_and_overlay(davis_root, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    src = davis_root / "JPEGImages" / "480p" / "car-shadow"
    for i in range(5):
        shutil.copy(src / f"{i:05d}.jpg", frames / f"{i:05d}.jpg")
    box = read_boxes(davis_root, "car-shadow")[0]
    out = tmp_path / "out"
    code = main(["track", str(frames), "--box", ",".join(str(v) for v in box), "--out", str(out),
                 "--device", "cpu"])
    assert code == 0
    boxes = np.loadtxt(out / "boxes.txt", delimiter=",")
    assert boxes.shape == (5, 4) and np.all(boxes[:, 2:] > 0)
    assert np.loadtxt(out / "polygons.txt", delimiter=",").shape == (5, 8)
    conf = np.loadtxt(out / "confidence.txt")
    assert conf.shape == (5,) and np.all((conf >= 0) & (conf <= 1))
    masks = sorted((out / "masks").glob("*.png"))
    assert [m.name for m in masks] == [f"{i:05d}.png" for i in range(5)]
    first = cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE)
    assert first.shape == (480, 854) and set(np.unique(first)) <= {0, 255} and first.any()
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    printed = capsys.readouterr()
    assert "fps" in printed.out and "5/5" in printed.err  # the progress bar
    assert "segmenting the first box, then tuning the decoder on a trusted mask (40 steps)" in printed.err

    quiet = tmp_path / "quiet"
    assert main(["track", str(frames), "--box", ",".join(str(v) for v in box), "--out", str(quiet),
                 "--device", "cpu", "--no-video", "--no-progress", "--max-frames", "2", *SHORT_TUNING_ARGS]) == 0
    printed = capsys.readouterr()
    assert "2/2" not in printed.err and "fps" in printed.out
    assert np.loadtxt(quiet / "boxes.txt", delimiter=",").shape == (2, 4)


def test_track_reports_bad_input_clearly(davis_root, tmp_path, capsys):
    seq = davis_root / "JPEGImages" / "480p" / "car-shadow"
    assert main(["track", str(seq), "--box", "1,2,3", "--out", str(tmp_path)]) == 2
    assert "--box needs 4 numbers" in capsys.readouterr().err
    assert main(["track", str(seq), "--box", "9000,9000,10,10", "--out", str(tmp_path)]) == 2
    assert "9000" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "missing"), "--box", "1,2,3,4", "--out", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


def test_track_a_video_whose_container_states_a_clock_rate(davis_root, tmp_path, capsys):
    """An AVI whose header says 90000 fps (an MPEG-TS clock's rate): the overlay is written
    at 30 fps (at 90000 OpenCV cannot write it, and the run failed)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (854, 480))
    for i in range(3):
        writer.write(cv2.imread(str(davis_root / "JPEGImages" / "480p" / "car-shadow" / f"{i:05d}.jpg")))
    writer.release()
    data = bytearray(path.read_bytes())
    header = data.find(b"strh")
    data[header + 28:header + 36] = (1).to_bytes(4, "little") + (90000).to_bytes(4, "little")  # scale, rate
    path.write_bytes(data)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == 90000
    box = ",".join(str(v) for v in read_boxes(davis_root, "car-shadow")[0])
    out = tmp_path / "out"
    assert main(["track", str(path), "--box", box, "--out", str(out), "--device", "cpu", "--no-progress",
                 *SHORT_TUNING_ARGS]) == 0
    assert "states 90000 frames per second" in capsys.readouterr().err
    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == 30 and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_a_video_that_ends_before_its_packets_ends_its_progress_bar_whole(davis_root, tmp_path, capsys):
    """OpenCV counts 6 packets but decodes 4 (the last two frames' JPEGs blanked; an MP4 edit
    list cuts packets alike): the run writes 4 frames and the bar ends at 4/4, not 4/6."""
    path = tmp_path / "clip.avi"
    src = davis_root / "JPEGImages" / "480p" / "car-shadow"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (854, 480))
    for i in range(6):
        writer.write(cv2.imread(str(src / f"{i:05d}.jpg")))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    data[starts[4]:starts[5] - 16] = bytes(starts[5] - 16 - starts[4])
    data[starts[5]:len(data) - 400] = bytes(len(data) - 400 - starts[5])
    path.write_bytes(data)
    box = ",".join(str(v) for v in read_boxes(davis_root, "car-shadow")[0])
    out = tmp_path / "out"
    assert main(["track", str(path), "--box", box, "--out", str(out), "--device", "cpu", "--no-video",
                 *SHORT_TUNING_ARGS]) == 0
    err = capsys.readouterr().err
    assert "OpenCV decodes 4 of its 6 frames" in err
    assert "100%" in err.rsplit("clip:", 1)[-1] and "4/4" in err.rsplit("clip:", 1)[-1]  # the bar's last state
    assert len(list((out / "masks").glob("*.png"))) == 4


def test_an_odd_sized_frame_is_whole_in_the_overlay(tmp_path):
    """The MPEG-4 writer cut an odd frame's last row and column: a target at the bottom or
    right edge was not in the video."""
    from types import SimpleNamespace

    from samn_tracker.visualize import OverlayWriter

    h, w = 75, 101
    frame = np.full((h, w, 3), 40, np.uint8)
    frame[-8:, :] = frame[:, -8:] = (250, 250, 250)  # white along the last rows and columns
    nothing = SimpleNamespace(mask=np.zeros((h, w), bool), box=(-500, -500, 1, 1),
                              polygon=np.full((4, 2), -500.0), confidence=0.5)
    writer = OverlayWriter(tmp_path / "odd.mp4", (h, w))
    for _ in range(3):
        writer.write(frame, nothing)
    writer.close()
    ok, read = cv2.VideoCapture(str(tmp_path / "odd.mp4")).read()
    assert ok and read.shape == (h + 1, w + 1, 3)
    assert read[-2:, :w - 10].mean() > 200 and read[:h - 10, -2:].mean() > 200  # the edges, and their repeat
    assert read[:h - 10, :w - 10].mean() < 60


def test_a_polygon_reaching_outside_the_frame_is_noted_by_its_bounds_named_so(capsys):
    check_start(np.array([[-100, -100], [300, -100], [300, 300], [-100, 300]], float), (480, 854))
    note = capsys.readouterr().err
    assert note.startswith("samn track: note: the initial polygon's bounding box (x,y,w,h) -100,-100,400,400 ")
    assert note.rstrip().endswith("its part inside, 0,0,300,300")


def test_a_polygon_outside_the_frame_is_refused_by_its_bounds_named_so():
    with pytest.raises(InputError, match=r"initial polygon's bounding box \[1000.0, 1000.0, 100.0, 100.0\] "
                                         "lies entirely outside the 854x480 image"):
        check_start(np.array([[1000, 1000], [1100, 1000], [1100, 1100], [1000, 1100]], float), (480, 854))


def test_a_polygon_whose_points_lie_on_one_line_is_refused_by_samn_track_and_the_tracker():
    """A diagonal line's bounds have an area, so it passed the box check and tracked its
    201x201 bounds; a horizontal one was refused (no height) in other words."""
    from samn_tracker.tracker import SAMNTracker

    line = np.array([[100, 100], [200, 200], [300, 300]], float)
    with pytest.raises(InputError, match=r"initial polygon \[100.0, 100.0, 200.0, 200.0, 300.0, 300.0\] encloses "
                                         "no area: its points lie on one line"):
        check_start(line, (480, 854))
    with pytest.raises(InputError, match="encloses no area"):
        SAMNTracker._initial_mask(None, line, (480, 854))
    check_start(np.array([[100, 100], [200, 200], [300, 100]], float), (480, 854))  # a triangle
    check_start(np.array([[100, 100], [300, 100], [100, 200], [300, 200]], float), (480, 854))  # corners in Z order


def test_the_overlays_confidence_label_stays_whole_inside_the_frame():
    """Thin green digits beside the box fell off the frame at its left and top edges
    ("0.29" read "29") and crossed the box line."""
    from types import SimpleNamespace

    from samn_tracker.visualize import draw_prediction

    image = np.full((120, 160, 3), 255, np.uint8)
    for box in ([-30.0, 0.0, 80.0, 60.0], [150.0, 100.0, 40.0, 40.0], [40.0, 50.0, 60.0, 40.0]):
        mask = np.zeros((120, 160), bool)
        mask[60:80, 50:90] = True
        drawn = draw_prediction(image, SimpleNamespace(mask=mask, box=np.array(box), polygon=np.zeros((4, 2)),
                                                       confidence=0.29))
        plate = np.all(drawn == 24, axis=2)  # the label's dark plate
        rows, cols = np.flatnonzero(plate.any(axis=1)), np.flatnonzero(plate.any(axis=0))
        assert 0 <= cols[0] and cols[-1] < 160 and 0 <= rows[0] and rows[-1] < 120
        assert cols[-1] - cols[0] + 1 > 60  # "conf 0.29" whole, not cut by an edge
        if box[1] >= 30:
            assert rows[-1] < box[1]  # above the box, off the target
    assert (drawn[65, 60] != 255).any() and (drawn[65, 60] > 100).all()  # the mask tinted, not painted over
