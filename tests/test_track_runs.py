"""`samn track` as a user runs it (a subprocess): a result folder is complete or visibly
not, bad input and Ctrl-C end in one line with the documented exit status, never a
traceback."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from samn_tracker.devices import cpu_threads

from conftest import SHORT_TUNING_ARGS, read_boxes

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
BLACKSWAN_BOX = "127,73,383,312"


# What the installed ``samn`` console script runs, a script that calls ``main``. Not ``-m``: a
# Ctrl-C that lands inside a string ``exec`` (a dataclass that a lazy import makes) leaves a flag
# in CPython that ends a ``-m`` run by SIGINT after it exited with 130 (``Py_RunMain`` checks it),
# where a script ends by ``Py_Exit`` and keeps its status: the rare -2 of the interrupt tests.
CONSOLE_SCRIPT = "import sys; from samn_tracker.cli import main; sys.exit(main())"


def samn_command(*args) -> list[str]:
    return [sys.executable, "-c", CONSOLE_SCRIPT, *map(str, args)]


def interruptible() -> None:
    """``preexec_fn`` of a child that a test interrupts: Ctrl-C as a terminal delivers it. A
    suite started in the background (``pytest &``) has SIGINT ignored, which a child inherits,
    and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def samn(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(samn_command(*args), capture_output=True, text=True, timeout=300,
                          env={**ENV, **(env or {})})


def one_line(stderr: str) -> str:
    """The single message line of ``stderr`` (progress bars are off)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def run_record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def partial(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


@pytest.fixture(scope="module")
def blackswan(davis_root) -> Path:
    return davis_root / "JPEGImages" / "480p" / "blackswan"


def test_complete_runs_replace_earlier_ones_only_when_asked(blackswan, tmp_path):
    out = tmp_path / "out"
    first = samn("track", blackswan, "--box", "-50,-40,200,150", "--out", out, "--max-frames", 2, "--no-video",
                 *SHORT_TUNING_ARGS)
    assert first.returncode == 0, first.stderr
    note = one_line(first.stderr)
    assert "samn track: note:" in note and "0,0,150,110" in note
    record = run_record(out)
    assert record["status"] == "complete" and record["frames"] == 2
    assert record["command"][:2] == ["samn", "track"] and "version" in record
    assert not partial(out).exists()

    again = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out, "--max-frames", 1, *SHORT_TUNING_ARGS)
    assert again.returncode == 2
    assert "--overwrite" in one_line(again.stderr)
    assert len(list((out / "masks").glob("*.png"))) == 2

    replaced = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out, "--max-frames", 1,
                    "--overwrite", "--no-video", *SHORT_TUNING_ARGS)
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png"]
    assert len((out / "boxes.txt").read_text().splitlines()) == 1
    assert run_record(out)["frames"] == 1
    assert "nan" not in replaced.stdout and "no fps" in replaced.stdout


def write_zero_mask(path: Path) -> Path:
    cv2.imwrite(str(path), np.zeros((480, 854), np.uint8))
    return path


@pytest.mark.parametrize("args, expected", [
    (["--box", "9000,9000,10,10"], "entirely outside"),
    (["--box", "100,100,0,50"], "no area"),
    (["--box", "100,100,-20,50"], "no area"),
    (["--box", "nan,100,20,50"], "NaN"),
    (["--box", "100,100,0.4,0.4"], "covers no pixel"),
    (["--box=-9.6,10,10,10"], "covers no pixel"),
    (["--box", BLACKSWAN_BOX, "--max-frames", "0"], "--max-frames must be at least 1"),
    (["--mask", "ZERO_MASK"], "empty"),
])
def test_bad_input_is_one_line_and_writes_nothing(blackswan, tmp_path, args, expected):
    args = [str(write_zero_mask(tmp_path / "zero.png")) if a == "ZERO_MASK" else a for a in args]
    out = tmp_path / "out"
    result = samn("track", blackswan, *args, "--out", out, *SHORT_TUNING_ARGS)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("samn track: error:") and expected in line
    assert not out.exists() and not partial(out).exists()


def test_a_broken_video_is_one_line_without_ffmpegs_own(blackswan, tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"not a video at all" * 100)
    result = samn("track", video, "--box", BLACKSWAN_BOX, "--out", tmp_path / "out", *SHORT_TUNING_ARGS)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "broken.mp4" in one_line(result.stderr), result.stderr


def test_lite_on_a_cpu_runs_on_one_thread_unless_told(blackswan, tmp_path):
    """Two OpenMP threads of this small network waited on each other whenever another
    program took a core: the README's first command ran at 1 fps instead of 30."""
    env = {key: value for key, value in ENV.items() if key != "OMP_NUM_THREADS"}
    common = ["track", blackswan, "--box", BLACKSWAN_BOX, "--max-frames", 2, "--no-video", *SHORT_TUNING_ARGS]
    runs = {name: subprocess.run(samn_command(*common, "--out", tmp_path / name, *extra), capture_output=True,
                                 text=True, timeout=300, env={**env, **more})
            for name, extra, more in [("default", [], {}), ("two", ["--threads", "2"], {}),
                                      ("omp", [], {"OMP_NUM_THREADS": "2"})]}
    for name, run in runs.items():
        assert run.returncode == 0, run.stderr
    assert runs["default"].stdout.rstrip().endswith(f"on cpu, 1 thread(s) -> {tmp_path / 'default'}")
    assert "on cpu, 2 thread(s)" in runs["two"].stdout and "on cpu, 2 thread(s)" in runs["omp"].stdout
    assert cpu_threads(None, "paper") is None and cpu_threads(3, "lite") == 3


def test_out_as_a_link_writes_into_the_folder_it_points_to(blackswan, tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "disk")
    result = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", tmp_path / "link", "--max-frames", 2,
                  "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link").is_symlink() and run_record(tmp_path / "disk")["status"] == "complete"
    assert sorted(os.listdir(tmp_path)) == ["disk", "link"]


