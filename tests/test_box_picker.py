"""`samn track --select`: the box drawn with the mouse, driven here by the mouse and key
events a window would send (on matplotlib's Agg canvas: CI has no display), and the
command's answers where no window can open."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import matplotlib
import matplotlib.pyplot as plt
from matplotlib.backend_bases import CloseEvent, KeyEvent, MouseEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from samn_tracker import box_picker
from samn_tracker.box_picker import BoxPicker, pick_box
from samn_tracker.errors import InputError
from samn_tracker.cli import main, numbers
from samn_tracker.datasets import read_image

from conftest import SHORT_TUNING_ARGS, read_boxes


@pytest.fixture
def frame(davis_root):
    return read_image(davis_root / "JPEGImages" / "480p" / "car-shadow" / "00000.jpg")


def picker_on(image: np.ndarray) -> BoxPicker:
    figure = Figure(figsize=(8.54, 5.4), dpi=100)
    FigureCanvasAgg(figure)
    picker = BoxPicker(figure, image, "car-shadow")
    figure.canvas.draw()
    return picker


def drag(figure, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press, move and release the left button between two points in image coordinates."""
    canvas, ax = figure.canvas, figure.axes[0]
    for name, (x, y) in (("button_press_event", start), ("motion_notify_event", end),
                         ("button_release_event", end)):
        px, py = ax.transData.transform((x, y))
        canvas.callbacks.process(name, MouseEvent(name, canvas, px, py, button=1))


def press(figure, key: str) -> None:
    canvas = figure.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, key, 10, 10))


def close(figure) -> None:
    """What a window's close button sends."""
    figure.canvas.callbacks.process("close_event", CloseEvent("close_event", figure.canvas))


def test_a_dragged_box_is_the_pixels_it_covers_and_enter_takes_it(frame):
    picker = picker_on(frame)
    assert picker.box is None
    press(picker.figure, "enter")  # nothing drawn yet: Enter does not end the choice
    assert not picker.accepted and not picker.cancelled
    # pixel i spans [i - 0.5, i + 0.5] on the axes: a drag from pixel 300's left edge to
    # pixel 499's right edge covers pixels 300..499, 200 of them
    drag(picker.figure, (299.5, 159.5), (499.5, 279.5))
    np.testing.assert_allclose(picker.box, [300, 160, 200, 120], atol=0.01)
    press(picker.figure, "enter")
    assert picker.accepted and not picker.cancelled


def test_a_box_reaching_past_the_frame_is_clipped_to_it(frame):
    picker = picker_on(frame)
    picker.selector.extents = (-40.0, 99.5, 400.0, 600.0)  # x0, x1, y0, y1 beyond the left and bottom
    np.testing.assert_allclose(picker.box, [0, 400.5, 100, 79.5])


def test_escape_gives_up_whatever_was_drawn(frame):
    picker = picker_on(frame)
    drag(picker.figure, (100, 100), (200, 200))
    press(picker.figure, "escape")
    assert picker.cancelled and not picker.accepted


def test_pick_box_shows_the_frame_and_returns_the_box_drawn_when_the_window_closes(frame, monkeypatch):
    """``plt.show`` stands in for the user: it draws in the window pick_box opened, then
    presses Enter, or closes the window with or without a box."""
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "TkAgg")
    users = {
        "enter": lambda figure: (drag(figure, (299.5, 159.5), (499.5, 279.5)), press(figure, "enter")),
        "closed": lambda figure: (drag(figure, (299.5, 159.5), (499.5, 279.5)), close(figure)),
    }
    for name, user in users.items():
        monkeypatch.setattr(plt, "show", lambda block: user(plt.gcf()))
        np.testing.assert_allclose(pick_box(frame, "car-shadow"), [300, 160, 200, 120], atol=0.01, err_msg=name)
        plt.close("all")
    for user in (lambda figure: close(figure), lambda figure: (drag(figure, (1, 1), (90, 90)), press(figure, "escape"))):
        monkeypatch.setattr(plt, "show", lambda block: user(plt.gcf()))
        with pytest.raises(InputError, match="no box was chosen"):
            pick_box(frame, "car-shadow")
        plt.close("all")


def test_without_a_window_select_is_one_line_naming_box(davis_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    seq = davis_root / "JPEGImages" / "480p" / "car-shadow"
    assert main(["track", str(seq), "--select", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--box x,y,w,h" in err and "'agg'" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    with pytest.raises(SystemExit) as exited:
        main(["track", str(seq), "--select", "--box", "1,2,3,4", "--out", str(tmp_path / "out")])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main(["track", str(seq), "--select", "--resume", "--out", str(tmp_path / "out")]) == 2
    assert "--resume continues from the box the run started with" in capsys.readouterr().err


def test_a_selected_box_is_tracked_recorded_and_printed_as_the_box_that_repeats_it(
        davis_root, tmp_path, capsys, monkeypatch):
    """The window replaced by the box a user would draw: the run is the one ``--box`` makes."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        shutil.copy(davis_root / "JPEGImages" / "480p" / "car-shadow" / f"{i:05d}.jpg", frames)
    box = read_boxes(davis_root, "car-shadow")[0]
    shown = []
    monkeypatch.setattr(box_picker, "pick_box", lambda image, title: shown.append(image.shape) or np.array(box))
    selected, given = tmp_path / "selected", tmp_path / "given"
    args = ["--device", "cpu", "--no-video", "--no-progress", *SHORT_TUNING_ARGS]
    assert main(["track", str(frames), "--select", "--out", str(selected), *args]) == 0
    text = numbers(box)
    assert shown == [(480, 854, 3)] and f"--select chose --box {text}" in capsys.readouterr().err
    assert json.loads((selected / "run.json").read_text())["settings"]["region"]["box"] == [float(v) for v in box]
    assert main(["track", str(frames), "--box", text, "--out", str(given), *args]) == 0
    assert (selected / "boxes.txt").read_text() == (given / "boxes.txt").read_text()


def test_doctor_says_whether_select_can_open_a_window(monkeypatch):
    from samn_tracker.doctor import check_window

    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    found = check_window()
    assert found.status == "warn" and "--select cannot draw" in found.message and "tkinter" in found.fix
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "TkAgg")
    found = check_window()
    assert found.status == "ok" and "TkAgg windows" in found.message
