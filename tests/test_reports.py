"""Report tables and plots from summaries produced by the real scoring functions, and what
`samn report` and `samn report bench` refuse (in one line, before writing anything)."""
import copy
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samn_tracker.evaluation import box_measures, davis, davis_measures, got10k, trackingnet
from samn_tracker.errors import InputError
from samn_tracker.evaluation.summaries import Summary, summary_path
from samn_tracker.reports import evaluation as reports
from samn_tracker.reports.cli import main as report_main


def got10k_summary(tracker: str, ious: list[float]) -> Summary:
    result = got10k.Got10kResult(scores=box_measures.got10k_scores(np.array(ious)), fps=20.0, per_sequence={})
    return got10k.summary(tracker, "val", result)


def davis_summary(year: int, tracker: str, shift: int) -> Summary:
    gt = np.zeros((40, 40), np.uint8)
    gt[10:20, 10:20] = 1
    pred = np.roll(gt, shift, axis=1)
    objects = davis_measures.score_sequence("s", [pred] * 3, [gt] * 3, [1])
    return davis.summary(year, "val", tracker, davis.DavisResult(davis_measures.summarize(objects), objects, 5.0))


@pytest.fixture
def summaries():
    gt = np.tile([10.0, 10, 20, 20], (3, 1))
    pred = gt + [[0, 0, 0, 0], [2, 0, 0, 0], [0, 5, 0, 0]]
    tn = trackingnet.summary("a", "TRAIN_0", trackingnet.TrackingNetResult(
        box_measures.trackingnet_scores([(pred, gt)]), fps=12.0, missing=[]))
    return [got10k_summary("a", [0.9, 0.6, 0.4]), got10k_summary("b", [0.3, 0.8]), tn,
            davis_summary(2016, "a", 2), davis_summary(2017, "a", 4), davis_summary(2016, "b", 0)]


def test_summaries_round_trip_and_are_found_in_folders(summaries, tmp_path):
    for s in summaries[:2]:
        s.save(summary_path(tmp_path / "got10k" / "val", s.tracker))
    found = reports.find_summaries([tmp_path])
    assert sorted(s.tracker for s in found) == ["a", "b"]
    assert found[0].scores == summaries[0].scores
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(reports.InputError, match="bad.json"):
        reports.find_summaries([tmp_path / "bad.json"])


