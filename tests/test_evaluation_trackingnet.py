"""TrackingNet end to end on small TEST / TRAIN_0 splits in the official layout (real frames)."""
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from samn_tracker.evaluation import box_measures, options, trackingnet
from samn_tracker.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
SOURCES = {"-3TIfnTSM6c_2": "bmx-trees", "a1qoB1eERn0_0": "car-roundabout"}
FRAMES = 4
FAST = ["--set", "crop_size=128", "--set", "dcf.augment=False", "--no-progress", "--tracker-name", "samn"]
BOX_LINE = re.compile(r"^-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3}$")

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")


def make_split(root: Path, split: str, full_annotations: bool) -> Path:
    """``<root>/<split>/frames/<seq>/0.jpg ...`` and ``anno/<seq>.txt`` (TEST: first line only)."""
    split_dir = root / split
    for name, source in SOURCES.items():
        frames = split_dir / "frames" / name
        frames.mkdir(parents=True)
        for i in range(FRAMES):
            os.symlink(DATA / "JPEGImages" / "480p" / source / f"{i:05d}.jpg", frames / f"{i}.jpg")
        boxes = (DATA / "boxes" / f"{source}.txt").read_text().splitlines()[:FRAMES]
        (split_dir / "anno").mkdir(exist_ok=True)
        (split_dir / "anno" / f"{name}.txt").write_text("\n".join(boxes if full_annotations else boxes[:1]) + "\n")
    return split_dir


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("TrackingNet")
    make_split(root, "TEST", full_annotations=False)
    make_split(root, "TRAIN_0", full_annotations=True)
    return root


def test_test_split_gives_a_zip_of_one_box_per_frame(root, tmp_path, capsys):
    assert trackingnet.main(["--root", str(root), "--split", "TEST", "--out", str(tmp_path), *FAST]) == 0
    with zipfile.ZipFile(tmp_path / "TEST" / "samn.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}.txt" for name in SOURCES)
        for name in SOURCES:
            lines = archive.read(f"{name}.txt").decode().splitlines()
            assert len(lines) == FRAMES and all(BOX_LINE.match(line) for line in lines)
            given = (root / "TEST" / "anno" / f"{name}.txt").read_text().split()[0]
            assert [float(v) for v in lines[0].split(",")] == [float(v) for v in given.split(",")]
    assert not (tmp_path / "TEST" / "summaries").exists()  # TEST ground truth is withheld
    with pytest.raises(InputError, match="withheld"):
        trackingnet.score(root / "TEST", tmp_path / "TEST" / "samn")
    # running again resumes: nothing left to track, the zip is rewritten identically
    before = (tmp_path / "TEST" / "samn.zip").read_bytes()
    capsys.readouterr()
    assert trackingnet.main(["--root", str(root), "--split", "TEST", "--out", str(tmp_path), *FAST]) == 0
    assert "2 of 2 sequences already done" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "TEST" / "samn.zip") as a, zipfile.ZipFile(io.BytesIO(before)) as b:
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
    # a result cut short (a copy, a full disk) is tracked again, not packed as it is
    cut = tmp_path / "TEST" / "samn" / f"{sorted(SOURCES)[0]}.txt"
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:3]))
    assert trackingnet.main(["--root", str(root), "--split", "TEST", "--out", str(tmp_path), *FAST]) == 0
    assert "1 of 2 sequences already done" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "TEST" / "samn.zip") as a, zipfile.ZipFile(io.BytesIO(before)) as b:
        assert {n: a.read(n) for n in a.namelist()} == {n: b.read(n) for n in b.namelist()}
    # a subset has no zip (the server needs every sequence), and says so and where its results are
    assert trackingnet.main(["--root", str(root), "--split", "TEST", "--out", str(tmp_path), *FAST,
                             f"--sequences={sorted(SOURCES)[0]}"]) == 0
    assert capsys.readouterr().out == (f"results in {tmp_path / 'TEST' / 'samn'} (no zip: --sequences given, "
                                       "the server needs all 2)\n")


