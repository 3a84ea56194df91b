"""DAVIS 2016 / 2017 end to end on small datasets in the official layout (real frames and masks)."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samn_tracker.datasets.davis import read_annotation
from samn_tracker.evaluation import davis, options
from samn_tracker.errors import InputError
from samn_tracker.reports import evaluation as reports

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
SEQUENCES = ["blackswan", "car-shadow"]
FRAMES = 4
# Two first-frame tuning steps, not the shipped 40: these tests are about the files and the
# scores, which only need masks that find the object.
FAST = ["--set", "dcf.augment=False", "--set", "tuning.steps=2", "--no-progress", "--tracker-name", "samn"]

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")


def link_frames(root: Path, name: str, source: str) -> None:
    folder = root / "JPEGImages" / "480p" / name
    folder.mkdir(parents=True)
    for i in range(FRAMES):
        os.symlink(DATA / "JPEGImages" / "480p" / source / f"{i:05d}.jpg", folder / f"{i:05d}.jpg")


def make_davis2016(root: Path) -> Path:
    """DAVIS 2016 layout: 0/255 grayscale masks, ImageSets/2016/val.txt."""
    for name in SEQUENCES:
        link_frames(root, name, name)
        folder = root / "Annotations" / "480p" / name
        folder.mkdir(parents=True)
        for i in range(FRAMES):
            os.symlink(DATA / "Annotations" / "480p" / name / f"{i:05d}.png", folder / f"{i:05d}.png")
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "val.txt").write_text("\n".join(SEQUENCES) + "\n")
    return root


def two_objects(mask: np.ndarray) -> np.ndarray:
    """A 2017-style id map from a real mask: left half object 1, right half object 2, a void band."""
    ids = np.zeros(mask.shape, np.uint8)
    split = int(np.median(np.nonzero(mask)[1]))
    ids[:, :split][mask[:, :split]] = 1
    ids[:, split:][mask[:, split:]] = 2
    ids[:4, :] = 255
    return ids


def make_davis2017(root: Path) -> Path:
    """DAVIS 2017 layout: palette PNGs of object ids (255 = void), ImageSets/2017/val.txt."""
    link_frames(root, "swans", "blackswan")
    folder = root / "Annotations" / "480p" / "swans"
    folder.mkdir(parents=True)
    for i in range(FRAMES):
        mask = np.array(Image.open(DATA / "Annotations" / "480p" / "blackswan" / f"{i:05d}.png")) > 0
        davis.write_png(folder / f"{i:05d}.png", two_objects(mask))
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("swans\n")
    return root


@pytest.fixture(scope="module")
def run2016(tmp_path_factory):
    root = make_davis2016(tmp_path_factory.mktemp("DAVIS2016"))
    out = tmp_path_factory.mktemp("results")
    assert davis.main(["--root", str(root), "--year", "2016", "--split", "val", "--out", str(out), *FAST]) == 0
    return root, out / "2016-val"


def test_2016_results_are_palette_pngs_named_like_the_ground_truth(run2016):
    root, split_dir = run2016
    for name in SEQUENCES:
        gt_files = sorted(p.name for p in (root / "Annotations" / "480p" / name).iterdir())
        results = sorted((split_dir / "samn" / name).iterdir())
        assert [p.name for p in results] == gt_files
        for path in results:
            with Image.open(path) as image:
                assert image.mode == "P" and image.size == (854, 480)
                assert set(np.unique(np.array(image))) <= {0, 1}
        first = np.array(Image.open(results[0]))
        assert np.array_equal(first == 1, np.array(Image.open(root / "Annotations/480p" / name / "00000.png")) > 0)
        assert len((split_dir / "times" / "samn" / f"{name}.txt").read_text().splitlines()) == FRAMES


def test_2016_scores_and_the_ground_truth_as_result(run2016, tmp_path):
    root, split_dir = run2016
    result = davis.score(root, 2016, SEQUENCES, split_dir / "samn")
    assert result.scores.objects == 2
    assert [o.name for o in result.objects] == ["blackswan_1", "car-shadow_1"]
    assert all(len(o.j) == FRAMES - 2 for o in result.objects)  # first and last frame not scored
    summary = json.loads((split_dir / "summaries" / "samn.json").read_text())
    assert summary["benchmark"] == "davis2016" and summary["scores"]["J&F"] == result.scores.jf_mean
    csv = (split_dir / "summaries" / "samn-per-object.csv").read_text().splitlines()
    assert csv[0] == "Sequence,J-Mean,F-Mean" and csv[1].startswith("blackswan_1,")
    for row in csv[1:]:  # the summary's per-object J&F: each row of the official CSV, averaged
        name, j, f = row.split(",")
        assert summary["per_object"][name] == pytest.approx((float(j) + float(f)) / 2)
    assert sum(summary["per_object"].values()) / 2 == pytest.approx(result.scores.jf_mean)
    for name in SEQUENCES:  # the ground truth itself, written as results, scores perfectly
        (tmp_path / name).mkdir()
        for png in (root / "Annotations" / "480p" / name).iterdir():
            davis.write_png(tmp_path / name / png.name, read_annotation(png, 2016))
    perfect = davis.score(root, 2016, SEQUENCES, tmp_path)
    assert perfect.scores.jf_mean == 1.0 and perfect.scores.j.decay == 0.0


def test_2016_zip_and_resume(run2016, capsys):
    root, split_dir = run2016
    with zipfile.ZipFile(split_dir / "samn.zip") as archive:
        expected = {f"{n}/{i:05d}.png" for n in SEQUENCES for i in range(FRAMES)}
        assert set(archive.namelist()) == expected
    (split_dir / "samn" / ".car-shadow.abc.tmp").mkdir()  # a half-written sequence folder
    stamp = (split_dir / "samn" / "blackswan" / "00001.png").stat().st_mtime_ns
    capsys.readouterr()
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(split_dir.parent), *FAST]) == 0
    assert "2 of 2 sequences already done" in capsys.readouterr().err
    assert (split_dir / "samn" / "blackswan" / "00001.png").stat().st_mtime_ns == stamp


def test_2017_two_objects_tracked_separately_and_merged(tmp_path, monkeypatch):
    root = make_davis2017(tmp_path / "DAVIS")
    with_probability = []  # the merge gives a pixel two objects cover to the more probable
    keep = davis.DavisWriter.keep
    monkeypatch.setattr(davis.DavisWriter, "keep", lambda self, prediction: (
        with_probability.append(prediction.probability is not None), keep(self, prediction))[1])
    assert davis.main(["--root", str(root), "--year", "2017", "--out", str(tmp_path / "out"), *FAST]) == 0
    assert with_probability == [True] * 2 * FRAMES  # every frame of each object
    results = tmp_path / "out" / "2017-val" / "samn" / "swans"
    first = np.array(Image.open(results / "00000.png"))
    gt = read_annotation(root / "Annotations" / "480p" / "swans" / "00000.png", 2017)
    assert np.array_equal(first, gt) and set(np.unique(gt)) == {0, 1, 2}
    for path in sorted(results.iterdir()):
        assert set(np.unique(np.array(Image.open(path)))) <= {0, 1, 2}
    times = np.loadtxt(tmp_path / "out" / "2017-val" / "times" / "samn" / "swans.txt", delimiter=",")
    assert times.shape == (FRAMES, 2)  # one column per object
    result = davis.score(root, 2017, ["swans"], results.parent)
    assert [o.name for o in result.objects] == ["swans_1", "swans_2"]


def test_result_ids_beyond_the_objects_are_rejected(tmp_path):
    root = make_davis2017(tmp_path / "DAVIS")
    results = tmp_path / "res" / "swans"
    results.mkdir(parents=True)
    for png in (root / "Annotations" / "480p" / "swans").iterdir():
        ids = read_annotation(png, 2017)
        ids[0, 0] = 3
        davis.write_png(results / png.name, ids)
    with pytest.raises(InputError, match="object id 3"):
        davis.score(root, 2017, ["swans"], results.parent)


@dataclass
class Stub:
    mask: np.ndarray
    probability: np.ndarray | None = None


def test_merge_takes_the_most_probable_covering_object():
    a = Stub(np.array([[1, 1, 0]], bool), np.array([[0.9, 0.6, 0.9]], np.float32))
    b = Stub(np.array([[1, 1, 0]], bool), np.array([[0.7, 0.8, 0.1]], np.float32))
    scores = [davis.foreground_scores(p) for p in (a, b)]
    # pixel 0: object 1 more probable; pixel 1: object 2; pixel 2: no mask covers it
    assert davis.merge_objects(scores, [1, 2]).tolist() == [[1, 2, 0]]
    # without probabilities the later object wins where masks overlap
    scores = [davis.foreground_scores(Stub(p.mask)) for p in (a, b)]
    assert davis.merge_objects(scores, [1, 2]).tolist() == [[2, 2, 0]]
    assert davis.merge_objects(scores, [4, 7]).tolist() == [[7, 7, 0]]


def test_repeated_names_are_scored_once_and_do_not_replace_the_zip(run2016, tmp_path, capsys):
    """A run with --sequences repacked <tracker>.zip with those sequences alone, replacing the
    whole split's submission; it now leaves the zip as it is, as GOT-10k and TrackingNet do."""
    root, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "2016-val")
    whole = (tmp_path / "2016-val" / "samn.zip").read_bytes()
    capsys.readouterr()
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), "--score-only",
                       "--tracker-name", "samn", "--sequences", "blackswan", "blackswan"]) == 0
    printed = capsys.readouterr()
    assert "--sequences: blackswan given more than once" in printed.err
    assert "covers 1 of the 2 sequences of DAVIS 2016 val" in printed.out
    assert f"results in {tmp_path / '2016-val' / 'samn'} (no zip: --sequences given" in printed.out
    assert (tmp_path / "2016-val" / "samn.zip").read_bytes() == whole
    summary = json.loads((tmp_path / "2016-val" / "summaries" / "samn.json").read_text())
    assert summary["sequences"] == ["blackswan"] and summary["split_size"] == 2
    assert json.loads((split_dir / "summaries" / "samn.json").read_text())["sequences"] == SEQUENCES
    assert reports.main([str(tmp_path / "2016-val"), "--out", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().err == ("samn report: warning: samn on DAVIS 2016 val was scored on 1 of its 2 "
                                       "sequences (--sequences), not the whole split; see the Sequences column\n")
    assert "| samn |" in (tmp_path / "report" / "davis2016_val.md").read_text()
    assert pd.read_csv(tmp_path / "report" / "davis2016_val.csv", index_col=0).loc["samn", "Sequences"] == 1


def test_score_only_names_the_sequences_without_results(run2016, tmp_path, monkeypatch, capsys):
    root, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "2016-val")
    shutil.rmtree(tmp_path / "2016-val" / "samn" / "car-shadow")
    monkeypatch.setattr(options, "wait_for_all", lambda *a: pytest.fail("waited for other ranks"))
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), "--score-only",
                       "--tracker-name", "samn"]) == 2
    assert "no complete results for 1 of 2 sequences: car-shadow" in capsys.readouterr().err



