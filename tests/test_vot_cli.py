"""``samn vot`` (workspace, local stack) and ``samn report vot``: program names, the one
tracker registry, and the local stack built from the real DAVIS sequences."""
import configparser
import os
from pathlib import Path

import numpy as np
import pytest

from samn_tracker import cli
from samn_tracker.datasets.roots import DATA_VARIABLE
from samn_tracker.vot.workspace import REGISTRY, ini_sections, plan_workspace, trackers_ini, write_workspace

ROOT = Path(__file__).resolve().parents[1]


def read_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser


def test_the_checkout_registry_is_the_package_registry():
    """A link in a checkout; a source distribution keeps no links, so there a copy."""
    checkout = ROOT / "trackers.ini"
    assert os.path.samefile(checkout, REGISTRY) or checkout.read_text() == REGISTRY.read_text()


def test_workspace_registry_is_the_package_registry_without_paths(tmp_path):
    source, written = read_ini(REGISTRY.read_text()), read_ini(trackers_ini())
    assert {"samn", "samn_mask", "samn_paper"} <= set(written.sections())
    assert written.sections() == source.sections()
    for name in source.sections():
        assert "paths" not in written[name]
        assert dict(written[name]) == {k: v for k, v in source[name].items() if k != "paths"}
    workspace = write_workspace(plan_workspace(tmp_path / "ws", "vot2018"))
    assert (workspace / "trackers.ini").read_text() == trackers_ini()
    assert "vot2018.yaml" in (workspace / "config.yaml").read_text()


MINE = "[mine]\nlabel = my tracker\nprotocol = trax\ncommand = true\n"


def test_a_second_workspace_needs_overwrite_which_replaces_it_and_keeps_the_users_trackers(
        davis_root, tmp_path, capsys):
    """A workspace is not rewritten by accident, and once replaced on purpose it holds no
    part of the old one (the sequences and results of another stack) but the user's trackers."""
    ws = tmp_path / "ws"
    assert cli.main(["vot", "workspace", str(ws), "--stack", "local_box", "--davis", str(davis_root)]) == 0
    with open(ws / "trackers.ini", "a") as registry:
        registry.write("\n" + MINE)
    (ws / "results" / "mine").mkdir(parents=True)
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.main(["vot", "workspace", str(ws), "--stack", "vot2018"]) == 2
    assert capsys.readouterr().err == (f"samn vot workspace: error: {ws} already holds a VOT workspace; add "
                                       "--overwrite to replace it (its results, analysis and cache go too)\n")
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == before
    assert cli.main(["vot", "workspace", str(ws), "--stack", "vot2018", "--overwrite"]) == 0
    assert capsys.readouterr().err == (f"samn vot workspace: replacing the workspace in {ws} (config.yaml, "
                                       "results/, sequences/, trackers.ini); keeping its own trackers.ini "
                                       "entries mine\n")
    assert sorted(p.name for p in ws.iterdir()) == ["config.yaml", "trackers.ini"]
    assert "vot2018.yaml" in (ws / "config.yaml").read_text()
    registry = (ws / "trackers.ini").read_text()
    assert registry.startswith(trackers_ini()) and ini_sections(registry)["mine"] == MINE
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]  # no staging folder left


@pytest.mark.parametrize("make, argv, message", [
    (None, ["--stack", "local_box"], f"no data folder: give --davis DIR or set {DATA_VARIABLE}"),
    (None, ["--stack", "local_box", "--davis", "/nonexistent"], "data folder not found: /nonexistent (from --davis)"),
    (None, ["--stack", "vot2018lt", "--davis", "DAVIS"],
     "--davis is for the local stacks (local_box, local_mask, local_lt)"),
    ("file", ["--stack", "vot2018"], "{ws} is a file; give a folder for the workspace"),
    ("folder", ["--stack", "vot2018", "--overwrite"],
     "{ws} is a folder with other files in it (no config.yaml); give a new or empty folder"),
])
def test_a_refused_workspace_writes_nothing(tmp_path, monkeypatch, capsys, make, argv, message):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    ws = tmp_path / "ws"
    if make == "file":
        ws.write_text("x")
    elif make == "folder":
        ws.mkdir()
        (ws / "notes.txt").write_text("x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert cli.main(["vot", "workspace", str(ws), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samn vot workspace: error: " + message.format(ws=ws)) and err.count("\n") == 1
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_workspace_path_beyond_ascii_is_refused_before_writing(tmp_path, capsys):
    """The TraX library fails with a protocol error on such a path, for every tracker."""
    ws = tmp_path / "ws ü"
    assert cli.main(["vot", "workspace", str(ws), "--stack", "vot2018"]) == 2
    err = capsys.readouterr().err
    assert "outside ASCII" in err and err.count("\n") == 1 and not ws.exists()
    assert cli.main(["vot", "workspace", str(tmp_path / "ws u"), "--stack", "vot2018"]) == 0


