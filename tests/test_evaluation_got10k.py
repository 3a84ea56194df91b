"""GOT-10k end to end on a small dataset in the official layout, built from real DAVIS frames.

The real SAMN tracker (lite, 128-pixel crops) runs through our runner and through the
got10k toolkit; AO / SR are checked against ``ExperimentGOT10k.report``; the test-server
zip and resuming are checked file by file.
"""
import json
import os
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from samn_tracker import weights
from samn_tracker.evaluation import got10k, options
from samn_tracker.devices import Rank
from samn_tracker.evaluation.runner import run_sequences, samn_factory

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
SEQUENCES = ["blackswan", "car-shadow"]
FRAMES = 4
FAST = ["--set", "crop_size=128", "--set", "dcf.augment=False", "--no-progress", "--seed", "0"]
BOX_LINE = re.compile(r"^-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3}$")

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")


def make_got10k(root: Path, subset: str, sources=SEQUENCES) -> list[str]:
    """``<root>/<subset>/`` with list.txt and one folder per sequence, as GOT-10k ships it."""
    names = []
    for index, source in enumerate(sources, start=1):
        name = f"GOT-10k_{subset.capitalize()}_{index:06d}"
        folder = root / subset / name
        folder.mkdir(parents=True)
        for frame in range(FRAMES):
            os.symlink(DATA / "JPEGImages" / "480p" / source / f"{frame:05d}.jpg", folder / f"{frame + 1:08d}.jpg")
        boxes = (DATA / "boxes" / f"{source}.txt").read_text().splitlines()[:FRAMES]
        (folder / "groundtruth.txt").write_text("\n".join(boxes if subset == "val" else boxes[:1]) + "\n")
        if subset == "val":
            cover = [8] * FRAMES
            cover[2] = 0  # one fully occluded frame: not scored
            (folder / "cover.label").write_text("\n".join(map(str, cover)) + "\n")
            (folder / "absence.label").write_text("0\n" * FRAMES)
            (folder / "cut_by_image.label").write_text("0\n" * FRAMES)
            (folder / "meta_info.ini").write_text(
                "[METAINFO]\nurl: https://example.org\nobject_class: animal\nresolution: (854, 480)\n")
        names.append(name)
    (root / subset / "list.txt").write_text("\n".join(names) + "\n")
    return names


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("GOT-10k")
    return root, make_got10k(root, "val"), make_got10k(root, "test", SEQUENCES[:1])


@pytest.fixture(scope="module")
def val_run(dataset, tmp_path_factory):
    root, names, _ = dataset
    out = tmp_path_factory.mktemp("results")
    assert got10k.main(["--root", str(root), "--subset", "val", "--out", str(out),
                        "--tracker-name", "samn", *FAST]) == 0
    return out


def test_val_results_have_the_toolkit_layout_line_by_line(dataset, val_run):
    root, names, _ = dataset
    run_dir = val_run / "val" / "GOT-10k" / "samn"
    for name in names:
        lines = (run_dir / name / f"{name}_001.txt").read_text().splitlines()
        assert len(lines) == FRAMES and all(BOX_LINE.match(line) for line in lines)
        first_gt = [float(v) for v in (root / "val" / name / "groundtruth.txt").read_text().split()[0].split(",")]
        assert [float(v) for v in lines[0].split(",")] == first_gt
        times = (run_dir / name / f"{name}_time.txt").read_text().splitlines()
        assert len(times) == FRAMES and all(float(t) > 0 for t in times)
        assert sorted(p.name for p in (run_dir / name).iterdir()) == [f"{name}_001.txt", f"{name}_time.txt"]


