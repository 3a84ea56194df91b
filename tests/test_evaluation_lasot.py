"""LaSOT: the toolkit's measures on its edge cases, worked out by hand, and `samn eval lasot`
end to end on real frames in both LaSOT layouts."""
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import SHORT_TUNING_ARGS
from samn_tracker.evaluation import box_measures, lasot
from samn_tracker.reports import evaluation as reports

# LaSOT test names (so that --split test can pick them), each from a real DAVIS sequence; bird-2
# lies flat under the root, as in the test-only download, the others in class folders.
SOURCES = {"car-2": "car-shadow", "bicycle-2": "bmx-trees", "bird-2": "blackswan"}
FRAMES = 6
OUT_OF_VIEW = ("car-2", 3)  # a frame flagged in the dataset's out_of_view.txt
ATTRIBUTES = {"car-2": [1, 0, 1] + [0] * 11, "bicycle-2": [1, 1, 0] + [0] * 11, "bird-2": [1, 0, 0] + [0] * 11}
FAST = ["--set", "crop_size=128", "--set", "dcf.augment=False", *SHORT_TUNING_ARGS, "--no-progress",
        "--tracker-name", "samn"]
BOX_LINE = re.compile(r"^-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3},-?\d+\.\d{3}$")


def test_curves_follow_the_toolkit_on_its_edge_cases():
    """Six frames (scores over all six), each a rule of ``calc_seq_err_robust.m``; the same
    arrays gave these curves bit for bit in the toolkit's own code under Octave."""
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [0, 5, 20, 20], [14, 10, 20, 20], [0, 0, 0, 0],
                   [16, 10, 20, 20]], dtype=float)
    absent = [0, 0, 0, 0, 1, 0]
    pred = np.array([[99, 99, 5, 5],            # frame 0: the ground truth's box is scored instead
                     [12, 10, 20, 20],          # exact: overlap 1, error 0
                     [0, 5, 20, 20],            # exact, but the truth has x = 0: overlap -1, error -1
                     [np.nan, 1, 20, 20],       # NaN: takes frame 2's box
                     [50, 50, 20, 20],          # absent: left out of the scores, but ...
                     [16, 10, -1, 20],          # ... no area: takes the absent frame's box
                     [1, 1, 1, 1]])             # past the ground truth: cut
    success, precision, norm = box_measures.toolkit_curves(pred, gt, absent)
    # frame 3 holds (0, 5, 20, 20): 6 x 15 pixels shared with (14, 10, 20, 20); frame 5 (50, 50, 20, 20)
    overlaps = [1.0, 1.0, 90 / 710, 0.0]
    for t, count in zip(box_measures.OTB_SUCCESS_THRESHOLDS, success * 6):
        assert count == pytest.approx(sum(o > t for o in overlaps))
    assert success[0] == pytest.approx(3 / 6) and success[-1] == 0  # the absent frame counts as a miss
    # centres x + (w - 1) / 2: (9.5, 14.5) against (23.5, 19.5), (59.5, 59.5) against (25.5, 19.5)
    errors = [0.0, 0.0, -1.0, np.hypot(14, 5), np.hypot(34, 40)]
    for t, count in zip(box_measures.OTB_PRECISION_THRESHOLDS, precision * 6):
        assert count == pytest.approx(sum(e <= t for e in errors))
    norm_errors = [0.0, 0.0, -1.0, np.hypot(14 / 20, 5 / 20), np.hypot(34 / 20, 40 / 20)]
    for t, count in zip(box_measures.LASOT_NORM_PRECISION_THRESHOLDS, norm * 6):
        assert count == pytest.approx(sum(e <= t for e in norm_errors))
    with pytest.raises(lasot.InputError, match="5 predicted boxes and 6 absence flags for 6 ground-truth"):
        box_measures.toolkit_curves(pred[:5], gt, absent)


def test_sequences_whose_curve_is_all_zero_are_left_out_of_the_mean():
    lost = (np.zeros(21), np.zeros(51), np.zeros(51))
    found = (np.linspace(1, 0, 21), np.ones(51), np.full(51, 0.5))
    scores = box_measures.toolkit_scores([lost, found])
    assert scores.success == pytest.approx(0.5) and scores.precision == 1.0 and scores.norm_precision == 0.5
    assert scores.sequences == 2


