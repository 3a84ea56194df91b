"""``samn vot`` (workspace, local stack) and ``samn report vot``: program names, the one
tracker registry, and the local stack built from the real DAVIS sequences."""
import configparser
import os
from pathlib import Path

import pytest

from samn_tracker import cli
from samn_tracker.datasets.roots import DATA_VARIABLE
from samn_tracker.vot.workspace import REGISTRY, create_workspace, ini_sections, trackers_ini

ROOT = Path(__file__).resolve().parents[1]


def read_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser


def test_the_checkout_registry_is_the_package_registry():
    assert os.path.samefile(ROOT / "trackers.ini", REGISTRY)


def test_workspace_registry_is_the_package_registry_without_paths(tmp_path):
    source, written = read_ini(REGISTRY.read_text()), read_ini(trackers_ini())
    assert {"samn", "samn_mask", "samn_paper"} <= set(written.sections())
    assert written.sections() == source.sections()
    for name in source.sections():
        assert "paths" not in written[name]
        assert dict(written[name]) == {k: v for k, v in source[name].items() if k != "paths"}
        assert read_ini(trackers_ini("/src"))[name].get("paths", "/src") == "/src"
    workspace = create_workspace(tmp_path / "ws", "vot2018")
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
    (None, ["--stack", "vot2018", "--davis", "DAVIS"], "--davis is for the local stacks (local_box, local_mask)"),
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


def test_a_workspace_that_fails_while_building_leaves_nothing(tmp_path, capsys):
    davis = tmp_path / "davis"
    (davis / "JPEGImages" / "480p" / "empty").mkdir(parents=True)  # a sequence without frames
    assert cli.main(["vot", "workspace", str(tmp_path / "ws"), "--stack", "local_box", "--davis", str(davis)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["davis"]


def test_a_local_workspace_takes_its_sequences_from_the_environment(davis_root, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_VARIABLE, str(davis_root))
    workspace = create_workspace(tmp_path / "new" / "ws", "local_mask")
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
