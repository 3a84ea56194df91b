"""``samn track --resume``: a run stopped by Ctrl-C, SIGTERM, a frame that fails to read or a
kill continues from its snapshot, and its results are those of a run never stopped."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

from samn_tracker.run_folder import RunFolder

from conftest import SHORT_TUNING_ARGS, read_boxes
from test_track_runs import ENV, interruptible, one_line, partial, run_record, samn, samn_command, wait_for

FRAMES = 24


def frames_folder(davis_root: Path, folder: Path, corrupt: int | None = None) -> Path:
    """The first FRAMES frames of car-shadow, frame ``corrupt`` unreadable."""
    folder.mkdir(exist_ok=True)
    source = davis_root / "JPEGImages" / "480p" / "car-shadow"
    for i in range(FRAMES):
        path = folder / f"{i:05d}.jpg"
        path.unlink(missing_ok=True)
        if i == corrupt:
            path.write_bytes(b"\xff\xd8 not a jpeg")
        else:
            path.symlink_to(source / f"{i:05d}.jpg")
    return folder


def track(frames: Path, out: Path, box: str, *extra) -> subprocess.CompletedProcess:
    return samn("track", frames, "--box", box, "--out", out, *extra, *SHORT_TUNING_ARGS)


def first_box(davis_root: Path) -> str:
    return ",".join(str(v) for v in read_boxes(davis_root, "car-shadow")[0])


def assert_same_results(resumed: Path, whole: Path) -> None:
    for name in ("boxes.txt", "polygons.txt", "confidence.txt"):
        assert (resumed / name).read_text() == (whole / name).read_text(), name
    masks = sorted(p.name for p in (whole / "masks").iterdir())
    assert sorted(p.name for p in (resumed / "masks").iterdir()) == masks
    for name in masks:
        assert (resumed / "masks" / name).read_bytes() == (whole / "masks" / name).read_bytes(), name
    assert not (resumed / "resume.pt").exists() and run_record(resumed)["status"] == "complete"


def video_frames(path: Path) -> int:
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.grab():
        count += 1
    return count


@pytest.fixture(scope="module")
def whole(davis_root, tmp_path_factory) -> Path:
    """The run never stopped."""
    tmp = tmp_path_factory.mktemp("whole")
    out = tmp / "out"
    result = track(frames_folder(davis_root, tmp / "frames"), out, first_box(davis_root))
    assert result.returncode == 0, result.stderr
    assert not (out / "resume.pt").exists()  # a complete run keeps no snapshot
    return out


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_run_resumes_to_the_results_of_a_run_never_stopped(davis_root, tmp_path, whole, stop):
    frames, out, box = frames_folder(davis_root, tmp_path / "frames"), tmp_path / "out", first_box(davis_root)
    process = subprocess.Popen(samn_command("track", frames, "--box", box, "--out", out, *SHORT_TUNING_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                               preexec_fn=interruptible)
    wait_for(lambda: len(list((partial(out) / "masks").glob("*.png"))) >= 3)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + stop, stderr  # 130 for Ctrl-C, 143 for SIGTERM
    line = one_line(stderr)
    stopped = run_record(partial(out))["frames"]
    assert line.startswith(f"samn track: {'interrupted' if stop == signal.SIGINT else 'terminated'} after ")
    assert line.endswith("(run.json: interrupted; the same command with --resume continues it)")
    assert 3 <= stopped < FRAMES and (partial(out) / "resume.pt").is_file()
    result = track(frames, out, box, "--resume")
    assert result.returncode == 0, result.stderr
    assert f"{FRAMES} frames ({stopped} from the snapshot, {FRAMES - stopped} tracked now at" in result.stdout
    assert_same_results(out, whole)
    assert video_frames(out / "overlay.mp4") == video_frames(whole / "overlay.mp4") == FRAMES


def test_a_failed_read_resumes_once_mended_and_a_killed_run_is_cut_back_to_its_snapshot(davis_root, tmp_path, whole):
    box, out = first_box(davis_root), tmp_path / "out"
    frames = frames_folder(davis_root, tmp_path / "frames", corrupt=9)
    failed = track(frames, out, box, "--no-video")
    assert failed.returncode == 2 and "00009.jpg" in one_line(failed.stderr)
    assert "--resume continues it" in failed.stderr and run_record(partial(out))["frames"] == 9
    # As a run killed after writing two more frames than its snapshot holds leaves it:
    folder = partial(out)
    for name in ("boxes.txt", "polygons.txt", "confidence.txt"):
        with open(folder / name, "a") as f:
            f.write("1,2,3,4\n9,9,9,9\n")
    (folder / "masks" / "00009.png").write_bytes((folder / "masks" / "00000.png").read_bytes())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = run_record(folder)
    (folder / "run.json").write_text(json.dumps(dict(record, status="running", pid=int(dead.stdout))))
    (folder / "overlay.mp4").write_bytes(b"an overlay of the frames before")
    frames_folder(davis_root, frames)  # frame 9 mended
    result = track(frames, out, box, "--no-video", "--resume")
    assert result.returncode == 0, result.stderr
    assert_same_results(out, whole)
    assert not (out / "overlay.mp4").exists()  # resumed without video: no overlay of part of the frames


def test_a_mask_start_resumes_and_another_thread_count_is_refused(davis_root, tmp_path, capsys):
    """A mask start's record holds the mask's sha256 beside its path, which the resume took for
    a box's numbers, refusing every mask start. Another thread count rounds otherwise, and the
    first-frame tuning carries that into the masks: resuming with one is refused. In this
    process, as four commands' starts would take seconds."""
    from samn_tracker import cli

    mask = davis_root / "Annotations" / "480p" / "car-shadow" / "00000.png"

    def track_mask(frames: Path, out: Path, *extra) -> int:
        return cli.main(["track", str(frames), "--mask", str(mask), "--out", str(out), "--no-video", "--no-progress",
                         *extra, *SHORT_TUNING_ARGS])

    assert track_mask(frames_folder(davis_root, tmp_path / "whole_frames"), tmp_path / "whole") == 0
    frames, out = frames_folder(davis_root, tmp_path / "frames", corrupt=6), tmp_path / "out"
    assert track_mask(frames, out) == 2
    frames_folder(davis_root, frames)  # frame 6 mended
    capsys.readouterr()
    assert track_mask(frames, out, "--resume", "--threads", "2") == 2
    assert "threads: 2 now, 1 before (--threads 1 repeats it)" in one_line(capsys.readouterr().err)
    assert track_mask(frames, out, "--resume") == 0
    assert f"{FRAMES} frames (6 from the snapshot" in capsys.readouterr().out
    assert_same_results(out, tmp_path / "whole")
    assert run_record(out)["settings"]["threads"] == 1