def write_root(root: Path, data: Path) -> Path:
    for name, source in SOURCES.items():
        folder = root / name if name == "bird-2" else root / name.rsplit("-", 1)[0] / name
        (folder / "img").mkdir(parents=True)
        for i in range(FRAMES):
            os.symlink(data / "JPEGImages" / "480p" / source / f"{i:05d}.jpg", folder / "img" / f"{i + 1:08d}.jpg")
        boxes = (data / "boxes" / f"{source}.txt").read_text().splitlines()[:FRAMES]
        (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        flags = ["0"] * FRAMES
        (folder / "full_occlusion.txt").write_text(",".join(flags))
        if name == OUT_OF_VIEW[0]:
            flags[OUT_OF_VIEW[1]] = "1"
        (folder / "out_of_view.txt").write_text(",".join(flags))
    return root


def write_annos(annos: Path, root: Path, cut: int = 0) -> Path:
    """The toolkit's annos/ for the fixture's sequences; ``cut`` rows fewer of car-2's boxes,
    as the toolkit keeps only the first 2260 of monkey-17's."""
    (annos / "absent").mkdir(parents=True)
    (annos / "att").mkdir()
    for name in SOURCES:
        boxes = (lasot.sequence_folder(root, name) / "groundtruth.txt").read_text().splitlines()
        absent = ["1" if (name, i) == OUT_OF_VIEW else "0" for i in range(FRAMES)]
        rows = FRAMES - cut if name == "car-2" else FRAMES
        (annos / f"{name}.txt").write_text("\n".join(boxes[:rows]) + "\n")
        (annos / "absent" / f"{name}.txt").write_text("\n".join(absent[:rows]) + "\n")
        (annos / "att" / f"{name}.txt").write_text(",".join(map(str, ATTRIBUTES[name])))
    return annos


@pytest.fixture(scope="module")
def root(tmp_path_factory, davis_root):
    return write_root(tmp_path_factory.mktemp("LaSOT"), davis_root)


@pytest.fixture(scope="module")
def run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert lasot.main(["--root", str(root), "--split", "all", "--out", str(out), *FAST]) == 0
    return out


def truth(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    gt = np.loadtxt(lasot.sequence_folder(root, name) / "groundtruth.txt", delimiter=",")
    absent = np.array([(name, i) == OUT_OF_VIEW for i in range(FRAMES)], dtype=int)
    return gt, absent


def test_every_sequence_of_both_layouts_is_tracked_into_the_toolkits_result_layout(root, run):
    run_dir = run / "all" / "samn_tracking_result"
    assert sorted(p.name for p in run_dir.glob("*.txt")) == sorted(f"{n}.txt" for n in SOURCES)
    for name in SOURCES:
        lines = (run_dir / f"{name}.txt").read_text().splitlines()
        assert len(lines) == FRAMES and all(BOX_LINE.match(line) for line in lines)
        np.testing.assert_array_equal([float(v) for v in lines[0].split(",")], truth(root, name)[0][0])
        times = np.loadtxt(run_dir / "times" / f"{name}.txt")
        assert times.shape == (FRAMES,) and np.all(times > 0)


def test_the_summary_scores_the_files_with_the_datasets_absence_flags(root, run):
    run_dir = run / "all" / "samn_tracking_result"
    curves = [box_measures.toolkit_curves(np.loadtxt(run_dir / f"{n}.txt", delimiter=","), *truth(root, n))
              for n in ("bicycle-2", "bird-2", "car-2")]
    expected = box_measures.toolkit_scores(curves)
    saved = json.loads((run / "all" / "summaries" / "samn.json").read_text())
    assert saved["benchmark"] == "lasot" and saved["sequences"] == ["bicycle-2", "bird-2", "car-2"]
    assert saved["scores"]["Success"] == pytest.approx(expected.success)
    assert saved["scores"]["Precision"] == pytest.approx(expected.precision)
    assert saved["scores"]["Norm. Precision"] == pytest.approx(expected.norm_precision)
    assert saved["curves"]["precision"][20] == pytest.approx(expected.precision)
    assert [len(saved["curves"][c]) for c in ("success", "precision", "norm_precision")] == [21, 51, 51]
    assert saved["per_attribute"] == {}  # attributes come only with the toolkit's annos
    # the flagged frame is left out: car-2 alone cannot reach a success rate of 1 at threshold 0
    car = box_measures.toolkit_curves(np.loadtxt(run_dir / "car-2.txt", delimiter=","), *truth(root, "car-2"))
    assert car[0][0] <= (FRAMES - 1) / FRAMES


def test_toolkit_annos_give_its_ground_truth_and_the_success_per_attribute(root, run, tmp_path, capsys):
    annos = write_annos(tmp_path / "annos", root, cut=2)
    assert lasot.main(["--root", str(root), "--split", "all", "--out", str(run), "--toolkit-annos", str(annos),
                       *FAST]) == 0
    assert "3 of 3 sequences already done" in capsys.readouterr().err
    result = lasot.score(root, run / "all" / "samn_tracking_result", list(SOURCES), annos)
    run_dir = run / "all" / "samn_tracking_result"
    gt, absent = truth(root, "car-2")
    car = box_measures.toolkit_curves(np.loadtxt(run_dir / "car-2.txt", delimiter=","), gt[:-2], absent[:-2])
    others = [box_measures.toolkit_curves(np.loadtxt(run_dir / f"{n}.txt", delimiter=","), *truth(root, n))
              for n in ("bicycle-2", "bird-2")]
    assert result.scores.success == pytest.approx(box_measures.toolkit_scores([car, *others]).success)
    # Illumination Variation: all three; Partial Occlusion: bicycle-2 only (< 2 sequences: no score);
    # Deformation: car-2 only
    assert result.per_attribute == {"Illumination Variation": pytest.approx(result.scores.success)}
    saved = json.loads((run / "all" / "summaries" / "samn.json").read_text())
    assert saved["per_attribute"] == {"Illumination Variation": pytest.approx(result.scores.success)}
    (annos / "att" / "bird-2.txt").unlink()
    assert lasot.main(["--root", str(root), "--split", "all", "--out", str(run), "--toolkit-annos", str(annos),
                       "--score-only", *FAST]) == 2
    assert capsys.readouterr().err.strip() == (
        f"samn eval lasot: error: --toolkit-annos: {annos / 'att' / 'bird-2.txt'} not found (give the toolkit's "
        "annos/ folder, which holds <seq>.txt, absent/ and att/)")


def test_the_test_split_names_what_the_root_lacks_and_takes_its_sequences_by_name(root, run, capsys):
    out = run.parent / "test_split"
    assert lasot.main(["--root", str(root), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"samn eval lasot: error: 277 of the 280 sequences are not in {root} ")
    assert err.endswith("; --split all takes the sequences that are there")
    assert lasot.main(["--root", str(root), "--out", str(out), "--sequences", "bird-2", "car-2", *FAST]) == 0
    assert "the summary covers 2 of the 280 sequences of LaSOT test" in capsys.readouterr().out
    assert lasot.main(["--root", str(root), "--out", str(out), "--sequences", "bird-9", *FAST]) == 2
    assert capsys.readouterr().err.strip() == "samn eval lasot: error: sequences not in LaSOT test: bird-9"


def test_a_root_one_folder_off_says_which_to_give(root, tmp_path, capsys):
    high = tmp_path / "data"
    high.mkdir()
    (high / "LaSOT").symlink_to(root)
    for given, hint in ((high, root.name), (root / "car" / "car-2" / "img", None)):
        assert lasot.main(["--root", str(given), "--out", str(tmp_path / "out"), *FAST]) == 2
        said = capsys.readouterr().err.strip()
        assert said.startswith(f"samn eval lasot: error: --root {given} is not a LaSOT root")
        assert said.endswith(f"; give --root {high / 'LaSOT'}" if hint else "with img/ and groundtruth.txt)")
    assert not (tmp_path / "out").exists()


def test_a_published_trackers_results_score_beside_ours(root, run, capsys):
    """The toolkit's download of published results: tab-separated integers, no time files."""
    published = run / "all" / "SiamRPN++_tracking_result"
    published.mkdir()
    for name in SOURCES:
        boxes = np.loadtxt(run / "all" / "samn_tracking_result" / f"{name}.txt", delimiter=",")
        (published / f"{name}.txt").write_text("".join("\t".join(str(int(v)) for v in box) + "\n"
                                                       for box in np.round(boxes)))
    assert lasot.main(["--root", str(root), "--split", "all", "--out", str(run), "--score-only",
                       "--tracker-name", "SiamRPN++"]) == 0
    assert "fps -" in capsys.readouterr().out  # no made-up speed
    saved = json.loads((run / "all" / "summaries" / "SiamRPN++.json").read_text())
    assert "FPS" not in saved["scores"] and 0 < saved["scores"]["Success"] <= 1
    rows = len((published / "bird-2.txt").read_text().splitlines())
    (published / "bird-2.txt").write_text("1\t2\t3\n" * rows)
    assert lasot.main(["--root", str(root), "--split", "all", "--out", str(run), "--score-only",
                       "--tracker-name", "SiamRPN++"]) == 2
    assert capsys.readouterr().err.strip() == (f"samn eval lasot: error: {published / 'bird-2.txt'}: expected 4 "
                                               "numbers per line (x,y,w,h), separated by commas, tabs or spaces")


def test_the_report_draws_the_toolkits_three_plots_and_the_attributes(root, run, tmp_path):
    annos = write_annos(tmp_path / "annos", root)
    result = lasot.score(root, run / "all" / "samn_tracking_result", list(SOURCES), annos)
    ours = lasot.summary("samn", "all", result)
    published = reports.Summary("lasot", "all", "published", {"Success": 0.5})
    written = reports.write_report([ours, published], tmp_path / "report")
    assert sorted(p.name for p in written if p.suffix == ".png") == [
        "lasot_all_attributes.png", "lasot_all_norm_precision.png", "lasot_all_precision.png",
        "lasot_all_success.png"]
    table = (tmp_path / "report" / "lasot_all.md").read_text()
    assert f"| samn | {result.scores.success:.3f} | {result.scores.precision:.3f} |" in table
    attributes = (tmp_path / "report" / "lasot_all_attributes.md").read_text().splitlines()
    assert attributes[2:4] == ["| Tracker | Illumination Variation |", "|---|---|"]
    assert attributes[4] == f"| samn | {result.per_attribute['Illumination Variation']:.3f} |"  # not the published row
    assert (tmp_path / "report" / "lasot_all_attributes.tex").is_file()
