"""Every command ends the same way (one line, exit 2 / 130, no traceback), each command's
help stands on its own, and ``samn doctor`` reports the OpenCV package clash with its fix."""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import samn_tracker
from samn_tracker import cli, doctor
from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import DownloadError, InputError
from samn_tracker.exits import Terminated, guarded
from samn_tracker.model.network import slow_cpu_precisions
from samn_tracker.opencv_contrib import CONTRIB_FIX

from test_track_runs import ENV, interruptible, one_line, samn, samn_command


def raising(error: BaseException):
    @guarded("samn test", on_interrupt="(run it again)")
    def main() -> int:
        raise error
    return main


def test_one_wrapper_turns_errors_into_one_line_and_a_status(capsys):
    cases = [(InputError("bad box"), 2, "samn test: error: bad box"),
             (DownloadError("put it at X"), 2, "samn test: error: put it at X"),
             (PermissionError(13, "Permission denied", "/x"), 1, "samn test: error: [Errno 13] Permission denied: '/x'"),
             (KeyboardInterrupt(), 130, "samn test: interrupted (run it again)"),
             (KeyboardInterrupt("after 3 frames"), 130, "samn test: interrupted after 3 frames"),
             (Terminated("after 3 frames"), 143, "samn test: terminated after 3 frames")]
    for error, status, line in cases:
        assert raising(error)() == status
        assert capsys.readouterr().err == line + "\n"


def test_a_warning_in_a_command_is_one_line_naming_it(capsys):
    @guarded("samn test")
    def main() -> int:
        warnings.warn("a thing\n  to note", stacklevel=2)
        return 0

    shown = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main() == 0
    assert capsys.readouterr().err == "samn test: warning: a thing to note\n"
    assert warnings.showwarning is shown


def test_a_truncated_frame_is_one_warning_line_of_samn_track(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((64, 64, 3), 40 * i, np.uint8))
    whole = (frames / "00001.jpg").read_bytes()
    (frames / "00001.jpg").write_bytes(whole[:-2])
    result = samn("track", frames, "--box", "10,10,20,20", "--out", tmp_path / "out", "--no-video")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()  # libjpeg printed "Premature end of JPEG file" before it
    assert len(lines) == 1 and lines[0].startswith(f"samn track: warning: {frames / '00001.jpg'} ends before")


def test_top_level_help_has_examples_and_no_docs_links():
    text = cli.build_parser().format_help()
    assert "examples:" in text and "docs/" not in text
    for name in ("track", "eval", "report", "bench", "train", "distill", "doctor"):
        assert name in text


def test_the_command_line_loads_torch_only_for_commands_that_track():
    """Importing torch took 2.3 of the 2.5 s of `samn --help`; report, vot and doctor's
    startup need not pay it."""
    code = ("import sys, samn_tracker.cli as cli, samn_tracker.reports.cli, samn_tracker.vot.cli; "
            "cli.build_parser(); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_version_names_the_package(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"samn_tracker {samn_tracker.__version__}"


def track_parser() -> CommandParser:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["track"]


def test_track_help_describes_every_option_with_its_default():
    parser = track_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings or action.dest} has no description"
    text = parser.format_help()
    assert "(default: lite)" in text and "(default: auto)" in text
    assert "examples:" in text and "docs/" not in text


def test_every_default_is_shown_once_with_or_without_help():
    from samn_tracker.evaluation import davis, got10k

    text = " ".join(davis.build_parser().format_help().split())
    for shown in ("--year {2016,2017} (default: 2017)", "480p (default) or Full-Resolution --out",
                  "--seed SEED (default: 0)", "--out OUT default: results/davis --score-only"):
        assert shown in text
    assert "(default: lite) (default" not in text
    assert "(default: val)" in " ".join(got10k.build_parser().format_help().split())


def test_negative_box_values_reach_the_box_option():
    assert cli.attach_negative_values(["track", "v.mp4", "--box", "-50,-40,200,150", "--out", "o"]) == \
        ["track", "v.mp4", "--box=-50,-40,200,150", "--out", "o"]
    args = track_parser().parse_args(cli.attach_negative_values(["v.mp4", "--polygon", "-.5,1,2,3,4,5",
                                                                 "--out", "o"]))
    assert args.polygon == "-.5,1,2,3,4,5"