def test_a_workspace_that_fails_while_building_leaves_nothing(tmp_path, capsys):
    davis = tmp_path / "davis"
    (davis / "JPEGImages" / "480p" / "empty").mkdir(parents=True)  # a sequence without frames
    assert cli.main(["vot", "workspace", str(tmp_path / "ws"), "--stack", "local_box", "--davis", str(davis)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["davis"]


def test_a_local_workspace_takes_its_sequences_from_the_environment(davis_root, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_VARIABLE, str(davis_root))
    workspace = write_workspace(plan_workspace(tmp_path / "new" / "ws", "local_mask"))
    assert (workspace / "sequences" / "list.txt").read_text().split() == [
        "blackswan", "bmx-trees", "car-roundabout", "car-shadow"]


@pytest.mark.parametrize("argv, prog", [(["vot", "workspace", "--help"], "samn vot workspace"),
                                        (["vot", "local-stack", "--help"], "samn vot local-stack"),
                                        (["report", "vot", "--help"], "samn report vot"),
                                        (["report", "bench", "--help"], "samn report bench")])
def test_subcommands_name_their_program(argv, prog, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: {prog} ")


def test_vot_names_its_commands(capsys):
    assert cli.main(["vot"]) == 2
    assert capsys.readouterr().err == "samn vot: error: choose a command from workspace, local-stack (samn vot --help)\n"
    assert cli.main(["vot", "--help"]) == 0
    assert "workspace" in capsys.readouterr().out


def test_local_stack_needs_a_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    assert cli.main(["vot", "local-stack", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"samn vot local-stack: error: no data folder: give --davis DIR or set {DATA_VARIABLE}"


def test_local_mask_stack_from_the_environment(davis_root, tmp_path, monkeypatch):
    pytest.importorskip("vot.region.io")
    monkeypatch.setenv(DATA_VARIABLE, str(davis_root))
    assert cli.main(["vot", "local-stack", "--out", str(tmp_path), "--groundtruth", "mask",
                     "--max-frames", "3"]) == 0
    assert (tmp_path / "list.txt").read_text().split() == ["blackswan", "bmx-trees", "car-roundabout",
                                                          "car-shadow"]
    lines = (tmp_path / "blackswan" / "groundtruth.txt").read_text().splitlines()
    assert len(lines) == 3 and all(line.startswith("m") for line in lines)
    assert len(list((tmp_path / "blackswan" / "color").iterdir())) == 3


def small_davis(root: Path, names=("one", "two"), frames: int = 4) -> Path:
    """A DAVIS 2016 folder of tiny sequences with masks and no boxes/ (boxes come from the masks)."""
    from PIL import Image

    for name in names:
        (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
        (root / "Annotations" / "480p" / name).mkdir(parents=True)
        for index in range(frames):
            Image.new("RGB", (16, 12)).save(root / "JPEGImages" / "480p" / name / f"{index:05d}.jpg")
            mask = Image.new("L", (16, 12))
            mask.paste(255, (2 + index, 3, 8 + index, 9))
            mask.save(root / "Annotations" / "480p" / name / f"{index:05d}.png")
    return root


def local_stack(davis: Path, out: Path, *options: str) -> int:
    return cli.main(["vot", "local-stack", "--davis", str(davis), "--out", str(out), *options])


@pytest.mark.parametrize("options, message", [
    (["--max-frames", "0"], "--max-frames must be at least 1, got 0"),
    (["--max-frames", "-2"], "--max-frames must be at least 1, got -2"),
    (["--anchor-spacing", "0"], "--anchor-spacing must be at least 1, got 0"),
    (["--groundtruth", "mask", "--anchor-spacing", "-3"], "--anchor-spacing must be at least 1, got -3"),
    (["--sequences", "one,nope"], "frame folder not found: {davis}/JPEGImages/480p/nope"),
    (["--out", "{tmp}/afile/sub"], "cannot create --out {tmp}/afile/sub: {tmp}/afile is a file"),
    (["--out", "{tmp}/afile"], "--out {tmp}/afile is a file; give a folder"),
    (["--out", "{tmp}/davis"], "--out {tmp}/davis is a folder with other files in it (no list.txt)"),
    (["--away-every", "3"], "--away-every and --away-for are both at least 1 (away spans) or both 0 (none), "
                            "got 3 and 0"),
    (["--away-every", "-1", "--away-for", "2"], "--away-every and --away-for are both at least 1"),
    (["--away-every", "2", "--away-for", "2", "--groundtruth", "mask"],
     "away spans need --groundtruth box: the long-term measures score boxes"),
    (["--away-every", "2", "--away-for", "2", "--sequences", "one"],
     "away spans take their frames from another sequence of the stack; give at least two sequences"),
])
def test_local_stack_refuses_bad_options_in_one_line_and_writes_nothing(tmp_path, capsys, options, message):
    davis = small_davis(tmp_path / "davis")
    (tmp_path / "afile").write_text("x")
    options = [o.format(tmp=tmp_path) for o in options]
    before = sorted(tmp_path.rglob("*"))
    assert local_stack(davis, tmp_path / "ls", *options) == 2
    err = capsys.readouterr().err
    assert err.startswith("samn vot local-stack: error: " + message.format(davis=davis, tmp=tmp_path))
    assert err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_a_local_stack_that_fails_while_writing_leaves_the_earlier_one(tmp_path, capsys):
    davis = small_davis(tmp_path / "davis")
    out = tmp_path / "ls"
    assert local_stack(davis, out, "--max-frames", "3") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (davis / "Annotations" / "480p" / "two" / "00001.png").unlink()  # found only when writing masks
    (davis / "boxes").mkdir()
    for name in ("one", "two"):
        (davis / "boxes" / f"{name}.txt").write_text("1,1,4,4\n" * 4)
    assert local_stack(davis, out, "--groundtruth", "mask") == 2
    assert capsys.readouterr().err.startswith("samn vot local-stack: error: missing DAVIS annotation")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["davis", "ls"]


def test_local_stack_replaces_an_earlier_one_and_takes_each_name_once(tmp_path, capsys):
    davis = small_davis(tmp_path / "davis")
    out = tmp_path / "ls"
    assert local_stack(davis, out) == 0
    assert local_stack(davis, out, "--sequences", "two", "two", "--max-frames", "3", "--anchor-spacing", "1") == 0
    captured = capsys.readouterr()
    assert captured.err == ("samn vot local-stack: note: --sequences: two given more than once; "
                            "each is taken once\n")
    assert captured.out.endswith(f"wrote 1 sequence to {out}\n")
    assert sorted(p.name for p in out.iterdir()) == ["list.txt", "two"]
    assert (out / "list.txt").read_text() == "two\n"
    assert (out / "two" / "anchor.value").read_text().split() == ["1", "1", "-1"]
    assert len((out / "two" / "groundtruth.txt").read_text().splitlines()) == 3  # boxes from the masks


def test_away_spans_cut_to_the_next_sequence_and_mark_the_target_absent(tmp_path, capsys):
    davis = small_davis(tmp_path / "davis", names=("one", "two", "three"), frames=5)
    from PIL import Image
    Image.new("L", (16, 12)).save(davis / "Annotations" / "480p" / "one" / "00004.png")  # one's target gone
    out = tmp_path / "ls"
    assert local_stack(davis, out, "--away-every", "2", "--away-for", "3") == 0
    one = [p.resolve() for p in sorted((out / "one" / "color").iterdir())]
    frames = davis / "JPEGImages" / "480p"
    after = [frames / "three" / f"{i:05d}.jpg" for i in range(5)]  # the next name in the sorted list
    own = [frames / "one" / f"{i:05d}.jpg" for i in range(5)]
    # two of its own, three of the next sequence, two more, the next three (cycling), the last
    assert one == [own[0], own[1], *after[0:3], own[2], own[3], after[3], after[4], after[0], own[4]]
    lines = (out / "one" / "groundtruth.txt").read_text().splitlines()
    absent = "nan,nan,nan,nan"
    assert lines[:2] == ["2,3,6,6", "3,3,6,6"] and lines[2:5] == [absent] * 3
    assert lines[5:7] == ["4,3,6,6", "5,3,6,6"] and lines[7:] == [absent] * 4  # the last: no target in its mask
    assert "length=11" in (out / "one" / "sequence").read_text()
    assert sorted(p.name for p in (out / "one").iterdir()) == ["anchor.value", "color", "groundtruth.txt", "sequence"]
    last = [p.resolve() for p in sorted((out / "two" / "color").iterdir())]
    assert last[2] == frames / "one" / "00000.jpg"  # the last sequence cuts to the first
    capsys.readouterr()
    for index in range(5):  # another frame size: refused before anything is written
        Image.new("RGB", (20, 12)).save(frames / "three" / f"{index:05d}.jpg")
    assert local_stack(davis, tmp_path / "other", "--away-every", "2", "--away-for", "3") == 2
    assert capsys.readouterr().err == ("samn vot local-stack: error: three's frames are 20x12, one's 16x12: "
                                       "an away span needs frames of the sequence's size\n")
    assert not (tmp_path / "other").exists()


def test_vot_toolkit_reads_an_absent_target_as_no_region(tmp_path):
    load_dataset = pytest.importorskip("vot.dataset").load_dataset
    is_special = pytest.importorskip("vot.region").is_special
    davis = small_davis(tmp_path / "davis", frames=3)
    assert local_stack(davis, tmp_path / "ls", "--away-every", "2", "--away-for", "1") == 0
    groundtruth = load_dataset(str(tmp_path / "ls"))["one"].groundtruth()
    assert [is_special(region) for region in groundtruth] == [False, False, True, False]


def test_each_stack_has_its_file_and_a_checkout_workspace():
    from samn_tracker.vot import STACKS_DIR
    from samn_tracker.vot.workspace import STACKS

    assert sorted(p.stem for p in STACKS_DIR.glob("*.yaml")) == sorted(STACKS)
    assert sorted(p.name for p in (ROOT / "vot_workspace").iterdir() if p.is_dir()) == sorted(STACKS)
    for stack in STACKS:
        assert f"samn_tracker/vot/stacks/{stack}.yaml\n" in (ROOT / "vot_workspace" / stack / "config.yaml").read_text()


def test_every_local_stack_option_has_help_and_no_boxes_folder_is_needed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["vot", "local-stack", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--groundtruth {box,mask} groundtruth.txt", "--max-frames N keep",
                   "--anchor-spacing N an anchor", "--no-tags write no", "--away-every N long-term stack",
                   "--away-for N frames of each away span"):
        assert option in text
    assert "else from the masks" in text


def test_derived_tags_compare_sizes_five_frames_apart_and_motion_of_the_centre():
    """``size_change``: sqrt(area) against 5 frames earlier, so a jump from 20 to 30 px is
    tagged for the five frames that still see the old size; a box grown about its centre has
    not moved (``motion_change`` follows the centre, not the top-left corner)."""
    from samn_tracker.vot.local_stack import derived_tags

    boxes = np.tile([10.0, 10.0, 20.0, 20.0], (12, 1))
    boxes[6:] = [5.0, 5.0, 30.0, 30.0]
    tags = derived_tags(boxes)
    assert tags["size_change"].tolist() == [False] * 6 + [True] * 5 + [False]
    assert not tags["motion_change"].any()
    assert tags["empty"].tolist() == (~tags["size_change"]).tolist()
    moving = np.tile([10.0, 10.0, 20.0, 20.0], (4, 1))
    moving[2:, 0] += 10.0  # the centre jumps 10 px: a change of velocity over 0.15 x 20
    assert derived_tags(moving)["motion_change"].tolist() == [False, False, True, True]


def test_anchors_go_forward_while_at_least_half_the_sequence_lies_ahead():
    """VOT2020's rule: an anchor with exactly half the frames ahead (itself included) still
    runs forward."""
    from samn_tracker.vot.local_stack import anchors

    assert anchors(2, 1).tolist() == [1, 1]
    assert anchors(10, 5).tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert anchors(11, 5).tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1]