def test_results_without_times_have_no_made_up_fps(run2016, tmp_path, capsys):
    root, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "2016-val")
    shutil.rmtree(tmp_path / "2016-val" / "times")
    capsys.readouterr()
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), "--score-only",
                       "--tracker-name", "samn"]) == 0
    assert "fps -\n" in capsys.readouterr().out
    summary = json.loads((tmp_path / "2016-val" / "summaries" / "samn.json").read_text())
    assert "FPS" not in summary["scores"] and summary["scores"]["J&F"] > 0

def test_the_record_keeps_the_probabilities_the_merge_reads(run2016, tmp_path, monkeypatch, capsys):
    root, split_dir = run2016
    record = json.loads((split_dir / "samn.settings.json").read_text())
    assert record["settings"]["probability_maps"] is True
    shutil.copytree(split_dir, tmp_path / "2016-val")
    monkeypatch.setattr(options, "tracker_factory", lambda args: lambda device: pytest.fail("a tracker was built"))
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), *FAST,
                       "--set", "probability_maps=False"]) == 2
    assert "--set probability_maps: False (the preset's) now, True before" in capsys.readouterr().err
    assert record["threads"] == 1  # lite on a CPU, as FAST runs it
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), *FAST, "--threads", "2"]) == 2
    assert "threads: 2 now, 1 before (--threads 1 repeats it)" in capsys.readouterr().err
    del record["threads"]  # a record from before threads were recorded takes any count
    (tmp_path / "2016-val" / "samn.settings.json").write_text(json.dumps(record))
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), *FAST, "--threads", "2"]) == 0
    assert "already done" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path / "afile"), *FAST]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_lite_tracks_on_one_cpu_thread_unless_told(monkeypatch):
    """As ``samn track``: two OpenMP threads of lite waited on each other whenever another
    program (or another torchrun rank) took a core."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        for given, threads in (([], 1), (["--threads", "2"], 2)):
            args = davis.build_parser().parse_args(["--root", "r", *FAST, *given])
            assert options.tracker_factory(args)("cpu").device.type == "cpu"
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_a_second_run_into_a_folder_another_run_writes_is_refused(run2016, tmp_path, monkeypatch, capsys):
    """Two runs into one --out both passed the record's check, then replaced each other's
    sequences, and one scored the other's results as its own. GOT-10k, TrackingNet and LaSOT
    take the same lock through ``options.prepare``."""
    root, _ = run2016
    lock = tmp_path / "2016-val" / "samn.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from samn_tracker.evaluation.run_record import hold; "
                               f"hold(Path({str(lock.with_suffix(''))!r})); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(options, "tracker_factory", lambda args: lambda device: pytest.fail("a tracker was built"))
        assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), *FAST]) == 2
        assert capsys.readouterr().err == (f"samn eval davis: error: {tmp_path / '2016-val' / 'samn'} is being written "
                                           f"by another run (process {holder.pid}): wait for it to end, or give "
                                           "another --out or --tracker-name\n")
        assert not (tmp_path / "2016-val" / "samn.settings.json").exists()
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.undo()  # the holder is gone, and the system dropped its lock with it
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), *FAST]) == 0


def test_a_file_where_the_summary_or_times_go_is_refused_before_tracking(run2016, tmp_path, monkeypatch, capsys):
    """The summaries folder is written after the last sequence: a file in its place ended
    a whole run there. GOT-10k and TrackingNet check theirs through the same
    ``options.prepare``."""
    root, _ = run2016
    monkeypatch.setattr(options, "tracker_factory", lambda args: lambda device: pytest.fail("a tracker was built"))
    for blocked in ("2016-val/summaries", "2016-val/times"):
        out = tmp_path / blocked.replace("/", "-")
        (out / blocked).parent.mkdir(parents=True)
        (out / blocked).write_text("x")
        assert davis.main(["--root", str(root), "--year", "2016", "--out", str(out), *FAST]) == 2
        assert f"{out / blocked} is a file" in capsys.readouterr().err
        assert not (out / "2016-val" / "samn").exists()


def test_a_resolution_the_root_lacks_is_named_before_anything_else(tmp_path, capsys):
    root = make_davis2016(tmp_path / "DAVIS")
    assert davis.main(["--root", str(root), "--year", "2016", "--split", "nosuch", "--resolution", "foo",
                       "--out", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--resolution foo" in err and "has 480p" in err, err
    for given in (tmp_path, root / "JPEGImages"):  # one folder too high or too low
        assert davis.main(["--root", str(given), "--year", "2016", "--out", str(tmp_path / "out"), *FAST]) == 2
        assert capsys.readouterr().err.endswith(f"not a DAVIS root; give --root {root}\n")
    assert not (tmp_path / "out").exists()


def test_a_sequence_too_short_to_score_is_refused_before_tracking(tmp_path, capsys):
    root = make_davis2016(tmp_path / "DAVIS")
    name = SEQUENCES[0]
    for i in range(2, FRAMES):
        (root / "JPEGImages" / "480p" / name / f"{i:05d}.jpg").unlink()
        (root / "Annotations" / "480p" / name / f"{i:05d}.png").unlink()
    out = tmp_path / "out"
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{name}: DAVIS scores frames 1..N-2" in err and "it has 2" in err
    assert not out.exists()


def test_a_sequence_the_split_does_not_list_is_refused_before_tracking(tmp_path, capsys):
    """Its results would be scored and summarised as the split's (a train sequence in an
    eval summary); a root without a list for the split still takes any --sequences."""
    root = make_davis2016(tmp_path / "DAVIS")
    (root / "ImageSets" / "2016" / "val.txt").write_text(f"{SEQUENCES[0]}\n")
    out = tmp_path / "out"
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(out), "--score-only",
                       "--sequences", SEQUENCES[1], *FAST]) == 2
    assert capsys.readouterr().err == (f"samn eval davis: error: sequences not in DAVIS 2016 val: {SEQUENCES[1]} "
                                       "(its summary would count them as val: give the --split that lists them)\n")
    assert not out.exists()
    assert davis.main(["--root", str(root), "--year", "2016", "--split", "nolist", "--out", str(out),
                       "--score-only", "--sequences", SEQUENCES[1], *FAST]) == 2
    assert f"no complete results for 1 of 1 sequences: {SEQUENCES[1]}" in capsys.readouterr().err


def test_an_empty_split_list_is_named_before_anything_is_written(tmp_path, capsys):
    """An empty ImageSets list packed an empty Codalab zip, then said 'no object to score'."""
    root = make_davis2016(tmp_path / "DAVIS")
    (root / "ImageSets" / "2016" / "val.txt").write_text("")
    out = tmp_path / "out"
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(out), *FAST]) == 2
    listed = root / "ImageSets" / "2016" / "val.txt"
    assert capsys.readouterr().err == f"samn eval davis: error: sequence list {listed} names no sequence\n"
    assert not out.exists()


def test_a_split_or_year_without_a_list_names_the_lists_the_root_has(tmp_path, capsys):
    """A --split or --year the root has no list for named only the files it looked for."""
    root = make_davis2016(tmp_path / "DAVIS")
    for year, split in ((2016, "test"), (2017, "val")):
        assert davis.main(["--root", str(root), "--year", str(year), "--split", split,
                           "--out", str(tmp_path / "out"), *FAST]) == 2
        err = capsys.readouterr().err
        assert err.startswith("samn eval davis: error: DAVIS sequence list not found: ") and len(err.splitlines()) == 1
        assert err.endswith(f"(or name the sequences); {root} has ImageSets/2016/val.txt\n")
    assert not (tmp_path / "out").exists()


def test_results_of_another_resolution_are_kept_apart(run2016, tmp_path, capsys):
    """A --resolution Full-Resolution run used the 480p run's folder: it skipped the sequences
    480p had finished, scored or packed them as its own, and mixed both sizes in one zip."""
    _, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "out" / "2016-val")
    root = make_davis2016(tmp_path / "DAVIS")
    for kind in ("JPEGImages", "Annotations"):
        os.symlink(root / kind / "480p", root / kind / "Full-Resolution")
    assert davis.main(["--root", str(root), "--year", "2016", "--resolution", "Full-Resolution",
                       "--out", str(tmp_path / "out"), "--score-only", *FAST]) == 2
    assert f"no complete results for 2 of 2 sequences: {', '.join(SEQUENCES)}" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2016-val"]
    # its own folder, summary and zip, a split of its own in the report
    shutil.copytree(split_dir, tmp_path / "out" / "2016-val-Full-Resolution")
    assert davis.main(["--root", str(root), "--year", "2016", "--resolution", "Full-Resolution",
                       "--out", str(tmp_path / "out"), "--score-only", *FAST]) == 0
    summary = json.loads((tmp_path / "out" / "2016-val-Full-Resolution" / "summaries" / "samn.json").read_text())
    assert summary["split"] == "val-Full-Resolution" and summary["sequences"] == SEQUENCES
    assert (tmp_path / "out" / "2016-val-Full-Resolution" / "samn.zip").is_file()


def test_a_time_file_that_is_not_numbers_is_named_in_one_line(run2016, tmp_path, capsys):
    """It was numpy's ValueError traceback."""
    root, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "2016-val")
    broken = tmp_path / "2016-val" / "times" / "samn" / f"{SEQUENCES[0]}.txt"
    broken.write_text("0.1\nabc\n")
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path), "--score-only",
                       "--tracker-name", "samn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"samn eval davis: error: cannot read numbers from {broken}: ") and err.count("\n") == 1