def test_an_unknown_track_option_is_told_by_samn_track(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["track", "v.mp4", "--box", "1,1,50,50", "--out", "o", "--bogus"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err == "samn track: error: unrecognized arguments: --bogus\n"


@pytest.mark.parametrize("argv, line", [
    (["eval", "davis", "--root", "r", "--batch", "0"], "samn eval davis: error: argument --batch: must be at least 1, got 0"),
    (["eval", "keys", "--root", "r", "--stride", "0"], "samn eval keys: error: argument --stride: must be at least 1, got 0"),
    (["track", "v.mp4", "--out", "o", "--max-frames", "x"], "samn track: error: argument --max-frames: invalid int value: 'x'"),
    (["train", "--config"], "samn train: error: argument --config: expected one argument"),
])
def test_a_bad_option_value_is_one_line_in_every_command(argv, line, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err == line + "\n"


COMMANDS = [["track"], ["eval", "davis"], ["eval", "got10k"], ["eval", "trackingnet"], ["eval", "keys"],
            ["report"], ["report", "vot"], ["report", "bench"], ["vot", "workspace"], ["vot", "local-stack"],
            ["bench"], ["train"], ["distill"], ["doctor"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unknown_option_is_one_line_in_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([*command, "--no-such-option"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"samn {' '.join(command)}: error: ") and err.count("\n") == 1, err


HELPED = [*COMMANDS, ["eval", "lasot"], ["eval", "otb"], ["vot"]]


@pytest.mark.parametrize("command", HELPED, ids=" ".join)
def test_every_commands_help_has_examples_whose_options_it_has(command, capsys):
    try:
        code = cli.main([*command, "--help"])
    except SystemExit as exit:  # argparse's help exits; `samn vot` prints its own
        code = exit.code
    assert code == 0
    text = capsys.readouterr().out
    usage, examples = text.split("examples:\n")
    prefix = f"samn {' '.join(command)} "
    longer = [f"samn {' '.join(other)} " for other in HELPED if len(other) > len(command)]
    lines = [line.strip() + " " for line in examples.splitlines()]
    own = [line for line in lines if line.startswith(prefix) and not any(line.startswith(o) for o in longer)]
    assert own or command == ["vot"], f"no example of {prefix.strip()}"
    for line in own:
        for option in re.findall(r"(?<!\S)--[a-z][a-z-]*", line.split("   (")[0]):
            assert f"{option} " in usage or f"{option}]" in usage or f"{option}\n" in usage, (option, line)


def test_a_parser_used_as_a_library_answers_in_one_line_too(capsys):
    from samn_tracker.evaluation import davis

    with pytest.raises(SystemExit) as exit:
        davis.build_parser().parse_args(["--root", "r", "--batch", "0"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == "samn eval davis: error: argument --batch: must be at least 1, got 0\n"


def test_the_subcommand_parsers_follow_their_parent():
    parser = track_parser()
    assert isinstance(parser, CommandParser)
    assert "(default: lite)" in parser.format_help()


def test_python_dash_m_runs_the_samn_command(tmp_path):
    """Where pip put the script off PATH, ``python -m samn_tracker`` is the same command, exit codes too."""
    shown = subprocess.run([sys.executable, "-m", "samn_tracker", "eval", "--help"], capture_output=True,
                           text=True, env=ENV, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: samn eval")
    refused = subprocess.run([sys.executable, "-m", "samn_tracker", "track", str(tmp_path / "missing.mp4"),
                              "--box", "1,1,9,9", "--out", str(tmp_path / "out")],
                             capture_output=True, text=True, env=ENV, timeout=120)
    assert refused.returncode == 2 and one_line(refused.stderr).startswith("samn track: error: ")


def test_eval_help_lists_the_benchmarks_and_rejects_others():
    shown = samn("eval", "--help")
    assert shown.returncode == 0
    for name in ("got10k", "trackingnet", "lasot", "otb", "davis", "keys", "examples:"):
        assert name in shown.stdout
    unknown = samn("eval", "foo")
    assert unknown.returncode == 2
    assert one_line(unknown.stderr) == \
        "samn eval: error: unknown benchmark 'foo'; choose from got10k, trackingnet, lasot, otb, davis, keys"


@pytest.mark.parametrize("args, prog", [
    (["bench", "--repeat", "0"], "samn bench"),
    (["train", "--config", "no-such-config"], "samn train"),
    (["distill", "--set", "steps=-1"], "samn distill"),
    (["distill"], "samn distill"),  # no DAVIS/ in the working folder
    (["report", "vot", "no-such-analysis.json", "--out", "r"], "samn report vot"),
    (["eval", "got10k", "--root", "no-such-root", "--score-only"], "samn eval got10k"),
])
def test_every_command_reports_bad_input_in_one_line(args, prog, tmp_path):
    result = subprocess.run(samn_command(*args), capture_output=True, text=True, env=ENV, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(f"{prog}: error: ")


@pytest.mark.parametrize("command", [["track", "{data}/JPEGImages/480p/blackswan", "--box", "1,1,5,5"],
                                     ["eval", "davis", "--root", "{data}", "--year", "2016",
                                      "--sequences", "blackswan"],
                                     ["bench", "--data", "{data}", "--trackers", "samn_lite", "--max-frames", "2"]])
def test_a_device_that_is_not_here_is_one_line_before_anything_is_written(command, davis_root, tmp_path):
    args = [arg.format(data=davis_root) for arg in command]
    result = subprocess.run(samn_command(*args, "--out", "out", "--device", "mps"), capture_output=True,
                            text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert one_line(result.stderr).endswith("device 'mps' is not available here "
                                            "(samn runs on CPUs and CUDA GPUs only); use cpu or cuda")
    assert list(tmp_path.iterdir()) == []


def test_report_vot_help_names_its_program():
    assert samn("report", "vot", "--help").stdout.startswith("usage: samn report vot")


def read_stderr_into(process: subprocess.Popen, chunks: list[bytes]) -> threading.Thread:
    def read() -> None:
        while chunk := os.read(process.stderr.fileno(), 4096):
            chunks.append(chunk)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_eval_interrupted_while_tracking_is_one_line(davis_root, tmp_path):
    env = {key: value for key, value in ENV.items() if key != "TQDM_DISABLE"}  # the bar says tracking began
    process = subprocess.Popen(samn_command("eval", "davis", "--root", davis_root, "--year", 2016,
                                            "--sequences", "blackswan", "--out", tmp_path / "davis"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=interruptible)
    chunks: list[bytes] = []
    reader = read_stderr_into(process, chunks)
    deadline = time.monotonic() + 120
    while b"tracking:" not in b"".join(chunks):
        assert time.monotonic() < deadline and process.poll() is None, b"".join(chunks)
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    reader.join(timeout=10)
    stderr = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 130, stderr[-4000:]  # a crash at shutdown says why here
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.splitlines()[-1] == ("samn eval davis: interrupted (finished sequences are kept: "
                                       "run the same command to resume)")


def test_bench_names_the_exact_fix_when_csrt_is_missing(monkeypatch):
    from samn_tracker.speed import trackers

    monkeypatch.setattr(trackers, "contrib_factory", lambda name: None)
    with pytest.raises(InputError, match="TrackerCSRT_create") as caught:
        trackers.OpenCVBench("csrt")
    assert CONTRIB_FIX in str(caught.value)


def doctor_lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    assert "Traceback" not in result.stderr + result.stdout
    items = {}
    for line in result.stdout.splitlines():
        status, item, *_ = line.split()
        if status in ("ok", "warn", "FAIL"):
            items[item] = line
    assert set(items) == set(doctor.CHECKS), result.stdout
    return items


def test_doctor_checks_every_item():
    result = samn("doctor")
    items = doctor_lines(result)
    failed = [line for line in items.values() if line.startswith("FAIL")]
    assert result.returncode == (1 if failed else 0), result.stdout
    assert items["torch"].startswith("ok")
    if not torch.cuda.is_available():  # the faster precision named only where the CPU has its kernels
        assert ("--precision bf16" in items["torch"]) == ("bf16" not in slow_cpu_precisions())


def test_doctor_reports_the_opencv_clash_with_its_fix(tmp_path):
    """opencv-python installed over opencv-contrib-python-headless: a cv2 without CSRT / KCF."""
    fake = tmp_path / "cv2"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "4.9.0"  # like opencv-python: no contrib trackers\n')
    path = os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])
    result = samn("doctor", env={"PYTHONPATH": path})
    assert result.returncode == 1
    opencv = doctor_lines(result)["opencv"]
    assert opencv.startswith("FAIL") and "TrackerCSRT_create" in opencv
    assert opencv.endswith(f"Fix: {CONTRIB_FIX}")


def test_doctor_warns_of_a_missing_trax_extra_with_a_fix_that_works_from_any_folder(monkeypatch):
    """A base install without the [vot] extra is valid: a warning, not a failure; a vot-trax
    installed that does not load still fails. The fixes name this checkout, not ".", so that
    they work wherever doctor runs."""
    real_version = doctor.metadata.version

    def version(name):
        if name == "vot-trax":
            raise doctor.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(doctor.metadata, "version", version)
    checkout = Path(__file__).resolve().parents[1]
    finding = doctor.check_trax()
    assert finding.status == "warn" and finding.fix == f"pip install -e '{checkout}[vot]'"
    monkeypatch.setattr(doctor.metadata, "version", lambda name: "4.0.1")
    monkeypatch.setitem(sys.modules, "trax", None)  # installed, but its import fails
    assert doctor.check_trax().status == "FAIL"
    assert doctor.pip_install(reinstall=True) == f"pip install --force-reinstall --no-deps -e '{checkout}'"


def test_doctor_fails_a_weight_cache_that_is_a_file(tmp_path):
    cache = tmp_path / "not-a-folder"
    cache.write_text("x")
    result = samn("doctor", env={"SAMN_CACHE": str(cache / "sub")})
    assert result.returncode == 1
    line = doctor_lines(result)["cache"]
    assert line.startswith("FAIL") and f"{cache} is a file" in line and "$SAMN_CACHE" in line


def test_doctor_fails_a_weight_cache_it_cannot_write_to():
    """/proc takes no new folders, even from root, whom permission bits do not stop."""
    result = samn("doctor", env={"SAMN_CACHE": "/proc/samn-cache"})
    assert result.returncode == 1
    line = doctor_lines(result)["cache"]
    assert line.startswith("FAIL  cache    cannot write to /proc for the weight cache /proc/samn-cache: ")
    assert line.endswith("Fix: point $SAMN_CACHE at a folder you can write to (default ~/.cache/samn_tracker)")


@pytest.mark.parametrize("command", [[], ["eval", "keys"], ["train"], ["distill"]])
def test_help_shows_no_docstring_markup(command, capsys):
    """Descriptions taken from docstrings showed ``samn``, ``samn train``, ... as written."""
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ("`samn" in text or "samn " in text)
