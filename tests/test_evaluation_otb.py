"""OTB: the MATLAB toolkit's measure on its edge cases, worked out by hand; the reader on the
download's special videos; and `samn eval otb` end to end on real frames."""
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SHORT_TUNING_ARGS
from samn_tracker.datasets import open_sequence
from samn_tracker.datasets import otb as otb_data
from samn_tracker.errors import InputError
from samn_tracker.evaluation import box_measures, otb
from samn_tracker.reports import evaluation as reports

FAST = ["--set", "crop_size=128", "--set", "dcf.augment=False", *SHORT_TUNING_ARGS, "--no-progress",
        "--tracker-name", "samn"]
FRAMES = 12
BOX_LINE = re.compile(r"^-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3}$")


# --------------------------------------------------------------------------- the measure
def test_curves_follow_calc_seq_err_robust_on_its_edge_cases():
    """Six frames, each a rule of the toolkit; counts are over all six."""
    nan = np.nan
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [0, 5, 20, 20], [14, 10, 20, 20], [16, 12, 20, 20],
                   [nan, nan, nan, nan]])
    pred = np.array([[99, 99, 5, 5],        # frame 1: the ground truth's box is scored instead
                     [12, 10, 20, 20],      # exact: overlap 1, error 0
                     [0, 5, 20, 20],        # exact, but the truth has x = 0: overlap -1, error -1
                     [nan, nan, nan, nan],  # all NaN: takes frame 3's box (0, 5, 20, 20)
                     [nan, 12, 20, 20],     # one NaN: kept (OTB); MATLAB's min/max skip it: overlap 1, error NaN
                     [1, 1, 0, 5],          # no area, but the truth is NaN: kept, overlap -1, error -1
                     [5, 5, 5, 5]])         # past the ground truth: cut
    success, precision, _ = box_measures.toolkit_curves(pred, gt, mend_partial_nan=False)
    # frame 4: (0, 5, 20, 20) and (14, 10, 20, 20) share 6 x 15 pixels of 710
    overlaps = [1.0, 1.0, -1.0, 90 / 710, 1.0, -1.0]
    np.testing.assert_allclose(success * 6,
                               [sum(o > t for o in overlaps) for t in box_measures.OTB_SUCCESS_THRESHOLDS])
    assert success[0] == pytest.approx(4 / 6) and success[3] == pytest.approx(3 / 6) and success[-1] == 0
    # centres x + (w - 1) / 2: (9.5, 14.5) against (23.5, 19.5)
    errors = [0.0, 0.0, -1.0, np.hypot(14, 5), -1.0]  # frame 5's NaN error is no hit
    np.testing.assert_allclose(precision * 6,
                               [sum(e <= t for e in errors) for t in box_measures.OTB_PRECISION_THRESHOLDS])
    assert precision[0] == pytest.approx(4 / 6) and precision[20] == pytest.approx(5 / 6)
    # LaSOT's toolkit mends any NaN: frame 5 then holds frame 4's box, 4 x 13 pixels of (16, 12, 20, 20)
    lasot_success = box_measures.toolkit_curves(pred, gt)[0]
    assert lasot_success[0] * 6 == pytest.approx(4) and lasot_success[2] * 6 == pytest.approx(3)


def test_a_sequence_whose_success_is_all_zero_is_left_out_of_the_mean():
    """Every truth box touching the left edge: overlap -1 everywhere (success all zero, left
    out as plotDrawSave.m's ``sum(aa, 2) > eps`` leaves it), error -1 (precision all one)."""
    gt = np.array([[0, 5, 20, 20], [0, 6, 20, 20]], dtype=float)
    edge = box_measures.toolkit_curves(gt + [30, 0, 0, 0], gt, mend_partial_nan=False)
    assert not edge[0].any() and edge[1].min() == pytest.approx(1)
    inner = np.array([[10, 10, 20, 20], [10, 10, 20, 20]], dtype=float)
    half = box_measures.toolkit_curves(inner + [[0, 0, 0, 0], [40, 0, 0, 0]], inner, mend_partial_nan=False)
    scores = box_measures.toolkit_scores([edge, half])
    assert scores.success == pytest.approx(half[0].mean())
    assert half[0].mean() == pytest.approx(20 * 0.5 / 21)  # frame 1 a hit below overlap 1, frame 2 a miss
    assert scores.precision == pytest.approx((1 + 0.5) / 2)  # the precision curves are both kept