def test_scores_equal_the_got10k_toolkit_report(dataset, val_run):
    from got10k.experiments import ExperimentGOT10k

    root, _, _ = dataset
    summary = json.loads((val_run / "val" / "summaries" / "samn.json").read_text())
    experiment = ExperimentGOT10k(str(root), subset="val", result_dir=str(val_run / "val"),
                                  report_dir=str(val_run / "toolkit_reports"))
    overall = experiment.report(["samn"])["samn"]["overall"]
    assert summary["scores"]["AO"] == pytest.approx(overall["ao"], abs=1e-12)
    assert summary["scores"]["SR0.5"] == pytest.approx(overall["sr"], abs=1e-12)
    assert summary["scores"]["SR0.75"] == pytest.approx(overall["succ_curve"][75], abs=1e-12)
    assert summary["scores"]["FPS"] == pytest.approx(overall["speed_fps"], rel=1e-9)
    assert summary["curves"]["success"] == pytest.approx(overall["succ_curve"], abs=1e-12)
    result = got10k.score(root, val_run / "val" / "GOT-10k" / "samn")
    assert result.scores.frames == 2 * (FRAMES - 1) - 2  # frame 0 and the cover-0 frame left out


def test_batched_run_writes_what_the_one_at_a_time_run_wrote(dataset, val_run, tmp_path):
    root, names, _ = dataset
    assert got10k.main(["--root", str(root), "--subset", "val", "--out", str(tmp_path),
                        "--tracker-name", "samn", "--batch", "2", *FAST]) == 0
    for name in names:
        ours = np.loadtxt(val_run / "val" / "GOT-10k" / "samn" / name / f"{name}_001.txt", delimiter=",")
        batched = np.loadtxt(tmp_path / "val" / "GOT-10k" / "samn" / name / f"{name}_001.txt", delimiter=",")
        assert np.allclose(ours, batched, atol=0.5)
        times = np.loadtxt(tmp_path / "val" / "GOT-10k" / "samn" / name / f"{name}_time.txt")
        assert len(times) == FRAMES and (times > 0).all()


def test_batch_must_be_positive(dataset, tmp_path, capsys):
    root, _, _ = dataset
    with pytest.raises(SystemExit) as stop:
        got10k.main(["--root", str(root), "--subset", "val", "--out", str(tmp_path), "--batch", "0", *FAST])
    assert stop.value.code == 2
    assert "--batch: must be at least 1, got 0" in capsys.readouterr().err


def test_toolkit_adapter_gives_the_same_boxes_as_our_runner(val_run, tmp_path):
    root = tmp_path / "GOT-10k"
    names = make_got10k(root, "val", SEQUENCES[:1])  # the same first sequence, alone
    tracker = samn_factory("lite", overrides={"crop_size": 128, "dcf.augment": False})("cpu")
    performance = got10k.run_toolkit(root, "val", tmp_path, tracker, "samn")
    assert set(performance) == {"samn"}
    for name in names:
        ours = np.loadtxt(val_run / "val" / "GOT-10k" / "samn" / name / f"{name}_001.txt", delimiter=",")
        theirs = np.loadtxt(tmp_path / "val" / "GOT-10k" / "samn" / name / f"{name}_001.txt", delimiter=",")
        assert np.allclose(ours, theirs, atol=1e-3)
    assert (tmp_path / "val" / "reports" / "GOT-10k" / "samn" / "performance.json").is_file()