def test_a_snapshot_that_cannot_be_written_fails_the_run_in_one_line(davis_root, tmp_path, monkeypatch, capsys):
    """torch.save reports a full disk as a RuntimeError ("unexpected pos"): it left a
    traceback and run.json at "running", 0 frames."""
    from samn_tracker import cli, track_resume

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(track_resume.torch, "save", full_disk)
    frames, out = frames_folder(davis_root, tmp_path / "frames", corrupt=6), tmp_path / "out"
    code = cli.main(["track", str(frames), "--box", first_box(davis_root), "--out", str(out), "--no-video",
                     "--no-progress", *SHORT_TUNING_ARGS])
    assert code != 0
    line = one_line(capsys.readouterr().err)
    assert line.startswith("samn track: ") and "cannot write the resume snapshot" in line and "disk full" in line
    assert run_record(partial(out))["status"] == "failed" and run_record(partial(out))["frames"] == 6


def test_a_resume_that_cannot_continue_says_why_in_one_line(davis_root, tmp_path):
    box, out = first_box(davis_root), tmp_path / "out"
    frames = frames_folder(davis_root, tmp_path / "frames", corrupt=4)
    nothing = track(frames, out, box, "--resume", "--no-video")
    assert nothing.returncode == 2
    assert one_line(nothing.stderr) == (f"samn track: error: --resume: no unfinished run to continue "
                                        f"({partial(out)} does not exist); run without --resume")
    assert track(frames, out, box, "--no-video").returncode == 2  # fails at frame 4: a snapshot of 4 frames
    frames_folder(davis_root, frames)
    other = track(frames, out, "100,100,50,50", "--resume", "--no-video", "--set", "mask_threshold=0.4")
    assert other.returncode == 2
    line = one_line(other.stderr)
    assert line.startswith(f"samn track: error: --resume: {partial(out)} was made by another tracking (")
    assert "--set mask_threshold: 0.4 now, 0.5 (the preset's) before" in line
    assert "region: {'box': [100.0, 100.0, 50.0, 50.0], 'polygon': None} now" in line
    respaced = ", ".join(f"{float(v):g}" for v in box.split(","))  # the same box written otherwise: not another tracking
    assert respaced != box
    short = track(frames, out, respaced, "--resume", "--no-video", "--max-frames", "3")
    assert "the snapshot is after frame 4, and this run tracks 3 frames" in one_line(short.stderr)
    record = run_record(partial(out))  # a run made before the box was recorded by value kept its text
    record["settings"]["region"]["box"] = respaced
    (partial(out) / "run.json").write_text(json.dumps(record))
    short = track(frames, out, box, "--resume", "--no-video", "--max-frames", "3")
    assert "the snapshot is after frame 4, and this run tracks 3 frames" in one_line(short.stderr)
    record = run_record(partial(out))
    (partial(out) / "run.json").write_text(json.dumps(dict(record, status="running", pid=os.getpid())))
    running = track(frames, out, box, "--resume", "--no-video")
    assert one_line(running.stderr) == (f"samn track: error: --resume: the run in {partial(out)} is still "
                                        f"running (process {os.getpid()}); wait for it or stop it, or give "
                                        "another --out")
    (partial(out) / "run.json").write_text(json.dumps(record))
    (partial(out) / "resume.pt").unlink()
    gone = track(frames, out, box, "--resume", "--no-video")
    assert one_line(gone.stderr) == (f"samn track: error: --resume: {partial(out)} holds no snapshot (one is "
                                     "written every 30 s and at Ctrl-C); run without --resume")
    (partial(out) / "resume.pt").write_bytes(b"garbage")
    torn = track(frames, out, box, "--resume", "--no-video")
    assert one_line(torn.stderr).startswith(f"samn track: error: --resume: {partial(out)}/resume.pt is damaged, "
                                            "not a snapshot (")
    assert torn.stderr.rstrip().endswith("); run without --resume")
    torch.save({"something": "else"}, partial(out) / "resume.pt")
    foreign = track(frames, out, box, "--resume", "--no-video")
    assert "resume.pt is damaged, not a snapshot (KeyError: 'frames'); run without" in one_line(foreign.stderr)
    older = {key: value for key, value in record.items() if key not in ("settings", "pid")}
    (partial(out) / "run.json").write_text(json.dumps(older))  # as samn track wrote it before --resume
    for extra in ([], ["--set", "mask_threshold=0.4"]):
        before = track(frames, out, box, "--resume", "--no-video", *extra)
        assert one_line(before.stderr) == (f"samn track: error: --resume: {partial(out)}/run.json records no "
                                           "settings (a run made before --resume existed, which kept no "
                                           "snapshot); run without --resume")