# --------------------------------------------------------------------------- the reader
def write_video(root: Path, name: str, numbers, boxes: dict[str, int], digits: int = 4) -> Path:
    """``img/`` of empty files but the first (a real grey JPEG), and ground-truth files of
    the given row counts (tab separated, as some of the download's are)."""
    folder = root / name
    (folder / "img").mkdir(parents=True)
    for k, number in enumerate(numbers):
        path = folder / "img" / f"{number:0{digits}d}.jpg"
        path.write_bytes(b"")
        if k in (0, 299, 246):  # the first image of every range used here
            cv2.imwrite(str(path), np.full((600, 600, 3), 128, np.uint8))
    for file, rows in boxes.items():
        (folder / file).write_text("".join(f"{i + 1}\t2\t3\t4\n" for i in range(rows)))
    return folder


def test_special_videos_read_as_the_toolkit_runs_them(tmp_path):
    table = otb_data.read_table()
    write_video(tmp_path, "David", range(1, 771), {"groundtruth_rect.txt": 471})
    write_video(tmp_path, "BlurCar1", range(247, 989), {"groundtruth_rect.txt": 742})  # img/ of the range only
    write_video(tmp_path, "Jogging", range(1, 8), {"groundtruth_rect.1.txt": 7, "groundtruth_rect.2.txt": 7})
    human = write_video(tmp_path, "Human4", range(1, 6), {"groundtruth_rect.2.txt": 5})
    (human / "groundtruth_rect.1.txt").write_text("\n")
    write_video(tmp_path, "Board", range(1, 6), {"groundtruth_rect.txt": 5}, digits=5)
    truth = otb.read_truth(tmp_path, "David", "otb2015", table)  # frame i is image 300 + i - 1, gt row i + 1
    assert len(truth.frames) == 471 and truth.frames[0].name == "0300.jpg" and truth.frames[-1].name == "0770.jpg"
    assert truth.boxes[0, 0] == 1 and len(truth.boxes) == 471
    blur = otb.read_truth(tmp_path, "BlurCar1", "otb2015", table)
    assert [f.name for f in blur.frames[:2]] == ["0247.jpg", "0248.jpg"]
    sequence = open_sequence(tmp_path / "David")  # samn track reads the same frames
    assert len(sequence) == 471 and sequence.frames[0].name == "0300.jpg"
    assert otb_data.target_names(tmp_path, "all", table) == ["BlurCar1", "Board", "David", "Human4", "Jogging-1",
                                                             "Jogging-2"]
    assert otb_data.find_target(tmp_path, "Jogging-2").groundtruth.name == "groundtruth_rect.2.txt"
    assert otb_data.find_target(tmp_path, "Human4").groundtruth.name == "groundtruth_rect.2.txt"
    board = otb.read_truth(tmp_path, "Board", "otb2015", table)
    assert [f.name for f in board.frames] == [f"{i:05d}.jpg" for i in range(1, 6)]
    assert len(otb_data.target_names(tmp_path, "otb2015", table)) == 100
    assert len(otb_data.target_names(tmp_path, "otb2013", table)) == 51
    assert len(otb_data.target_names(tmp_path, "tb50", table)) == 50
    assert table["Basketball"].attributes == ("IV", "OCC", "DEF", "OPR", "BC")