def test_toolkit_refuses_the_options_its_loop_cannot_honour(dataset, tmp_path, monkeypatch, capsys):
    root, names, _ = dataset
    no_tracking(monkeypatch)
    for extra in (["--batch", "2"], ["--sequences", names[0]], ["--score-only"], ["--no-progress"]):
        assert got10k.main(["--root", str(root), "--out", str(tmp_path / "out"), "--toolkit", *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"cannot honour {extra[0]}" in err, err
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert got10k.main(["--root", str(root), "--out", str(tmp_path / "out"), "--toolkit"]) == 2
    assert "without torchrun" in capsys.readouterr().err


def test_a_toolkit_val_run_writes_our_summary_too(tmp_path):
    root = tmp_path / "GOT-10k"
    make_got10k(root, "val", SEQUENCES[:1])
    out = tmp_path / "out"
    assert got10k.main(["--root", str(root), "--out", str(out), "--toolkit", "--tracker-name", "samn",
                        *[a for a in FAST if a != "--no-progress"]]) == 0
    assert json.loads((out / "val" / "summaries" / "samn.json").read_text())["benchmark"] == "got10k"


def test_test_subset_writes_the_server_zip(dataset, tmp_path):
    root, _, names = dataset
    assert got10k.main(["--root", str(root), "--subset", "test", "--out", str(tmp_path),
                        "--tracker-name", "samn", *FAST]) == 0
    archive = tmp_path / "test" / "GOT-10k" / "samn.zip"
    with zipfile.ZipFile(archive) as z:
        entries = sorted(z.namelist())
        assert entries == sorted(f"{n}/{n}_{kind}.txt" for n in names for kind in ("001", "time"))
        for name in names:
            lines = z.read(f"{name}/{name}_001.txt").decode().splitlines()
            assert len(lines) == FRAMES and all(BOX_LINE.match(line) for line in lines)
            assert len(z.read(f"{name}/{name}_time.txt").decode().splitlines()) == FRAMES


class Interrupting:
    """The real tracker, interrupted like Ctrl-C after ``calls`` track() calls."""

    def __init__(self, tracker, calls):
        self.tracker, self.calls = tracker, calls

    def initialize(self, image, region):
        return self.tracker.initialize(image, region)

    def track(self, image):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return self.tracker.track(image)


def test_resume_skips_finished_sequences_and_redoes_interrupted_ones(dataset, val_run, tmp_path):
    root, names, _ = dataset
    sequences = got10k.load_sequences(root, "val")
    shutil.copytree(val_run / "val" / "GOT-10k" / "samn", tmp_path / "samn")
    writer = got10k.Got10kWriter(tmp_path / "samn")
    first, second = writer.result_file(names[0]), writer.result_file(names[1])
    second.unlink()
    tracker = samn_factory("lite", overrides={"crop_size": 128, "dcf.augment": False})("cpu")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of the second sequence
        run_sequences(sequences, lambda device: Interrupting(tracker, 1), writer, Rank(), progress=False)
    assert first.is_file() and not second.exists()
    # the timing file alone, or a stray temporary file, does not make a sequence finished
    assert writer.time_file(names[1]).is_file()
    (writer.run_dir / names[1] / f".{names[1]}_001.txt.abc.tmp").write_text("1,2")
    stamp = first.stat().st_mtime_ns
    built = []
    fps = run_sequences(sequences, lambda device: built.append(device) or tracker, writer, Rank(),
                        progress=False)
    assert list(fps) == [names[1]] and built == ["cpu"]
    assert first.stat().st_mtime_ns == stamp
    assert len(second.read_text().splitlines()) == FRAMES
    # everything done: the tracker is not even built
    assert run_sequences(sequences, lambda device: pytest.fail("tracker built"), writer, Rank(),
                         progress=False) == {}


def test_each_rank_tracks_only_its_share(dataset, val_run, tmp_path):
    root, names, _ = dataset
    sequences = got10k.load_sequences(root, "val")
    shutil.copytree(val_run / "val" / "GOT-10k" / "samn", tmp_path / "samn")
    writer = got10k.Got10kWriter(tmp_path / "samn")
    writer.result_file(names[0]).unlink()  # rank 0's sequence is missing, rank 1's is done
    assert Rank(rank=1, world=2).take(sequences) == sequences[1:]
    assert run_sequences(sequences, lambda device: pytest.fail("tracker built"), writer,
                         Rank(rank=1, world=2), progress=False) == {}
    assert not writer.result_file(names[0]).exists()


def test_ranks_track_their_shares_in_lockstep(tmp_path, monkeypatch):
    """torchrun on top of ``--batch``: each of two ranks tracks its half of four sequences in
    lockstep, rank 0 scores once both halves exist, and every sequence's boxes are those of
    one process tracking the four one at a time."""
    root = tmp_path / "GOT-10k"
    names = make_got10k(root, "val", ["blackswan", "car-shadow", "cows", "bmx-trees"])
    args = ["--root", str(root), "--subset", "val", "--tracker-name", "samn", *FAST]
    assert got10k.main([*args, "--out", str(tmp_path / "alone")]) == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (1, 0):  # rank 0 last: it waits for the other ranks' results before scoring
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        assert got10k.main([*args, "--out", str(tmp_path / "ranks"), "--batch", "2"]) == 0
        done = sorted(path.name for path in (tmp_path / "ranks" / "val" / "GOT-10k" / "samn").iterdir())
        assert done == (sorted(names[1::2]) if rank == 1 else sorted(names))
    for name in names:
        alone, ranked = (np.loadtxt(tmp_path / run / "val" / "GOT-10k" / "samn" / name / f"{name}_001.txt",
                                    delimiter=",") for run in ("alone", "ranks"))
        assert alone.shape == ranked.shape == (FRAMES, 4) and np.allclose(alone, ranked, atol=0.5)


def copied_run(val_run: Path, tmp_path: Path) -> Path:
    """A copy of the val run's folder, its record and summaries: an ``--out`` to resume into."""
    shutil.copytree(val_run / "val", tmp_path / "val", ignore=shutil.ignore_patterns("reports"))
    return tmp_path


def no_tracking(monkeypatch) -> None:
    """Building a tracker fails the test: the command must stop (or find nothing to do) first."""
    monkeypatch.setattr(options, "tracker_factory", lambda args: lambda device: pytest.fail("a tracker was built"))


def test_score_only_names_the_sequences_without_results_instead_of_waiting(dataset, val_run, tmp_path,
                                                                           monkeypatch, capsys):
    root, names, _ = dataset
    out = copied_run(val_run, tmp_path)
    (out / "val" / "GOT-10k" / "samn" / names[1] / f"{names[1]}_001.txt").unlink()
    monkeypatch.setattr(options, "wait_for_all", lambda *a: pytest.fail("waited for other ranks"))
    assert got10k.main(["--root", str(root), "--subset", "val", "--out", str(out), "--tracker-name", "samn",
                        "--score-only"]) == 2
    assert f"no complete results for 1 of 2 sequences: {names[1]}" in capsys.readouterr().err


def test_resuming_with_other_settings_or_weights_is_refused(dataset, val_run, tmp_path, monkeypatch, capsys):
    root, names, _ = dataset
    out = copied_run(val_run, tmp_path)
    args = ["--root", str(root), "--subset", "val", "--out", str(out), "--tracker-name", "samn", *FAST]
    record = out / "val" / "GOT-10k" / "samn.settings.json"
    written = json.loads(record.read_text())
    assert written["settings"] == {"crop_size": 128, "dcf.augment": False} and written["seed"] == 0
    assert written["preset"] == "lite" and written["precision"] == "fp32" and len(written["weights_sha256"]) == 64
    no_tracking(monkeypatch)
    for changed, named in [(["--set", "use_dcf=False"], "--set use_dcf: False now, True (the preset's) before"),
                           (["--seed", "1"], "seed: 1 now, 0 before"),
                           (["--weights", str(weights.BUILTIN_CHECKPOINTS_DIR / "lite.pth")], "weights: lite.pth now")]:
        capsys.readouterr()
        assert got10k.main([*args, *changed]) == 2
        err = capsys.readouterr().err
        assert named in err and "another --out or --tracker-name" in err and len(err.splitlines()) == 1
    # the same weights elsewhere, a batch, an implementation setting: the same results, resumed
    shutil.copy(weights.BUILTIN_CHECKPOINTS_DIR / "lite-query.pth", tmp_path / "copy.pth")
    capsys.readouterr()
    assert got10k.main([*args, "--weights", str(tmp_path / "copy.pth"), "--batch", "2",
                        "--set", "host_threads=1", "--set", "memory.interval=5"]) == 0
    assert "2 of 2 sequences already done" in capsys.readouterr().err
    assert json.loads(record.read_text()) == written
    # a folder from before records were kept resumes as before, and gets one
    record.unlink()
    assert got10k.main([*args, "--set", "use_dcf=False"]) == 0
    assert json.loads(record.read_text())["settings"]["use_dcf"] is False


def test_a_subset_summary_names_its_sequences_and_says_what_it_covers(dataset, val_run, tmp_path, capsys):
    root, names, _ = dataset
    whole = json.loads((val_run / "val" / "summaries" / "samn.json").read_text())
    assert whole["sequences"] == names
    out = copied_run(val_run, tmp_path)
    capsys.readouterr()
    assert got10k.main(["--root", str(root), "--subset", "val", "--out", str(out), "--tracker-name", "samn",
                        "--score-only", "--sequences", names[1], f"{names[1]}/"]) == 0  # the second tab-completed
    printed = capsys.readouterr()
    assert f"{names[1]} given more than once" in printed.err
    assert "the summary covers 1 of the 2 sequences of GOT-10k val" in printed.out
    assert json.loads((out / "val" / "summaries" / "samn.json").read_text())["sequences"] == [names[1]]


def test_out_that_cannot_be_a_folder_is_refused_before_tracking(dataset, tmp_path, monkeypatch, capsys):
    root, _, _ = dataset
    (tmp_path / "afile.txt").write_text("x")
    no_tracking(monkeypatch)
    for out, said in [(tmp_path / "afile.txt", "is a file; give a folder"),
                      (tmp_path / "afile.txt" / "sub", "afile.txt is a file")]:
        assert got10k.main(["--root", str(root), "--subset", "val", "--out", str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("subset, file, text, said", [
    ("test", "groundtruth.txt", "0,0,0,0\n", "groundtruth.txt line 1: the initial box has no area"),
    ("test", "groundtruth.txt", "", "groundtruth.txt is empty"),
    ("val", "meta_info.ini", "[METAINFO]\nresolution: wide\n", "meta_info.ini has no valid 'resolution"),
    ("val", "cover.label", "8\nx\n8\n8\n", "cannot read numbers from "),  # was numpy's traceback
    # no box where the target is in view: the toolkit's AO over it is NaN, printed with exit 0
    ("val", "groundtruth.txt", "9,9,50,50\nnan,nan,nan,nan\n0,0,0,0\n9,9,50,50\n",
     "line 2 has no box (NaN) where cover.label says the target is in view (1 such frames)"),
])
def test_every_sequence_is_checked_before_any_is_tracked(tmp_path, monkeypatch, capsys, subset, file, text, said):
    root = tmp_path / "GOT-10k"
    names = make_got10k(root, subset)
    (root / subset / names[-1] / file).write_text(text)  # the last sequence: found before the first is run
    no_tracking(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert got10k.main(["--root", str(root), "--subset", subset, "--out", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert said in err and names[-1] in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_root_one_folder_off_or_a_missing_subset_says_what_to_give(tmp_path, monkeypatch, capsys):
    """A root one folder too high or too low named only the list.txt it lacked."""
    root = tmp_path / "GOT-10k"
    make_got10k(root, "val", SEQUENCES[:1])
    no_tracking(monkeypatch)
    for given, subset, said in [
            (tmp_path, "val", f"--root {tmp_path} is not a GOT-10k root (no {tmp_path / 'val' / 'list.txt'}); "
                              f"give --root {root}"),
            (root / "val", "val", f"--root {root / 'val'} is not a GOT-10k root "
                                  f"(no {root / 'val' / 'val' / 'list.txt'}); give --root {root}"),
            (root, "test", f"--subset test: no {root / 'test' / 'list.txt'}; {root} has val"),
            (tmp_path / "nosuch", "val", f"--root {tmp_path / 'nosuch'} is not a folder")]:
        assert got10k.main(["--root", str(given), "--subset", subset, "--out", str(tmp_path / "out"), *FAST]) == 2
        assert capsys.readouterr().err == f"samn eval got10k: error: {said}\n"
    assert not (tmp_path / "out").exists()


def test_an_empty_sequence_list_is_named_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """An empty list.txt packed an empty test zip and ended val in 'no frame to score'."""
    root = tmp_path / "GOT-10k"
    no_tracking(monkeypatch)
    for subset in ("val", "test"):
        make_got10k(root, subset, SEQUENCES[:1])
        (root / subset / "list.txt").write_text("# none yet\n")
        assert got10k.main(["--root", str(root), "--subset", subset, "--out", str(tmp_path / "out"), *FAST]) == 2
        assert capsys.readouterr().err == (f"samn eval got10k: error: sequence list {root / subset / 'list.txt'} "
                                           "names no sequence\n")
    assert not (tmp_path / "out").exists()
