"""``samn eval keys`` on real DAVIS frames: the carried-mask scores of the memory read."""
from __future__ import annotations

import json

import pytest

from samn_tracker.evaluation.cli import main


def test_keys_report_carried_masks_per_sequence_and_mean(davis_root, tmp_path, capsys):
    """Rows for the learned keys, the backbone features and the unmoved mask, each a soft
    IoU; on car-shadow (a car crossing a plain road) ImageNet features carry the mask
    well, and the unmoved mask in crops that follow the truth is nearly right."""
    out = tmp_path / "keys.json"
    code = main(["keys", "--root", str(davis_root), "--sequences", "car-shadow", "blackswan",
                 "--stride", "10", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["sequences"]) == {"car-shadow", "blackswan"}
    for scores in result["sequences"].values():
        assert scores["queries"] >= 3
        assert all(0.0 <= scores[row] <= 1.0 for row in ("learned", "backbone", "unmoved"))
    car = result["sequences"]["car-shadow"]
    assert car["backbone"] > 0.5 and car["unmoved"] > 0.8
    assert result["temperature"] == 0.05
    assert "mean soft IoU" in capsys.readouterr().out


def test_keys_with_another_temperature_reads_differently(davis_root, tmp_path):
    outs = []
    for temperature in ("0.05", "0.5"):
        out = tmp_path / f"keys_{temperature}.json"
        assert main(["keys", "--root", str(davis_root), "--sequences", "car-shadow", "--stride", "15",
                     "--set", f"model.key_temperature={temperature}", "--out", str(out),
                     "--no-progress", "--device", "cpu"]) == 0
        outs.append(json.loads(out.read_text())["sequences"]["car-shadow"])
    assert outs[0]["learned"] == outs[1]["learned"] and outs[0]["unmoved"] == outs[1]["unmoved"]
    assert outs[0]["backbone"] > outs[1]["backbone"]  # a flat softmax blurs the carried mask


@pytest.mark.parametrize("out, message", [
    ("kdir", "--out {tmp}/kdir is a folder; give the name of a JSON file"),
    ("afile/sub.json", "cannot create --out {tmp}/afile/sub.json: {tmp}/afile is a file"),
])
def test_keys_refuse_an_out_that_cannot_be_written_before_any_work(tmp_path, capsys, out, message):
    """Checked first: a bad --out fails in one line before the network is even built."""
    (tmp_path / "kdir").mkdir()
    (tmp_path / "afile").write_text("x")
    assert main(["keys", "--root", str(tmp_path / "no-davis"), "--out", str(tmp_path / out)]) == 2
    assert capsys.readouterr().err == f"samn eval keys: error: {message.format(tmp=tmp_path)}\n"


def test_keys_take_comma_separated_sequences_each_once_with_a_note(davis_root, capsys, monkeypatch):
    """The other eval commands' --sequences: commas split, a repeat scored once (the network
    is stubbed: what is checked is which sequences get evaluated)."""
    from types import SimpleNamespace

    from samn_tracker.evaluation import key_quality

    evaluated = []
    monkeypatch.setattr(key_quality, "build_tracker", lambda *args: SimpleNamespace(net=None))
    monkeypatch.setattr(key_quality, "sequence_scores", lambda probe, root, name, stride, gap: evaluated.append(
        name) or {"queries": 1, "learned": 0.5, "backbone": 0.5, "unmoved": 0.5})
    assert main(["keys", "--root", str(davis_root), "--sequences", "blackswan,car-shadow", "blackswan",
                 "--no-progress"]) == 0
    assert evaluated == ["blackswan", "car-shadow"]
    assert capsys.readouterr().err == ("samn eval keys: note: --sequences: blackswan given more than once; "
                                       "each is taken once\n")


def test_keys_name_an_unknown_sequence_before_building_the_network(davis_root, capsys, monkeypatch):
    from samn_tracker.evaluation import key_quality

    def never(*args):
        raise AssertionError("the network was built before the sequences were checked")

    monkeypatch.setattr(key_quality, "build_tracker", never)
    assert main(["keys", "--root", str(davis_root), "--sequences", "blackswan,nosuch", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samn eval keys: error: frame folder not found: ") and err.rstrip().endswith("480p/nosuch")
