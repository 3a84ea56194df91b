"""Runner plumbing: torchrun sharding, config overrides, atomic files (no tracking here;
the end-to-end resume / interrupt tests with the real tracker are in test_benchmarks_got10k)."""
import os

import numpy as np
import pytest
import torch

from samn_tracker import atomic
from samn_tracker.evaluation import cli
from samn_tracker.devices import Rank
from samn_tracker.evaluation.runner import BenchmarkSequence, SequenceRun, TargetRun, samn_factory
from samn_tracker.config import parse_overrides
from samn_tracker.errors import InputError


def test_shard_reads_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    shard = Rank.from_env()
    assert shard == Rank(rank=2, world=3, local_rank=1, local_world=2)
    assert shard.take(list(range(8))) == [2, 5]
    expected = f"cuda:{1 % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    assert shard.device("auto") == torch.device(expected)
    assert shard.device("cpu") == torch.device("cpu")


def test_shard_defaults_to_one_process_and_rejects_bad_values(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert Rank.from_env() == Rank(0, 1, 0)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(InputError, match="RANK=2"):
        Rank.from_env()
    monkeypatch.setenv("RANK", "first")
    with pytest.raises(InputError, match="'first'"):
        Rank.from_env()


def test_config_overrides_are_python_literals():
    assert parse_overrides(["memory.interval=10", "dcf.augment=False", "spatial_map=distance",
                            "uncertainty.threshold=3.5"]) == {
        "memory.interval": 10, "dcf.augment": False, "spatial_map": "distance", "uncertainty.threshold": 3.5}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_overrides(["crop_size"])
    with pytest.raises(InputError, match="no_such_field"):
        samn_factory("lite", overrides={"no_such_field": 1})("cpu")


def test_fps_counts_tracker_calls_of_all_targets():
    sequence = BenchmarkSequence(name="s", frames=[], targets=[])
    run = SequenceRun(sequence, [TargetRun([], np.array([0.5, 0.5])), TargetRun([], np.array([1.0, 1.0]))])
    assert run.fps == pytest.approx(4 / 3)


def test_atomic_text_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a" / "result.txt"
    atomic.write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(target.parent) == ["result.txt"]


def test_atomic_files_of_long_names_get_short_temporary_names(tmp_path):
    """A legal name of 244 bytes would pass 255 with its name-based temporary name."""
    target = tmp_path / ("v" * 235 + "_time.txt")
    atomic.write_text(target, "0.5\n")
    with atomic.directory(tmp_path / ("d" * 250)) as folder:
        (folder / "00000.png").write_bytes(b"x")
    assert target.read_text() == "0.5\n" and (tmp_path / ("d" * 250) / "00000.png").is_file()


def test_a_replaced_folder_is_kept_aside_until_the_new_one_is_in_place(tmp_path):
    old, new = tmp_path / "seq", tmp_path / "new"
    old.mkdir()
    (old / "a.png").write_bytes(b"old")
    new.mkdir()
    (new / "a.png").write_bytes(b"new")
    atomic.replace_directory(new, old)
    assert (old / "a.png").read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["seq"]
    with pytest.raises(FileNotFoundError):  # the new folder vanished: the earlier one stays, aside
        atomic.replace_directory(tmp_path / "gone", old)
    assert (tmp_path / ".seq.replaced" / "a.png").read_bytes() == b"new"


def test_a_link_in_the_way_is_replaced_not_followed(tmp_path):
    """A link left where a folder is replaced (or beside it, by an earlier failure) is removed
    as a link: rmtree refuses links, and the folder it points to is not the run's."""
    kept, new = tmp_path / "elsewhere", tmp_path / "new"
    kept.mkdir()
    (kept / "mine.txt").write_text("keep")
    (tmp_path / "seq").symlink_to(kept)
    (tmp_path / ".seq.replaced").symlink_to(kept)
    new.mkdir()
    atomic.replace_directory(new, tmp_path / "seq")
    assert not (tmp_path / "seq").is_symlink() and (tmp_path / "seq").is_dir()
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "seq"] and (kept / "mine.txt").read_text() == "keep"


def test_atomic_directory_appears_only_when_complete(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic.directory(tmp_path / "seq") as folder:
            (folder / "00000.png").write_bytes(b"x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with atomic.directory(tmp_path / "seq") as folder:
        (folder / "00000.png").write_bytes(b"x")
    assert os.listdir(tmp_path) == ["seq"] and os.listdir(tmp_path / "seq") == ["00000.png"]


def test_atomic_directory_is_made_with_the_umask_like_the_files_in_it(tmp_path):
    """A DAVIS result or VOT workspace folder is readable by others where the umask lets
    files be (mkdtemp alone makes it 0700)."""
    previous = os.umask(0o022)
    try:
        with atomic.directory(tmp_path / "seq") as folder:
            (folder / "00000.png").write_bytes(b"x")
        with atomic.directory(tmp_path / "private") as folder:
            os.umask(0o077)
    finally:
        os.umask(previous)
    assert (tmp_path / "seq").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o755  # the mode is set when the folder is made


def test_eval_command_dispatches_to_the_benchmarks(capsys):
    assert cli.main([]) == 2
    assert "got10k|trackingnet|lasot|otb|davis" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["davis", "--help"])
    assert exit_info.value.code == 0 and "--year" in capsys.readouterr().out


def test_threads_are_compared_between_two_cpu_runs_only():
    """A GPU run records no threads (None); a record from before threads were recorded has
    none: either matches any count, as a resume across devices did before threads were kept."""
    from samn_tracker.evaluation.run_record import differences

    assert differences({"threads": 2}, {"threads": 1}) == ["threads: 2 now, 1 before (--threads 1 repeats it)"]
    assert differences({"threads": 1}, {"threads": None}) == []
    assert differences({"threads": None}, {"threads": 2}) == []
    assert differences({"threads": 2}, {}) == []