def test_a_new_run_keeps_an_unfinished_one_that_resume_continues_unless_told_to_replace_it(
        davis_root, tmp_path, whole):
    """A second command without --resume deleted OUT.partial: the snapshot of a stopped run,
    and even the files of a run still writing there."""
    box, out = first_box(davis_root), tmp_path / "out"
    frames = frames_folder(davis_root, tmp_path / "frames", corrupt=4)
    assert track(frames, out, box, "--no-video").returncode == 2  # fails at frame 4: a snapshot of 4 frames
    frames_folder(davis_root, frames)
    kept = track(frames, out, box)
    assert kept.returncode == 2
    assert one_line(kept.stderr) == (f"samn track: error: --out {out}: {partial(out)} holds an unfinished run "
                                     "(4 frames, failed) that the same command with --resume continues; add "
                                     "--resume, or --overwrite to start again from frame 0")
    assert (partial(out) / "resume.pt").is_file() and run_record(partial(out))["frames"] == 4
    record = run_record(partial(out))
    (partial(out) / "run.json").write_text(json.dumps(dict(record, status="running", pid=os.getpid())))
    for extra in ([], ["--overwrite"]):
        running = track(frames, out, box, *extra)
        assert one_line(running.stderr) == (f"samn track: error: --out {out}: the run in {partial(out)} is still "
                                            f"running (process {os.getpid()}); wait for it or stop it, or give "
                                            "another --out")
    (partial(out) / "run.json").write_text(json.dumps(record))
    again = track(frames, out, box, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert f"{FRAMES} frames, " in again.stdout and "snapshot" not in again.stdout
    assert_same_results(out, whole)


# `samn track` with a snapshot after every frame, ended by SIGKILL just after the one of frame 3
# had its run.json written: as `kill -9` leaves a run, at a frame the test knows.
KILLED_AFTER_A_SNAPSHOT = """
import os, signal, sys
from samn_tracker import track_resume
from samn_tracker.cli import main
from samn_tracker.run_folder import RunFolder

track_resume.SNAPSHOT_SECONDS = 0
write_status = RunFolder.write_status

def write_then_die(self, status, error=None):
    write_status(self, status, error)
    if self.frames == 3:
        os.kill(os.getpid(), signal.SIGKILL)

RunFolder.write_status = write_then_die
sys.exit(main())
"""


def test_a_killed_run_is_told_as_killed_with_the_frames_of_its_snapshot(davis_root, tmp_path):
    """run.json was written only at a run's start and end: a run killed after 551 frames of
    snapshots was refused as "(0 frames, running)"."""
    frames, out, box = frames_folder(davis_root, tmp_path / "frames"), tmp_path / "out", first_box(davis_root)
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_A_SNAPSHOT, "track", frames, "--box", box,
                             "--out", out, "--no-video", *SHORT_TUNING_ARGS],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert torch.load(partial(out) / "resume.pt", weights_only=False)["frames"] == 3
    assert run_record(partial(out))["frames"] == 3
    again = track(frames, out, box, "--no-video")
    assert again.returncode == 2
    assert one_line(again.stderr) == (f"samn track: error: --out {out}: {partial(out)} holds an unfinished run "
                                      "(3 frames, killed before it finished) that the same command with --resume "
                                      "continues; add --resume, or --overwrite to start again from frame 0")