def test_report_writes_tables_and_plots_side_by_side(summaries, tmp_path):
    written = reports.write_report(summaries, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    table = pd.read_csv(tmp_path / "got10k_val.csv", index_col=0)
    assert list(table.columns) == ["AO", "SR0.5", "SR0.75", "FPS"]
    assert table.loc["a", "AO"] == pytest.approx(round((0.9 + 0.6 + 0.4) / 3, 3))
    assert table.loc["b", "SR0.5"] == pytest.approx(0.5)
    markdown = (tmp_path / "got10k_val.md").read_text().splitlines()
    assert markdown[2] == "| Tracker | AO | SR0.5 | SR0.75 | FPS |" and markdown[4].startswith("| a | 0.633 |")
    assert "\\toprule" in (tmp_path / "got10k_val.tex").read_text()
    assert (tmp_path / "got10k_val_success.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "got10k_val_success.pdf").read_bytes()[:4] == b"%PDF"
    for curve in ("success", "precision", "norm_precision"):  # the devkit's three curves, as LaSOT's
        assert (tmp_path / f"trackingnet_TRAIN_0_{curve}.png").is_file()
    vii = pd.read_csv(tmp_path / "davis_table_vii.csv", header=[0, 1], index_col=0)
    assert ("DAVIS 2016 val", "J&F") in vii.columns and ("DAVIS 2017 val", "F-Mean") in vii.columns
    assert vii.loc["b", ("DAVIS 2016 val", "J-Mean")] == 100.0  # b is the ground truth itself
    assert np.isnan(vii.loc["b", ("DAVIS 2017 val", "J&F")])
    assert "\\multicolumn{3}{c}{DAVIS 2016 val}" in (tmp_path / "davis_table_vii.tex").read_text()


def test_report_command(summaries, tmp_path, capsys):
    for s in summaries:
        s.save(summary_path(tmp_path / "results" / s.benchmark / s.split, s.tracker))
    assert reports.main([str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "GOT-10k val" in capsys.readouterr().out
    assert (tmp_path / "out" / "davis2017_val.md").is_file()
    assert reports.main([str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["vot"]])
@pytest.mark.parametrize("out, message", [
    ("afile/sub", "cannot create --out {tmp}/afile/sub: {tmp}/afile is a file"),
    ("afile", "--out {tmp}/afile is a file; give a folder"),
])
def test_reports_refuse_an_out_under_a_file_in_one_line_before_writing(summaries, tmp_path, capsys,
                                                                         command, out, message):
    summaries[0].save(summary_path(tmp_path / "results" / "got10k" / "val", "a"))
    (tmp_path / "afile").write_text("x")
    inputs = [str(tmp_path / "analysis.json")] if command else [str(tmp_path / "results")]
    before = sorted(tmp_path.rglob("*"))
    assert report_main([*command, *inputs, "--out", str(tmp_path / out)]) == 2
    prog = " ".join(["samn report", *command])
    assert capsys.readouterr().err == f"{prog}: error: {message.format(tmp=tmp_path)}\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_report_checks_its_out_before_reading_the_summaries(tmp_path, capsys):
    """As docs/evaluation.md says: a bad --out is named even where the inputs are bad too."""
    (tmp_path / "afile").write_text("x")
    assert report_main([str(tmp_path / "missing"), "--out", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err == f"samn report: error: --out {tmp_path}/afile is a file; give a folder\n"


PUBLISHED = {"benchmark": "got10k", "split": "val", "tracker": "SiamRPN++",
             "scores": {"AO": 0.518, "SR0.5": 0.618, "SR0.75": 0.325}}  # as docs/evaluation.md says to type it


def test_published_numbers_go_in_the_tables_and_are_left_out_of_the_plot_with_a_note(summaries, tmp_path, capsys):
    ours = summaries[0]
    ours.save(summary_path(tmp_path / "results" / "got10k" / "val", ours.tracker))
    (tmp_path / "siamrpn.json").write_text(json.dumps(PUBLISHED))
    inputs = [str(tmp_path / "results"), str(tmp_path / "siamrpn.json")]
    assert reports.main([*inputs, "--out", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert out.endswith(f"wrote 5 files to {tmp_path / 'out'}\n")
    assert err == ("samn report: note: the summary of SiamRPN++ on GOT-10k val has no success curve; "
                   "it is left out of got10k_val_success.png/.pdf\n")
    assert "| SiamRPN++ | 0.518 | 0.618 | 0.325 | - |" in (tmp_path / "out" / "got10k_val.md").read_text()
    assert (tmp_path / "out" / "got10k_val_success.png").read_bytes()[:4] == b"\x89PNG"


def test_a_score_that_is_not_a_number_is_strict_json_null_and_reads_back(summaries, tmp_path, capsys):
    """GOT-10k's AO over a truth row of NaN is NaN, as the official toolkit's; the summary
    wrote Python's NaN token, which strict JSON readers refuse."""
    nan_ao = dataclasses.replace(summaries[0], scores={**summaries[0].scores, "AO": float("nan")})
    nan_ao.save(tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and json.loads(text, parse_constant=pytest.fail)["scores"]["AO"] is None
    back = Summary.load(tmp_path / "s.json")
    assert np.isnan(back.scores["AO"]) and back.curves == nan_ao.curves
    reports.write_report([back], tmp_path / "out")
    assert "| a | - |" in (tmp_path / "out" / "got10k_val.md").read_text()


def test_a_missing_score_is_a_dash_in_tables_and_leaves_the_legend_without_a_number(summaries, tmp_path):
    hand_typed = Summary("got10k", "val", "typed", {"SR0.5": 0.5}, summaries[1].curves)  # a curve, no AO
    table = reports.scores_table([hand_typed, summaries[0]])
    assert list(table.columns) == ["AO", "SR0.5", "SR0.75", "FPS"] and np.isnan(table.loc["typed", "AO"])
    assert "| typed | - | 0.500 | - | - |" in reports.markdown(table, 3)
    assert reports.curve_plot([hand_typed, summaries[0]], tmp_path / "plot", "t")[0].is_file()
    davis_typed = Summary("davis2016", "val", "typed", {"J&F": 0.8})
    vii = reports.table_vii([davis_typed, summaries[3]])
    assert vii.loc["typed", ("DAVIS 2016 val", "J&F")] == 80.0
    assert np.isnan(vii.loc["typed", ("DAVIS 2016 val", "J-Mean")])


def test_an_object_scored_zero_is_marked_not_left_blank(summaries, tmp_path, monkeypatch):
    """A bar of no length looked like an object the tracker was not scored on."""
    lost = dataclasses.replace(summaries[3], tracker="lost", per_object={"s_1": 0.0})
    figures = []
    monkeypatch.setattr(reports, "_save", lambda figure, stem: figures.append(figure) or [])
    reports.objects_plot([summaries[3], lost], tmp_path / "objects", "DAVIS 2016 val")
    (axes,) = figures[0].axes
    (marks,) = axes.lines
    (x,) = marks.get_xdata()
    assert marks.get_marker() == "|" and 0 < x < 2  # beside the axis line (J&F in %), not hidden on it
    from matplotlib.colors import to_rgba

    assert to_rgba(marks.get_color()) == axes.patches[-1].get_facecolor()  # the zero-scored tracker's colour


def test_davis_summaries_carry_each_objects_jf_and_the_report_plots_them(summaries, tmp_path, capsys):
    ours, truth = summaries[3], summaries[5]  # DAVIS 2016: a mask moved by 2 pixels, and the truth itself
    assert ours.per_object == {"s_1": pytest.approx(ours.scores["J&F"])}  # one object: its J&F is the mean
    assert 0 < ours.per_object["s_1"] < 1 and truth.per_object == {"s_1": 1.0}
    typed = Summary("davis2016", "val", "typed", {"J&F": 0.8})
    written = reports.objects_plot([ours, typed, truth], tmp_path / "objects", "DAVIS 2016 val")
    assert [p.read_bytes()[:4] for p in written] == [b"\x89PNG", b"%PDF"]
    assert capsys.readouterr().err == ("samn report: note: the summary of typed on DAVIS 2016 val has no "
                                       "per-object scores; it is left out of objects.png/.pdf\n")
    assert reports.objects_plot([typed], tmp_path / "none", "DAVIS 2016 val") == []
    assert capsys.readouterr().err == ""  # no plot, so nothing is said to be left out of one
    reports.write_report(summaries, tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").glob("*_objects.png")) == \
        ["davis2016_val_objects.png", "davis2017_val_objects.png"]


def test_the_objects_plot_keeps_its_legend_off_the_bars(monkeypatch):
    """The bars of the worst objects ended under a legend at the lower right."""
    names = [f"seq{i}_1" for i in range(8)]
    plotted = [Summary("davis2016", "val", tracker, {"J&F": 0.5}, per_object={n: 0.99 for n in names})
               for tracker in ("a_long_tracker_name", "b")]
    figures = []
    monkeypatch.setattr(reports, "_save", lambda figure, stem: figures.append(figure) or [])
    reports.objects_plot(plotted, Path("objects"), "DAVIS 2016 val")
    figure, = figures
    figure.tight_layout()
    figure.draw_without_rendering()
    axes, = figure.axes
    legend, frame = axes.get_legend().get_window_extent(), axes.get_window_extent()
    assert legend.y0 >= frame.y1 - 1 and legend.y1 <= figure.bbox.y1 + 1  # above the bars, inside the figure
    assert axes.get_legend().get_title().get_text() == "J&F (%) per sequence on DAVIS 2016 val"
    # in % as the tables: the bars, the axis and the legend's scores
    assert [round(patch.get_width(), 6) for patch in axes.patches] == [99.0] * 16
    assert axes.get_xlim() == (0, 100) and axes.get_xlabel() == "J&F (%)"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["a_long_tracker_name [50.0]", "b [50.0]"]


def test_a_summary_with_per_object_scores_that_are_not_numbers_is_refused(summaries, tmp_path):
    path = tmp_path / "s.json"
    summaries[3].save(path)
    Summary.load(path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, per_object={"s_1": "high"})))
    with pytest.raises(reports.InputError, match="per_object must map names to numbers"):
        Summary.load(path)


@pytest.mark.parametrize("change, said", [
    ({"scores": {"A0": 0.518, "SR0.5": 0.618}}, "unknown scores A0 (known: AO, SR0.5, SR0.75, FPS)"),
    ({"curves": {"succes": [1.0, 0.5], "success_x": [0.0, 1.0]}},
     "unknown curves succes (known: success, success_x, precision, precision_x, norm_precision, norm_precision_x)"),
    ({"split": 2016}, "split and tracker must be non-empty strings"),
    ({"tracker": ["SiamRPN++"]}, "split and tracker must be non-empty strings"),
    ({"scores": {"AO": 51.8}}, "AO 51.8 outside 0..1: got10k scores are fractions (0.812, not 81.2)"),
    ({"benchmark": "davis2016", "scores": {"J&F": 81.2, "J-Decay": -0.3}},
     "J&F 81.2 outside 0..1: davis2016 scores are fractions (0.812, not 81.2)"),
    ({"benchmark": "trackingnet", "scores": {"Success": 180.0}},
     "Success 180.0 outside 0..100: trackingnet scores are percentages"),
])
def test_a_hand_typed_summary_with_a_typo_is_refused_in_one_line_before_writing(tmp_path, capsys, change, said):
    """A mistyped score or curve name would be a column or curve of its own (AO left empty), a
    score typed in the other scale was shown 100 times too large, and a split or tracker that
    is not a string was a traceback while grouping the rows."""
    _written(tmp_path / "in" / "ours.json", dataclasses.asdict(got10k_summary("ours", [0.9, 0.6])))
    _written(tmp_path / "in" / "typed.json", dict(PUBLISHED, **change))
    assert report_main([str(tmp_path / "in" / "ours.json"), str(tmp_path / "in" / "typed.json"),
                        "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"samn report: error: not a benchmark summary: {tmp_path / 'in' / 'typed.json'} ({said})\n"
    assert not (tmp_path / "out").exists()


def test_a_folder_without_summaries_says_where_they_would_be(tmp_path, capsys):
    """A results folder of a test split only (no scores, so no summary) said just 'no summaries found'."""
    (tmp_path / "res" / "test" / "GOT-10k" / "samn").mkdir(parents=True)
    assert report_main([str(tmp_path / "res"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"samn report: error: no summaries found in {tmp_path / 'res'}: a folder is searched for summaries/*.json, "
        "which samn eval writes when it scores a split with public ground truth (not GOT-10k test, "
        "TrackingNet TEST, DAVIS test-dev)\n")
    assert not (tmp_path / "out").exists()


def test_two_different_summaries_of_one_tracker_are_refused_naming_both(summaries, tmp_path, capsys):
    first, other = summaries[0], got10k_summary("a", [0.1, 0.2])
    first.save(summary_path(tmp_path / "res" / "got10k" / "val", "a"))
    first.save(summary_path(tmp_path / "copy" / "got10k" / "val", "a"))
    other.save(summary_path(tmp_path / "resB" / "got10k" / "val", "a"))
    # the same file found twice, or an identical copy: one row
    assert len(reports.find_summaries([tmp_path / "res", tmp_path / "res" / "got10k", tmp_path / "copy"])) == 1
    assert reports.main([str(tmp_path / "res"), str(tmp_path / "resB"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samn report: error: two summaries of a on GOT-10k val: ") and err.count("\n") == 1
    assert str(tmp_path / "res" / "got10k" / "val" / "summaries" / "a.json") in err
    assert str(tmp_path / "resB" / "got10k" / "val" / "summaries" / "a.json") in err
    assert not (tmp_path / "out").exists()


def test_trackers_scored_on_different_sequences_get_a_column_and_a_warning(summaries, tmp_path, capsys):
    a = dataclasses.replace(summaries[0], sequences=["s1", "s2", "s3"])
    b = dataclasses.replace(summaries[1], sequences=["s1", "s2"])
    published = Summary.load(_written(tmp_path / "siamrpn.json", PUBLISHED))
    reports.write_report([a, b, published], tmp_path / "out")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("samn report: warning: on GOT-10k val the trackers were scored on different sequences: "
                      "a (3), b (2); see the Sequences column")
    assert "| Tracker | AO | SR0.5 | SR0.75 | FPS | Sequences |" in (tmp_path / "out" / "got10k_val.md").read_text()
    assert "| b | 0.550 | 0.500 | 0.500 | 20.0 | 2 |" in (tmp_path / "out" / "got10k_val.md").read_text()
    csv = pd.read_csv(tmp_path / "out" / "got10k_val.csv", index_col=0)
    assert csv.loc["a", "Sequences"] == 3 and np.isnan(csv.loc["SiamRPN++", "Sequences"])
    assert "& 3 \\\\" in (tmp_path / "out" / "got10k_val.tex").read_text()
    # the same sequences, and published numbers that name none: no column, no warning
    reports.write_report([a, dataclasses.replace(b, sequences=a.sequences), published], tmp_path / "same")
    assert "Sequences" not in (tmp_path / "same" / "got10k_val.csv").read_text()
    assert "warning" not in capsys.readouterr().err
    # the same sequences, the whole split: no column, no warning
    whole = [dataclasses.replace(s, sequences=a.sequences, split_size=3) for s in (a, b)]
    reports.write_report(whole, tmp_path / "whole")
    assert "Sequences" not in (tmp_path / "whole" / "got10k_val.csv").read_text()
    assert "warning" not in capsys.readouterr().err


def test_a_tracker_scored_on_part_of_its_split_gets_the_column_and_a_warning(summaries, tmp_path, capsys):
    """One tracker's run with --sequences is not the split's score, even with no other row to differ from."""
    part = dataclasses.replace(summaries[0], sequences=["s1", "s2"], split_size=180)
    reports.write_report([part], tmp_path / "out")
    assert capsys.readouterr().err == ("samn report: warning: a on GOT-10k val was scored on 2 of its 180 "
                                       "sequences (--sequences), not the whole split; see the Sequences column\n")
    assert pd.read_csv(tmp_path / "out" / "got10k_val.csv", index_col=0).loc["a", "Sequences"] == 2
    part.save(tmp_path / "part.json")
    assert Summary.load(tmp_path / "part.json") == part
    (tmp_path / "bad.json").write_text(json.dumps({**json.loads((tmp_path / "part.json").read_text()), "split_size": 1}))
    with pytest.raises(InputError, match="split_size must be a whole number of at least the 2 sequences scored"):
        Summary.load(tmp_path / "bad.json")


def _written(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


# ---------------------------------------------------------------- samn report bench: what it reads

@pytest.fixture(scope="module")
def bench_files(davis_root, tmp_path_factory):
    """A real bench.json (CSRT, 4 frames) and long.json (lite, 30 frames, crop 64): seconds."""
    from samn_tracker.speed import main as bench

    out = tmp_path_factory.mktemp("bench")
    common = ["--data", str(davis_root), "--sequences", "car-shadow", "--no-progress", "--threads", "1"]
    assert bench([*common, "--trackers", "csrt", "--max-frames", "4", "--warmup", "1", "--out", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert bench([*common, "--long", "30", "--cap", "2", "--set", "crop_size=64", "--out", str(out)]) == 0
    return json.loads((out / "bench.json").read_text()), json.loads((out / "long.json").read_text()), out


def _broken(result: dict, change) -> dict:
    result = copy.deepcopy(result)
    change(result)
    return result


def test_report_bench_reads_real_results_and_refuses_anything_else_before_writing(bench_files, summaries, tmp_path,
                                                                                   capsys):
    bench_result, long_result, out = bench_files
    for name, result in (("bench", bench_result), ("long", long_result)):
        path = _written(tmp_path / "good" / f"{name}.json", result)
        assert report_main(["bench", str(path)]) == 0 and path.with_suffix(".md").is_file()
    for made in (tmp_path / "good").glob("*.[mp][dn]*"):
        made.unlink()
    assert report_main(["bench", str(tmp_path / "good")]) == 0  # a --out folder: each result in it
    assert sorted(p.name for p in (tmp_path / "good").iterdir()) == [
        "bench.json", "bench.md", "bench.png", "long.json", "long.md", "long.png"]
    _written(tmp_path / "half" / "bench.json", bench_result)
    _written(tmp_path / "half" / "long.json", {})
    assert report_main(["bench", str(tmp_path / "half")]) == 2  # refused whole, before anything is written
    assert sorted(p.name for p in (tmp_path / "half").iterdir()) == ["bench.json", "long.json"]
    (tmp_path / "empty").mkdir()
    assert report_main(["bench", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.endswith("samn report bench: error: not a samn bench result: "
                                            f"{tmp_path / 'empty'} is a folder without bench.json or long.json\n")
    not_bench = {
        "a GOT-10k summary": (dataclasses.asdict(summaries[0]), "missing meta"),
        "a vot analysis": ({"trackers": {"samn": {"label": "SAMN"}}, "results": {}}, "missing meta"),
        "an empty object": ({}, "missing meta"),
        "no accuracy": (_broken(bench_result, lambda r: r["trackers"]["csrt"].pop("accuracy")),
                        "missing trackers.csrt.accuracy"),
        "no meta": (_broken(bench_result, lambda r: r.pop("meta")), "missing meta"),
        "fps null": (_broken(bench_result, lambda r: r["trackers"]["csrt"]["speed"].update(fps=None)),
                     "trackers.csrt.speed.fps is null, not a number"),
        "a sequence not scored": (
            _broken(bench_result, lambda r: r["trackers"]["csrt"]["accuracy"]["sequences"].clear()),
            "missing trackers.csrt.accuracy.sequences.car-shadow"),
        "long without per-frame times": (_broken(long_result, lambda r: r["runs"]["no_cap"].pop("per_frame")),
                                         "missing runs.no_cap.per_frame"),
    }
    for case, (document, why) in not_bench.items():
        path = _written(tmp_path / case.replace(" ", "_") / "bench.json", document)
        assert report_main(["bench", str(path)]) == 2, case
        assert capsys.readouterr().err == f"samn report bench: error: not a samn bench result: {path} ({why})\n"
        assert [p.name for p in path.parent.iterdir()] == ["bench.json"], case  # nothing written
    png = out / "bench.png"
    assert report_main(["bench", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"samn report bench: error: not a samn bench result: {png} ('utf-8' codec")
    assert report_main([str(png)]) == 2
    assert capsys.readouterr().err.startswith(f"samn report: error: not a benchmark summary: {png} ('utf-8' codec")
    bench_json = out / "bench.json"
    assert report_main([str(bench_json)]) == 2  # a bench result given as a summary: which report reads it
    assert capsys.readouterr().err == (f"samn report: error: not a benchmark summary: {bench_json} is a samn "
                                       f"bench result; its report is `samn report bench {bench_json}`\n")
    long_json = out / "long.json"
    assert report_main([str(long_json)]) == 2
    assert capsys.readouterr().err == (f"samn report: error: not a benchmark summary: {long_json} is a samn "
                                       f"bench result; its report is `samn report bench {long_json}`\n")
    year = _written(tmp_path / "year.json", {"benchmark": "davis16", "split": "val", "tracker": "x", "scores": {}})
    assert report_main([str(year)]) == 2
    assert capsys.readouterr().err == (f"samn report: error: not a benchmark summary: {year} (unknown benchmark "
                                       "'davis16'; one of got10k, trackingnet, lasot, otb, davis2016, davis2017)\n")
    typo = _written(tmp_path / "typo.json", {"benchmark": "got10k", "split": "val", "tracker": "x", "score": {}})
    assert report_main([str(typo)]) == 2
    assert capsys.readouterr().err == (f"samn report: error: not a benchmark summary: {typo} (fields a summary "
                                       "does not have: score; missing: scores)\n")


def test_report_vot_takes_a_repeated_tracker_once_with_a_note(capsys):
    from samn_tracker.reports.vot import ExperimentResult, select_trackers

    results = [ExperimentResult(t, "baseline", "reset", eao=0.3) for t in ("samn", "csrt")]
    chosen = select_trackers(results, "samn,csrt,samn")
    assert [r.tracker for r in chosen] == ["samn", "csrt"]
    assert capsys.readouterr().err == ("samn report vot: note: --trackers: samn given more than once; "
                                       "each is taken once\n")


def test_report_vot_shows_an_accuracy_inside_the_burn_in_as_not_measured(tmp_path, capsys, monkeypatch):
    """A of 0 with no failure counted no frame (sequences within the burn-in): '-' and a note,
    while an A of 0 with failures stays a measured 0; the attributes plot marks such a bar."""
    from samn_tracker.reports import vot

    short = vot.ExperimentResult("samn", "baseline", "reset", accuracy=0.0, robustness=0.0, length=10.0)
    failing = vot.ExperimentResult("csrt", "baseline", "reset", accuracy=0.0, robustness=2.0, length=10.0)
    marked = vot.mark_unmeasured([short, failing])
    assert capsys.readouterr().err == ("samn report vot: note: A not measured (-) for samn on baseline "
                                       "(10 frames per sequence): every frame lies within the burn-in of "
                                       "10 frames after an initialisation\n")
    rows = vot.to_markdown(vot.summary_table(marked)).splitlines()[2:]
    assert rows == ["| samn | - | - | 0.000 |", "| csrt | - | 0.000 | 2.000 |"]
    table = pd.DataFrame({"accuracy": [np.nan, np.nan], "failures": [0.0, 0.0], "frames": [0, 10],
                          "failures_per_100": [np.nan, 0.0]}, index=pd.Index(["occlusion", "empty"], name="attribute"))
    figures = []
    monkeypatch.setattr(vot, "_save", lambda figure, stem: figures.append(figure) or [])
    vot.plot_attributes({"samn": table}, tmp_path)
    left, right = figures[0].axes
    assert [t.get_text() for t in left.texts] == ["not measured", "no frames"]
    assert [t.get_text() for t in right.texts] == ["no frames"]


def test_report_vot_eao_legend_is_ranked_best_first(tmp_path, monkeypatch):
    """The EAO curves' legend lists the trackers by their EAO, best first, one without an
    EAO last."""
    from samn_tracker.reports import vot

    curve = [0.0, 0.9, 0.8, 0.7]
    results = [vot.ExperimentResult(t, "baseline", "reset", eao=eao, eao_curve=curve)
               for t, eao in (("low", 0.3), ("none", None), ("high", 0.6))]
    figures = []
    monkeypatch.setattr(vot, "_save", lambda figure, stem: figures.append(figure) or [])
    vot.plot_eao_curves(results, "baseline", tmp_path)
    legend = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert legend == ["high [0.600]", "low [0.300]", "none"]


def test_davis_fps_is_shown_as_measured_not_scaled_like_the_scores():
    """The DAVIS table shows scores in % but frames per second as they are."""
    table = reports.scores_table([davis_summary(2016, "a", 2)])
    assert table.loc["a", "FPS"] == 5.0
    assert table.loc["a", "J&F"] == round(100 * davis_summary(2016, "a", 2).scores["J&F"], 1)  # in %, shown rounded


def test_plotted_trackers_are_ranked_best_first_and_objects_by_the_best_trackers_score(monkeypatch):
    """Legends rank the trackers by their headline score, best first, and the objects plot
    lists the objects from the best-ranked tracker's best to its worst."""
    worse = Summary("davis2016", "val", "worse", {"J&F": 0.4}, per_object={"a_1": 0.3, "b_1": 0.5, "c_1": 0.4})
    better = Summary("davis2016", "val", "better", {"J&F": 0.7}, per_object={"a_1": 0.5, "b_1": 0.9, "c_1": 0.7})
    figures = []
    monkeypatch.setattr(reports, "_save", lambda figure, stem: figures.append(figure) or [])
    reports.objects_plot([worse, better], Path("objects"), "DAVIS 2016 val")
    (axes,) = figures[0].axes
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["better [70.0]", "worse [40.0]"]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["b", "c", "a"]


def test_a_got10k_run_without_times_has_no_fps_in_its_summary():
    """The toolkit's -1 (no time files) would show as a speed of -1.0 in the tables."""
    result = got10k.Got10kResult(scores=box_measures.got10k_scores(np.array([0.5, 0.7])),
                                 fps=box_measures.got10k_fps([]), per_sequence={})
    assert result.fps == -1.0 and "FPS" not in got10k.summary("a", "val", result).scores
    table = reports.scores_table([got10k.summary("a", "val", result), got10k_summary("b", [0.9])])
    assert "| a | 0.600 | 0.500 | 0.000 | - |" in reports.markdown(table, 3)


def test_a_plot_that_fails_midway_leaves_the_earlier_one_whole(tmp_path):
    """Report plots are replaced atomically, as every other result: a failed save (here the
    PDF's) keeps the earlier PNG and PDF and leaves no temporary file."""
    from matplotlib.figure import Figure

    from samn_tracker.atomic import save_figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [0, 1])
    png, pdf = save_figure(figure, tmp_path / "plot", dpi=50)
    before = {path: path.read_bytes() for path in (png, pdf)}
    original = figure.savefig

    def failing(target, **kwargs):
        if kwargs.get("format") == "pdf":
            raise OSError("disk full")
        original(target, **kwargs)

    figure.savefig = failing
    figure.add_subplot().plot([1, 0], [0, 1])
    with pytest.raises(OSError, match="disk full"):
        save_figure(figure, tmp_path / "plot", dpi=50)
    assert pdf.read_bytes() == before[pdf] and png.read_bytes() != before[png]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.pdf", "plot.png"]


def test_results_written_atomically_get_the_permissions_of_a_plain_open(tmp_path):
    """mkstemp makes 0600 files: results on a shared server would be unreadable by others."""
    import os

    from samn_tracker import atomic

    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "result.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "result.txt").stat().st_mode & 0o777 == 0o644