def test_a_split_without_every_annotation_says_why_it_has_no_scores(run2016, tmp_path, capsys):
    """A val copy that lost one annotation PNG packed the zip and ended without a word about
    the scores it did not give."""
    _, split_dir = run2016
    shutil.copytree(split_dir, tmp_path / "out" / "2016-val")
    root = make_davis2016(tmp_path / "DAVIS")
    (root / "Annotations" / "480p" / SEQUENCES[1] / "00002.png").unlink()
    capsys.readouterr()
    assert davis.main(["--root", str(root), "--year", "2016", "--out", str(tmp_path / "out"), "--score-only",
                       "--tracker-name", "samn"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"no scores: {SEQUENCES[1]} lack the annotation of some frame "
        "(test-dev and test-challenge are scored by the server)")


def test_a_results_folder_without_a_png_of_a_scored_frame_is_not_done_and_none_is_packed_short(tmp_path):
    """A lost PNG was resumed past and packed: Codalab refuses such a zip. Scoring reads
    frames 1..N-2, so another method's results without the first or last frame still score."""
    from samn_tracker.evaluation.davis import DavisWriter, submission_zip
    from samn_tracker.evaluation.runner import BenchmarkSequence

    frames = [Path(f"{i:05d}.jpg") for i in range(4)]
    sequence = BenchmarkSequence("cows", frames, [np.ones((2, 2), bool)])
    writer = DavisWriter(tmp_path / "masks", tmp_path / "times")
    folder = tmp_path / "masks" / "cows"
    folder.mkdir(parents=True)
    for name in ("00001.png", "00003.png"):
        (folder / name).write_bytes(b"")
    assert not writer.is_done(sequence)  # frame 2 is scored and missing
    (folder / "00002.png").write_bytes(b"")
    assert writer.is_done(sequence)  # frames 1 and 2 are there: it scores
    with pytest.raises(InputError, match=r"cows has no 00000.png \(1 of its 4 frames' PNGs missing\); remove that"):
        submission_zip(tmp_path / "masks", [sequence])
    (folder / "00000.png").write_bytes(b"")
    assert submission_zip(tmp_path / "masks", [sequence]).is_file()


def test_a_seed_out_of_range_is_refused_before_anything_is_written(davis_root, tmp_path, capsys):
    """It was refused only when the tracker was built, after the folder's record and lock."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        davis.main(["--root", str(davis_root), "--year", "2016", "--split", "eval", "--sequences", "car-shadow",
                    "--seed", "-1", "--out", str(out)])
    assert stop.value.code == 2
    assert "argument --seed: must be from 0 to 2**64 - 1, got -1" in capsys.readouterr().err and not out.exists()