def test_a_run_stopped_while_it_starts_has_nothing_to_resume_and_says_so(davis_root, tmp_path):
    """A Ctrl-C during the initialisation (a mask start tunes for many seconds on a CPU)
    left no snapshot, and --resume answered that one is written at Ctrl-C."""
    frames, out, box = frames_folder(davis_root, tmp_path / "frames"), tmp_path / "out", first_box(davis_root)
    process = subprocess.Popen(samn_command("track", frames, "--box", box, "--out", out, *SHORT_TUNING_ARGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                               preexec_fn=interruptible)
    wait_for(lambda: (partial(out) / "run.json").is_file())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and run_record(partial(out))["frames"] == 0, stderr
    result = track(frames, out, box, "--resume")
    assert one_line(result.stderr) == (f"samn track: error: --resume: the run in {partial(out)} stopped before "
                                       "its first frame was written; run without --resume")


def test_a_run_stopped_after_its_last_frame_resumes_to_complete_results(davis_root, tmp_path, whole):
    box, out = first_box(davis_root), tmp_path / "out"
    frames = frames_folder(davis_root, tmp_path / "frames", corrupt=4)
    assert track(frames, out, box, "--max-frames", "5").returncode == 2  # a snapshot of 4 frames
    frames_folder(davis_root, frames)
    result = track(frames, out, box, "--max-frames", "4", "--resume")
    assert result.returncode == 0, result.stderr
    assert "4 frames, all from the snapshot" in result.stdout
    for name in ("boxes.txt", "polygons.txt", "confidence.txt"):
        assert (out / name).read_text().splitlines() == (whole / name).read_text().splitlines()[:4], name
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{i:05d}.png" for i in range(4)]
    assert not (out / "resume.pt").exists() and video_frames(out / "overlay.mp4") == 4


def test_resume_check_takes_relative_paths_from_where_it_is_called(davis_root, tmp_path):
    """tools/resume_check.sh read them from the repository root, where it moves to (and
    removed a folder of that name there)."""
    (tmp_path / "davis").symlink_to(davis_root)
    script = Path(__file__).resolve().parents[1] / "tools" / "resume_check.sh"
    result = subprocess.run(["bash", str(script), "davis", "work", "nodevice"], cwd=tmp_path,
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 1 and result.stdout == (
        "the whole run failed: samn track: error: device 'nodevice' is not a device name "
        "(auto, cpu, cuda, cuda:N)\n"), result.stdout + result.stderr
    assert (tmp_path / "work" / "log.txt").is_file()


def test_a_write_that_fails_names_the_folder_and_a_record_it_cannot_update(tmp_path, monkeypatch):
    """A full disk: the write's own error names no file, and recording "failed" in run.json
    failed too and replaced it with a second bare error."""
    import errno

    from samn_tracker import atomic

    full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as caught:
        with RunFolder(tmp_path / "out", ["samn", "track"]) as run:
            with run.frame():
                pass
            raise full
    assert str(caught.value) == (f"[Errno 28] No space left on device (1 frames written to {partial(tmp_path / 'out')}, "
                                 "run.json: failed)")
    assert run_record(partial(tmp_path / "out"))["status"] == "failed"

    with pytest.raises(OSError) as caught:
        with RunFolder(tmp_path / "again", ["samn", "track"]):
            monkeypatch.setattr(atomic, "write_text", lambda path, text: (_ for _ in ()).throw(full))
            raise full
    assert str(caught.value).endswith("0 frames written to " + str(partial(tmp_path / "again"))
                                      + ", run.json not updated: No space left on device)")


def test_mask_names_sort_as_the_frames_do_past_five_digits():
    """100000.png sorted before 10001.png: an hour of 30 fps video has more frames than five
    digits name."""
    from samn_tracker.track_resume import mask_name

    assert mask_name(7, 50) == "00007.png" and mask_name(99999, 100000) == "99999.png"
    names = [mask_name(i, 100002) for i in (9999, 10001, 100000, 100001)]
    assert names == sorted(names) == ["009999.png", "010001.png", "100000.png", "100001.png"]