def test_a_misaligned_or_missing_video_is_named(tmp_path, capsys):
    """Each in one line naming the file, the target or where the videos are (the root in a
    folder of its own: a hint looks into the folder above it)."""
    table = otb_data.read_table()
    root = tmp_path / "OTB"
    write_video(root, "David", range(1, 771), {"groundtruth_rect.txt": 770})
    with pytest.raises(InputError, match=r"David/groundtruth_rect.txt has 770 boxes for the 471 frames of David "
                                         r"\(images 300-770\)"):
        otb.read_truth(root, "David", "otb2015", table)
    write_video(root, "Freeman4", range(1, 200), {"groundtruth_rect.txt": 283})
    with pytest.raises(InputError, match=r"img has images 1-199; Freeman4 is images 1-283"):
        otb.read_truth(root, "Freeman4", "otb2015", table)
    assert otb_data.find_target(root, "Jogging-3") is None
    with pytest.raises(InputError, match=r"Jogging-1 not found in .* \(as <video>/ with img/ and groundtruth_rect.txt"):
        otb.read_truth(root, "Jogging-1", "otb2015", table)
    assert otb.main(["--root", str(root), "--version", "otb2013", "--out", str(tmp_path / "out"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"samn eval otb: error: 49 of the 51 targets are not in {root} ")
    assert "Basketball" in err and err.endswith("; --version all takes the videos that are there")
    nest = tmp_path / "elsewhere" / "download"
    write_video(nest / "OTB100", "Basketball", range(1, 6), {"groundtruth_rect.txt": 5})
    assert otb.main(["--root", str(nest), "--out", str(tmp_path / "out"), *FAST]) == 2
    assert capsys.readouterr().err.strip().endswith(f"; give --root {nest / 'OTB100'}")  # a level off
    (root / "data_seq").mkdir()
    assert otb.main(["--root", str(root), "--out", str(tmp_path / "out"), *FAST]) == 2
    assert capsys.readouterr().err.strip().endswith("; this is a UAV123 download: add --version uav123 (or uav20l)")


def test_a_mirror_with_lower_case_folders_reads_as_the_download(tmp_path):
    """Some mirrors lower-case the folders: david is David, images 300-770, its attributes kept."""
    table = otb_data.read_table()
    write_video(tmp_path, "david", range(1, 771), {"groundtruth_rect.txt": 471})
    write_video(tmp_path, "jogging", range(1, 8), {"groundtruth_rect.1.txt": 7, "groundtruth_rect.2.txt": 7})
    truth = otb.read_truth(tmp_path, "David", "otb2015", table)
    assert len(truth.frames) == 471 and truth.frames[0].name == "0300.jpg"
    assert otb_data.find_target(tmp_path, "Jogging-2").name == "Jogging-2"
    assert otb_data.target_names(tmp_path, "all", table) == ["david", "jogging-1", "jogging-2"]
    assert len(otb.read_truth(tmp_path, "david", "all", table).frames) == 471
    assert otb_data.target_info(table, "david").attributes == table["David"].attributes


# --------------------------------------------------------------------------- end to end
SOURCES = {"Basketball": ("blackswan",), "Jogging": ("car-shadow", "car-shadow")}


@pytest.fixture(scope="module")
def root(tmp_path_factory, davis_root):
    """Two videos of real DAVIS frames under OTB names: Basketball (one target, tab-separated
    ground truth) and Jogging (two targets, Jogging-1 and Jogging-2, the second box shifted)."""
    root = tmp_path_factory.mktemp("OTB")
    for video, sources in SOURCES.items():
        (root / video / "img").mkdir(parents=True)
        for i in range(FRAMES):
            os.symlink(davis_root / "JPEGImages" / "480p" / sources[0] / f"{i:05d}.jpg",
                       root / video / "img" / f"{i + 1:04d}.jpg")
        boxes = np.loadtxt(davis_root / "boxes" / f"{sources[0]}.txt", delimiter=",")[:FRAMES]
        if len(sources) == 1:
            np.savetxt(root / video / "groundtruth_rect.txt", boxes, fmt="%d", delimiter="\t")
        for k in range(len(sources) if len(sources) > 1 else 0):
            np.savetxt(root / video / f"groundtruth_rect.{k + 1}.txt", boxes + [10 * k, 0, 0, 0], fmt="%d",
                       delimiter=",")
    return root


@pytest.fixture(scope="module")
def run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert otb.main(["--root", str(root), "--version", "all", "--out", str(out), *FAST]) == 0
    return out


NAMES = ["Basketball", "Jogging-1", "Jogging-2"]


def test_every_target_is_tracked_into_the_layout_got10k_and_pysot_read(root, run):
    run_dir = run / "all" / "samn"
    assert sorted(p.name for p in run_dir.glob("*.txt")) == [f"{n}.txt" for n in NAMES]
    for name in NAMES:
        lines = (run_dir / f"{name}.txt").read_text().splitlines()
        assert len(lines) == FRAMES and all(BOX_LINE.match(line) for line in lines)
        first = otb.read_truth(root, name, "all", otb_data.read_table()).boxes[0]
        np.testing.assert_array_equal([float(v) for v in lines[0].split(",")], first)
        assert np.loadtxt(run_dir / "times" / f"{name}.txt").shape == (FRAMES,)


def test_the_summary_scores_the_written_files_and_a_rerun_skips_them(root, run, capsys):
    run_dir = run / "all" / "samn"
    table = otb_data.read_table()
    curves = [box_measures.toolkit_curves(np.loadtxt(run_dir / f"{n}.txt", delimiter=","),
                                          otb.read_truth(root, n, "all", table).boxes, mend_partial_nan=False)
              for n in NAMES]
    expected = box_measures.toolkit_scores(curves)
    saved = json.loads((run / "all" / "summaries" / "samn.json").read_text())
    assert saved["benchmark"] == "otb" and saved["sequences"] == NAMES and saved["split_size"] == 3
    assert 0 <= saved["scores"]["Success"] <= 1 and 0 <= saved["scores"]["Precision"] <= 1
    assert saved["scores"]["Success"] == pytest.approx(expected.success)
    assert saved["scores"]["Precision"] == pytest.approx(expected.precision)
    assert [len(saved["curves"][c]) for c in ("success", "precision")] == [21, 51]
    # OCC, DEF and OPR are attributes of all three targets; IV and BC of Basketball alone
    assert sorted(saved["per_attribute"]) == ["DEF", "OCC", "OPR"]
    assert saved["per_attribute"]["OCC"] == pytest.approx(expected.success)
    stamp = (run_dir / "Basketball.txt").stat().st_mtime_ns
    assert otb.main(["--root", str(root), "--version", "all", "--out", str(run), *FAST]) == 0
    assert "3 of 3 sequences already done" in capsys.readouterr().err
    assert (run_dir / "Basketball.txt").stat().st_mtime_ns == stamp


def test_a_published_trackers_results_score_and_report_beside_ours(root, run, tmp_path, capsys):
    """Results as published archives hold them: tab-separated integers, no time files."""
    published = run / "all" / "SiamFC"
    published.mkdir()
    for name in NAMES:
        boxes = np.round(np.loadtxt(run / "all" / "samn" / f"{name}.txt", delimiter=","))
        np.savetxt(published / f"{name}.txt", boxes, fmt="%d", delimiter="\t")
    assert otb.main(["--root", str(root), "--version", "all", "--out", str(run), "--score-only",
                     "--tracker-name", "SiamFC"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SiamFC on OTB all (3 sequences): Success ") and "fps -" in out
    written = reports.write_report(reports.find_summaries([run]), tmp_path / "report")
    assert sorted(p.name for p in written if p.suffix == ".png") == [
        "otb_all_attributes.png", "otb_all_precision.png", "otb_all_success.png"]
    table = (tmp_path / "report" / "otb_all.md").read_text()
    assert "| Tracker | Success | Precision | FPS |" in table and "| SiamFC |" in table


# --------------------------------------------------------------------------- UAV123
def test_uav123_sequences_are_ranges_of_a_video_and_a_truth_of_nan_scores_as_the_toolkit_scores_it(tmp_path,
                                                                                                   capsys):
    """bird1_1 is images 1-253 of bird1, bird1_2 images 775-1477 (got10k's uav123.json); the
    target out of view is a NaN row: overlap -1 (a miss) and error -1 (a hit)."""
    video = tmp_path / "UAV123" / "data_seq" / "UAV123" / "bird1"
    video.mkdir(parents=True)
    for number in range(1, 1478):
        (video / f"{number:06d}.jpg").write_bytes(b"")
    for number in (1, 775):
        cv2.imwrite(str(video / f"{number:06d}.jpg"), np.full((600, 600, 3), 128, np.uint8))
    (tmp_path / "UAV123" / "anno" / "UAV123").mkdir(parents=True)
    out = tmp_path / "out" / "uav123" / "perfect"
    out.mkdir(parents=True)
    hidden = {"bird1_1": range(100, 110), "bird1_2": range(5, 705, 7)}
    for name, rows in (("bird1_1", 253), ("bird1_2", 703)):
        boxes = np.column_stack([10 + np.arange(rows) % 50, np.full(rows, 20), np.full(rows, 30), np.full(rows, 40)])
        truth = boxes.astype(float)
        truth[list(hidden[name])] = np.nan
        np.savetxt(tmp_path / "UAV123" / "anno" / "UAV123" / f"{name}.txt", truth, fmt="%g", delimiter=",")
        np.savetxt(out / f"{name}.txt", boxes, fmt="%d", delimiter=",")  # a box on every frame
    truth = otb.read_truth(tmp_path / "UAV123", "bird1_2", "uav123", {})
    assert len(truth.frames) == 703 and truth.frames[0].name == "000775.jpg" and truth.frames[-1].name == "001477.jpg"
    assert np.isnan(truth.boxes[5]).all()
    args = ["--root", str(tmp_path / "UAV123"), "--version", "uav123", "--out", str(tmp_path / "out"),
            "--score-only", "--tracker-name", "perfect"]
    assert otb.main([*args, "--sequences", "bird1_1", "bird1_2"]) == 0
    assert "the summary covers 2 of the 123 sequences of UAV123" in capsys.readouterr().out
    saved = json.loads((tmp_path / "out" / "uav123" / "summaries" / "perfect.json").read_text())
    seen = [(253 - 10) / 253, (703 - 100) / 703]  # frames with a target: overlap 1 > t for t < 1
    assert saved["scores"]["Success"] == pytest.approx(np.mean(seen) * 20 / 21)
    assert saved["scores"]["Precision"] == pytest.approx(1)  # an error of 0 or -1 on every frame
    assert saved["per_attribute"] == {}
    assert otb.main([*args, "--sequences", "bird1_3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"samn eval otb: error: 1 of the 1 targets are not in {tmp_path / 'UAV123'} (as data_seq/UAV123/<video>/ "
        "with anno/UAV123/<sequence>.txt): bird1_3")


def test_uav20l_sequences_are_whole_videos_scored_against_their_own_annotations(tmp_path, capsys):
    """UAV20L reads the videos of data_seq/UAV123/ (car3: its 1717 images) against anno/UAV20L/."""
    root = tmp_path / "UAV123"
    video = root / "data_seq" / "UAV123" / "car3"
    video.mkdir(parents=True)
    for number in range(1, 1718):
        (video / f"{number:06d}.jpg").write_bytes(b"")
    cv2.imwrite(str(video / "000001.jpg"), np.full((600, 600, 3), 128, np.uint8))
    (root / "anno" / "UAV20L").mkdir(parents=True)
    boxes = np.tile([10, 20, 30, 40], (1717, 1))
    np.savetxt(root / "anno" / "UAV20L" / "car3.txt", boxes, fmt="%d", delimiter=",")
    truth = otb.read_truth(root, "car3", "uav20l", {})
    assert len(truth.frames) == 1717 and truth.frames[-1].name == "001717.jpg"
    out = tmp_path / "out" / "uav20l" / "perfect"
    out.mkdir(parents=True)
    np.savetxt(out / "car3.txt", boxes, fmt="%d", delimiter=",")
    assert otb.main(["--root", str(root), "--version", "uav20l", "--out", str(tmp_path / "out"), "--score-only",
                     "--tracker-name", "perfect", "--sequences", "car3"]) == 0
    assert "the summary covers 1 of the 20 sequences of UAV20L" in capsys.readouterr().out
    assert otb.main(["--root", str(root), "--version", "uav123", "--out", str(tmp_path / "out"), "--score-only",
                     "--sequences", "car3"]) == 2
    assert "(as data_seq/UAV123/<video>/ with anno/UAV123/<sequence>.txt): car3" in capsys.readouterr().err


def test_a_published_archive_is_read_as_the_toolkit_reads_it_or_told_what_to_mend(root, run, capsys):
    """A file longer than the ground truth is cut (it was refused as not complete, with a hint
    to track SAMN into the published folder); got10k's and pytracking's spellings are named
    with their rename; got10k's times/<seq>_time.txt give the FPS; a short file and a UTF-16
    file are each one line naming the file."""
    ours, published = run / "all" / "samn", run / "all" / "Archive"
    (published / "times").mkdir(parents=True)
    rows = {name: (ours / f"{name}.txt").read_text().splitlines() for name in NAMES}
    (published / "Basketball.txt").write_text("\n".join(rows["Basketball"] + ["1,2,3,4", "5,6,7,8"]) + "\n")
    (published / "Jogging.1.txt").write_text("\n".join(rows["Jogging-1"]) + "\n")
    (published / "Jogging_2.txt").write_text("\n".join(rows["Jogging-2"]) + "\n")
    (published / "times" / "Basketball_time.txt").write_text("0.025\n" * FRAMES, encoding="utf-8-sig")  # a BOM
    args = ["--root", str(root), "--version", "all", "--out", str(run), "--score-only", "--tracker-name", "Archive"]
    assert otb.main(args) == 2
    assert capsys.readouterr().err.strip().endswith(
        "names 2 targets otherwise than the toolkit does: rename Jogging.1.txt to Jogging-1.txt, "
        "Jogging_2.txt to Jogging-2.txt")
    for old, new in (("Jogging.1", "Jogging-1"), ("Jogging_2", "Jogging-2")):
        (published / f"{old}.txt").rename(published / f"{new}.txt")
    assert otb.main(args) == 0
    archive = json.loads((run / "all" / "summaries" / "Archive.json").read_text())
    samn = json.loads((run / "all" / "summaries" / "samn.json").read_text())
    assert archive["scores"]["Success"] == pytest.approx(samn["scores"]["Success"])
    assert archive["scores"]["FPS"] == pytest.approx(40.0)
    (published / "Jogging-2.txt").write_text("\n".join(rows["Jogging-2"][:-1]) + "\n")
    assert otb.main(args) == 2
    assert capsys.readouterr().err.strip().endswith(f"{published / 'Jogging-2.txt'} has {FRAMES - 1} boxes for "
                                                    f"{FRAMES} frames")
    (published / "Jogging-2.txt").write_text("\n".join(rows["Jogging-2"]) + "\n", encoding="utf-16")
    assert otb.main(args) == 2
    assert capsys.readouterr().err.strip().endswith(f"{published / 'Jogging-2.txt'} is not UTF-8 or ASCII text "
                                                    "(saved as UTF-16?): save it as UTF-8")
