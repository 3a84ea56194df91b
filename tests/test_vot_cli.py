"""``samn vot`` (workspace, local stack) and ``samn report vot``: program names, the one
tracker registry, and the local stack built from the real DAVIS sequences."""
import configparser
import os
from pathlib import Path

import pytest

from samn_tracker import cli
from samn_tracker.datasets.roots import DATA_VARIABLE
from samn_tracker.vot.workspace import REGISTRY, create_workspace, trackers_ini

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