def test_out_as_the_current_folder_is_that_folder(blackswan, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    result = subprocess.run(samn_command("track", blackswan, "--box", BLACKSWAN_BOX, "--out", ".",
                                         "--max-frames", 2, "--no-video", *SHORT_TUNING_ARGS),
                            capture_output=True, text=True, timeout=300, env=ENV, cwd=here)
    assert result.returncode == 0, result.stderr
    assert run_record(here)["status"] == "complete"
    assert len((here / "boxes.txt").read_text().splitlines()) == 2


def test_a_frame_of_another_size_stops_the_run_naming_it(blackswan, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(4):
        image = cv2.imread(str(blackswan / f"{index:05d}.jpg"))
        if index == 2:
            image = cv2.resize(image, (640, 360))
        cv2.imwrite(str(frames / f"{index:05d}.jpg"), image)
    out = tmp_path / "out"
    result = samn("track", frames, "--box", BLACKSWAN_BOX, "--out", out, "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "00002.jpg is 640x360" in line and "854x480" in line
    assert run_record(partial(out))["status"] == "failed" and not out.exists()


def test_hidden_files_are_not_frames_and_long_names_are_refused_before_work(blackswan, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        (frames / f"{index:05d}.jpg").write_bytes((blackswan / f"{index:05d}.jpg").read_bytes())
    (frames / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    out = tmp_path / "out"
    result = samn("track", frames, "--box", BLACKSWAN_BOX, "--out", out, "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 0, result.stderr
    assert run_record(out)["frames"] == 3
    long = tmp_path / ("o" * 250)
    result = samn("track", frames, "--box", BLACKSWAN_BOX, "--out", long, "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 2 and "too long" in one_line(result.stderr)
    assert not list(tmp_path.glob("ooo*"))


def test_a_truncated_jpeg_is_tracked_with_a_warning_naming_it(blackswan, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        data = (blackswan / f"{index:05d}.jpg").read_bytes()
        (frames / f"{index:05d}.jpg").write_bytes(data[: len(data) // 2] if index == 1 else data)
    out = tmp_path / "out"
    result = samn("track", frames, "--box", BLACKSWAN_BOX, "--out", out, "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 0, result.stderr
    assert "00001.jpg ends before its JPEG end marker" in result.stderr
    assert "00000.jpg ends" not in result.stderr and "00002.jpg ends" not in result.stderr
    assert run_record(out)["frames"] == 3


def unwritable_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    if not os.access(folder, os.W_OK):
        return folder / "out"
    if Path("/sys").is_dir():  # root may write anywhere but in /sys
        return Path("/sys/samn-track-test/out")
    pytest.skip("no folder this process cannot write to")


def test_an_unusable_out_is_one_line(blackswan, tmp_path):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    for out, expected in [(file, "is a file"), (unwritable_folder(tmp_path), "cannot write to")]:
        result = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out, *SHORT_TUNING_ARGS)
        assert result.returncode == 2
        assert expected in one_line(result.stderr)
    assert file.read_text() == "keep me"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline(cache: Path, proxy_port: int) -> dict:
    """No network: every HTTPS request goes to a local port (refused, or never answered)."""
    proxy = f"http://127.0.0.1:{proxy_port}"
    return {"SAMN_CACHE": str(cache), "https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "",
            "NO_PROXY": ""}


def test_paper_preset_offline_says_where_to_put_the_weights(blackswan, tmp_path):
    out = tmp_path / "out"
    result = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out, "--preset", "paper",
                  env=offline(tmp_path / "cache", closed_port()))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "resnet50-19c8e357.pth" in line and str(tmp_path / "cache") in line
    assert not out.exists() and not partial(out).exists()


def test_weights_of_another_network_are_one_line(blackswan, tmp_path):
    """A checkpoint whose weights are not this network's (other names, or the decoder's first
    convolution of another size) is the user's file: one line naming it, exit 2."""
    import torch
    from samn_tracker.weights import builtin_checkpoint, load_checkpoint, save_checkpoint

    state = load_checkpoint(builtin_checkpoint("lite", "query"))["state_dict"]
    resized = dict(state, **{"decoder.conv_in.weight": torch.zeros(8, 256, 3, 3)})
    for name, weights in (("unrelated.pth", {"layer.weight": torch.ones(3)}), ("resized.pth", resized)):
        save_checkpoint(tmp_path / name, weights)
        out = tmp_path / name.replace(".pth", "")
        result = samn("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out, "--weights",
                      tmp_path / name, "--max-frames", "2")
        assert result.returncode == 2, result.stderr
        line = one_line(result.stderr)
        assert name in line and "does not match the network" in line
        assert not out.exists() and not partial(out).exists()
    assert "decoder.conv_in.weight is (8, 256, 3, 3), the network's (32, 256, 3, 3)" in line


def frames_with_corrupt_frame(davis_root: Path, folder: Path, good: int) -> Path:
    folder.mkdir()
    source = davis_root / "JPEGImages" / "480p" / "car-shadow"
    for i in range(good):
        (folder / f"{i:05d}.jpg").symlink_to(source / f"{i:05d}.jpg")
    (folder / f"{good:05d}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def test_a_failure_midway_leaves_a_partial_folder_marked_failed(davis_root, tmp_path):
    frames = frames_with_corrupt_frame(davis_root, tmp_path / "frames", good=2)
    box = ",".join(str(v) for v in read_boxes(davis_root, "car-shadow")[0])
    out = tmp_path / "out"
    result = samn("track", frames, "--box", box, "--out", out, "--no-video", *SHORT_TUNING_ARGS)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "00002.jpg" in line and str(partial(out)) in line
    assert not out.exists()
    record = run_record(partial(out))
    assert record["status"] == "failed" and record["frames"] == 2 and "00002.jpg" in record["error"]
    assert len(list((partial(out) / "masks").glob("*.png"))) == 2


def wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_during_tracking_keeps_a_marked_partial_folder(blackswan, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen(samn_command("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out,
                                            "--no-video", *SHORT_TUNING_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                               preexec_fn=interruptible)
    wait_for(lambda: len(list((partial(out) / "masks").glob("*.png"))) >= 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    line = one_line(stderr)
    assert line.startswith("samn track: interrupted after ") and str(partial(out)) in line
    assert not out.exists()
    record = run_record(partial(out))
    frames = record["frames"]
    assert record["status"] == "interrupted" and f"after {frames} frames" in line
    assert len(list((partial(out) / "masks").glob("*.png"))) == frames
    assert len((partial(out) / "boxes.txt").read_text().splitlines()) == frames


def test_ctrl_c_while_the_model_loads_is_one_line(blackswan, tmp_path):
    """The paper preset fetches its backbone weights while it loads; a proxy that never
    answers holds it there until the interrupt."""
    out = tmp_path / "out"
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        proxy.settimeout(120)
        env = {**ENV, **offline(tmp_path / "cache", proxy.getsockname()[1])}
        process = subprocess.Popen(samn_command("track", blackswan, "--box", BLACKSWAN_BOX, "--out", out,
                                                "--preset", "paper"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                   preexec_fn=interruptible)
        connection, _ = proxy.accept()
        with connection:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert one_line(stderr) == "samn track: interrupted before tracking started; nothing was written"
    assert not out.exists() and not partial(out).exists()


def test_frames_too_large_for_the_overlay_encoder_are_refused_before_tracking(tmp_path):
    """mp4v stops short of 8192 pixels a side: the run failed after its first frame, at the
    overlay, with OpenCV's error lines and no word of --no-video."""
    frames = tmp_path / "panorama"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.full((64, 9000, 3), 60 * i, np.uint8))
    result = samn("track", frames, "--box", "100,10,40,40", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert one_line(result.stderr) == ("samn track: error: the overlay's video encoder (mp4v) cannot take 9000x64 "
                                       "frames; add --no-video")
    assert not partial(tmp_path / "out").exists() and not (tmp_path / "out").exists()


def test_an_opencv_without_the_encoder_is_told_so_not_that_the_frames_are_too_large(monkeypatch):
    from samn_tracker import visualize
    from samn_tracker.errors import InputError

    monkeypatch.setattr(visualize, "_encoder_opens", lambda size: False)
    with pytest.raises(InputError, match=r"^this OpenCV cannot write mp4v video \(built without its FFmpeg "
                                         r"backend\?\); add --no-video$"):
        visualize.check_overlay_size((480, 854))


def test_the_last_line_names_the_overlay_only_when_one_was_drawn():
    from samn_tracker.cli import finished_text

    assert finished_text(10, None, 1.0, 0.3, 2.0, video=True) == (
        "10 frames, 30.0 fps (initialisation 1.0 s; 2.0 s in all with loading the model, reading, writing and "
        "the overlay)")
    assert finished_text(10, 4, 0.0, 0.2, 1.0, video=False) == (
        "10 frames (4 from the snapshot, 6 tracked now at 30.0 fps; 1.0 s in all with loading the model, reading "
        "and writing)")