def test_split_with_ground_truth_is_scored_like_the_server_after_all_ranks(root, tmp_path, monkeypatch):
    command = ["--root", str(root), "--split", "TRAIN_0", "--out", str(tmp_path), *FAST]
    run_dir = tmp_path / "TRAIN_0" / "samn"
    names = sorted(SOURCES)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")  # as torchrun starts it: rank 1 tracks the second sequence only
    assert trackingnet.main(command) == 0
    assert sorted(p.name for p in run_dir.glob("*.txt")) == [f"{names[1]}.txt"]
    assert not (tmp_path / "TRAIN_0" / "summaries").exists()
    monkeypatch.setenv("RANK", "0")  # rank 0 tracks its share, then scores all
    assert trackingnet.main(command) == 0
    result = trackingnet.score(root / "TRAIN_0", run_dir)
    pairs = [(np.loadtxt(run_dir / f"{n}.txt", delimiter=","),
              np.loadtxt(root / "TRAIN_0" / "anno" / f"{n}.txt", delimiter=",")) for n in SOURCES]
    expected = box_measures.trackingnet_scores(pairs)
    assert result.scores.success == pytest.approx(expected.success)
    assert 0 <= result.scores.success <= 100 and result.scores.coverage == 100.0
    assert result.fps > 0 and result.missing == []
    from_zip = trackingnet.score(root / "TRAIN_0", tmp_path / "TRAIN_0" / "samn.zip")
    assert from_zip.scores.success == pytest.approx(result.scores.success)
    assert from_zip.scores.norm_precision == pytest.approx(result.scores.norm_precision)
    summary = (tmp_path / "TRAIN_0" / "summaries" / "samn.json").read_text()
    assert '"Norm. Precision"' in summary
    # a sequence without results scores zero (frame 0 excepted), as on the server
    (run_dir / f"{next(iter(SOURCES))}.txt").unlink()
    partial = trackingnet.score(root / "TRAIN_0", run_dir)
    assert partial.missing == [next(iter(SOURCES))]
    assert partial.scores.success < result.scores.success



def test_results_without_times_have_no_made_up_fps(root, train_run, tmp_path, capsys):
    """A submission zip, or results without times/, has no speed: ``fps -`` and no FPS in
    the summary (the report shows ``-``), not -1.0."""
    shutil.copytree(train_run, tmp_path, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "TRAIN_0" / "samn" / "times")
    command = ["--root", str(root), "--split", "TRAIN_0", "--out", str(tmp_path), "--tracker-name", "samn"]
    capsys.readouterr()
    assert trackingnet.main([*command, "--score-only"]) == 0
    assert trackingnet.main([*command, "--score-zip", str(tmp_path / "TRAIN_0" / "samn.zip")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "Success" in line]
    assert len(lines) == 2 and all(line.endswith("fps -") for line in lines)
    summary = json.loads((tmp_path / "TRAIN_0" / "summaries" / "samn.json").read_text())
    assert "FPS" not in summary["scores"] and summary["scores"]["Success"] > 0


def test_a_time_file_that_is_not_numbers_is_named_in_one_line(root, train_run, tmp_path, capsys):
    """It was numpy's ValueError traceback."""
    shutil.copytree(train_run, tmp_path, dirs_exist_ok=True)
    broken = tmp_path / "TRAIN_0" / "samn" / "times" / f"{sorted(SOURCES)[1]}.txt"
    broken.write_text("0.1\nabc\n")
    assert trackingnet.main(["--root", str(root), "--split", "TRAIN_0", "--out", str(tmp_path),
                             "--tracker-name", "samn", "--score-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"samn eval trackingnet: error: cannot read numbers from {broken}: ") and err.count("\n") == 1

def test_missing_frames_are_named(tmp_path):
    split = make_split(tmp_path, "TEST", full_annotations=False)
    (split / "frames" / "a1qoB1eERn0_0" / "2.jpg").unlink()
    with pytest.raises(InputError, match="2.jpg"):
        trackingnet.load_sequences(split)


@pytest.fixture(scope="module")
def train_run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert trackingnet.main(["--root", str(root), "--split", "TRAIN_0", "--out", str(out), *FAST]) == 0
    return out


def test_score_only_scores_a_sequence_without_results_as_zero_and_names_it(root, train_run, tmp_path,
                                                                           monkeypatch, capsys):
    shutil.copytree(train_run, tmp_path, dirs_exist_ok=True)
    missing = sorted(SOURCES)[0]
    (tmp_path / "TRAIN_0" / "samn" / f"{missing}.txt").unlink()
    (tmp_path / "TRAIN_0" / "samn.zip").unlink()
    monkeypatch.setattr(options, "wait_for_all", lambda *a: pytest.fail("waited for other ranks"))
    capsys.readouterr()
    assert trackingnet.main(["--root", str(root), "--split", "TRAIN_0", "--out", str(tmp_path),
                             "--tracker-name", "samn", "--score-only"]) == 0
    out = capsys.readouterr().out
    assert f"1 sequences without results scored as zero, as the server does: {missing}" in out
    assert "no submission zip: 1 sequences have no complete results" in out and not (tmp_path / "TRAIN_0" / "samn.zip").exists()
    summary = json.loads((tmp_path / "TRAIN_0" / "summaries" / "samn.json").read_text())
    assert summary["sequences"] == sorted(SOURCES)
    # TEST has nothing to score: its zip needs every sequence, so the missing ones are named
    assert trackingnet.main(["--root", str(root), "--split", "TEST", "--out", str(tmp_path),
                             "--tracker-name", "samn", "--score-only"]) == 2
    assert f"no complete results for 2 of 2 sequences: {', '.join(sorted(SOURCES))}" in capsys.readouterr().err


def test_names_starting_with_a_dash_and_repeated_names(root, train_run, capsys):
    command = ["--root", str(root), "--split", "TRAIN_0", "--out", str(train_run), "--tracker-name", "samn",
               "--score-only"]
    dashed = "-3TIfnTSM6c_2"
    capsys.readouterr()
    assert trackingnet.main([*command, f"--sequences={dashed},{dashed}", f"--sequences={dashed}"]) == 0
    printed = capsys.readouterr()
    assert f"--sequences: {dashed} given more than once" in printed.err
    assert "covers 1 of the 2 sequences of TrackingNet TRAIN_0" in printed.out
    assert json.loads((train_run / "TRAIN_0" / "summaries" / "samn.json").read_text())["sequences"] == [dashed]
    assert "--sequences=-3TIfnTSM6c_2,NAME2" in trackingnet.build_parser().format_help()


def test_score_zip_that_is_not_a_zip_is_one_line(root, tmp_path, capsys):
    (tmp_path / "afile.txt").write_text("not a zip\n")
    assert trackingnet.main(["--root", str(root), "--split", "TRAIN_0",
                             "--score-zip", str(tmp_path / "afile.txt")]) == 2
    err = capsys.readouterr().err
    assert "afile.txt is not a readable zip file" in err and len(err.splitlines()) == 1
    assert "--split TEST --score-zip" not in trackingnet.build_parser().format_help()  # TEST has no answers


def test_score_zip_of_another_split_or_an_unknown_name_is_refused_in_one_line(root, train_run, tmp_path, capsys):
    """A zip holding none of the split's sequences scored all of them zero with a note, and a
    --sequences name the split lacks was a missing annotation file."""
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("zzOtherSplit_0.txt", "1,2,3,4\n" * FRAMES)
    command = ["--root", str(root), "--split", "TRAIN_0", "--score-zip"]
    capsys.readouterr()
    assert trackingnet.main([*command, str(other)]) == 2
    err = capsys.readouterr().err
    assert err == (f"samn eval trackingnet: error: {other} holds no results for any of the 2 sequences scored "
                   f"({', '.join(sorted(SOURCES))}): is it a run on TRAIN_0?\n")
    assert trackingnet.main([*command, str(train_run / "TRAIN_0" / "samn.zip"), "--sequences", "nope"]) == 2
    assert capsys.readouterr().err == f"samn eval trackingnet: error: sequences not in {root / 'TRAIN_0'}: nope\n"


def test_a_root_one_folder_off_or_a_missing_split_says_what_to_give(root, tmp_path, capsys):
    """A root one folder too high or too low, or a split it lacks, named only the anno/ it lacked."""
    for given, split, said in [
            (root.parent, "TEST", f"--root {root.parent} is not a TrackingNet root "
                                  f"(no {root.parent / 'TEST' / 'anno'}); give --root {root}"),
            (root / "TEST", "TEST", f"--root {root / 'TEST'} is not a TrackingNet root "
                                    f"(no {root / 'TEST' / 'TEST' / 'anno'}); give --root {root}"),
            (root, "TRAIN_5", f"--split TRAIN_5: no {root / 'TRAIN_5' / 'anno'}; {root} has TEST, TRAIN_0")]:
        assert trackingnet.main(["--root", str(given), "--split", split, "--out", str(tmp_path / "out"), *FAST]) == 2
        assert capsys.readouterr().err == f"samn eval trackingnet: error: {said}\n"
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_before_tracking(root, tmp_path, monkeypatch, capsys):
    (tmp_path / "afile.txt").write_text("x")
    monkeypatch.setattr(options, "tracker_factory", lambda args: lambda device: pytest.fail("a tracker was built"))
    assert trackingnet.main(["--root", str(root), "--split", "TRAIN_0", "--out", str(tmp_path / "afile.txt"),
                             *FAST]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_a_zero_initial_box_is_named_before_tracking(tmp_path):
    split = make_split(tmp_path, "TEST", full_annotations=False)
    (split / "anno" / "a1qoB1eERn0_0.txt").write_text("10,10,0,5\n")
    with pytest.raises(InputError, match=r"a1qoB1eERn0_0.txt line 1: the initial box has no area"):
        trackingnet.load_sequences(split)
