"""Checked settings: every bad KEY=VALUE fails where it is given, with one line naming the key,
the value and what is allowed; every command turns it into exit status 2."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from samn_tracker import SettingError, build_tracker, preset
from samn_tracker.config import DCF_AUGMENTED_SAMPLES, PRESETS, TrackerConfig, parse_overrides
from samn_tracker.datasets.images import read_image
from samn_tracker.errors import InputError, UnknownSettingError
from samn_tracker.train.distill import DistillConfig
from samn_tracker.train.run_loop import step_seed
from samn_tracker.train.trainer import TrainConfig
from tests.conftest import SHORT_TUNING

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "samn_tracker" / "train" / "configs").glob("*.json"))


@pytest.mark.parametrize("items, key, value, allowed", [
    (["memory.interval=abc", "crop_size=-5"], "memory.interval", "'abc'", "an integer"),
    (["crop_size=-5"], "crop_size", "-5", ">= 32 and a multiple of 16"),
    (["crop_size=16"], "crop_size", "16", ">= 32 and a multiple of 16"),
    (["dcf.filter_size=50"], "dcf.filter_size", "50", "from 1 to 2 * crop_size / 16 + 1 = 33 with crop_size=256"),
    (["crop_size=32", "dcf.filter_size=6"], "dcf.filter_size", "6", "= 5 with crop_size=32 (or crop_size >= 48)"),
    (["dcf.memory_size=27"], "dcf.memory_size", "27", ">= 28 with dcf.augment=True"),
    (["dcf.memory_size=2"], "dcf.memory_size", "2", ">= 28 with dcf.augment=True"),
    (["tuning.lr=2"], "tuning.lr", "2", "a number > 0 and <= 1"),
    (["tuning.scale_jitter=11"], "tuning.scale_jitter", "11", "a number >= 0 and <= 10"),
    (["name=foo"], "name", "'foo'", "--preset instead"),
    (["crop_size=200"], "crop_size", "200", "a multiple of 16"),
    (["spatial_map=gauss"], "spatial_map", "'gauss'", "one of 'dcf', 'distance'"),
    (["dcf.augment=1"], "dcf.augment", "1", "True or False"),
    (["mask_threshold=1.5"], "mask_threshold", "1.5", "< 1"),
    (["mask_threshold=1"], "mask_threshold", "1", "> 0 and < 1"),
    (["mask_threshold=0"], "mask_threshold", "0", "> 0 and < 1"),
    (["dcf.init_gn_iters=0"], "dcf.init_gn_iters", "0", ">= 1"),
    (["dcf.init_cg_iters=0"], "dcf.init_cg_iters", "0", ">= 1"),
    (["search_factor=0.5"], "search_factor", "0.5", ">= 1"),
    (["tuning.batch=17"], "tuning.batch", "17", "from 1 to tuning.views = 16"),
    (["tuning.views=3"], "tuning.batch", "4", "from 1 to tuning.views = 3"),
    (["memory.max_entries=-1"], "memory.max_entries", "-1", "an integer or None >= 0"),
    (["memory=3"], "memory", "3", "a group of settings"),
    (["memory.interval.x=1"], "memory.interval.x", "1", "no sub-setting"),
    (["uncertainty.queue_length=0"], "uncertainty.queue_length", "0", ">= 1"),
    (["mask_check.max_area_change=0.5"], "mask_check.max_area_change", "0.5", "a number >= 1"),
    (["dcf.update_interval=0"], "dcf.update_interval", "0", "an integer >= 1"),
    (["initial_box_thin=1.0"], "initial_box_thin", "1.0", "a number >= 0 and < 1"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(items, key, value, allowed):
    with pytest.raises(SettingError) as caught:
        preset("lite").replace(**parse_overrides(items))
    message = str(caught.value)
    assert "\n" not in message and caught.value.key == key
    assert f"{key}={value}" in message and allowed in message


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_number_setting_must_be_finite(value):
    """An infinite search factor passes ``>= 1`` but crashes tracking (ZeroDivisionError):
    a number setting is refused unless it is finite."""
    with pytest.raises(SettingError, match="search_factor=.* expected a number") as caught:
        preset("lite").replace(search_factor=value)
    assert caught.value.key == "search_factor"


def test_unknown_keys_list_the_known_ones_of_their_group():
    with pytest.raises(SettingError, match=r"'memory\.intervall'.*memory\.interval, memory\.last_frame"):
        preset("lite").replace(**{"memory.intervall": 3})
    with pytest.raises(InputError, match="no_such_field"):
        TrackerConfig(crop_size=96).replace(no_such_field=1)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_dcf_filter_is_bounded_by_each_presets_crop(name):
    """A filter whose taps reach past the crop's feature grid failed in ``F.pad`` at the first frame."""
    config = preset(name)
    limit = 2 * config.crop_size // 16 + 1
    assert config.replace(**{"dcf.filter_size": limit}).dcf.filter_size == limit
    with pytest.raises(SettingError, match=rf"dcf\.filter_size={limit + 1} .* = {limit} "
                                           rf"with crop_size={config.crop_size} "):
        config.replace(**{"dcf.filter_size": limit + 1})


def test_a_small_dcf_memory_is_allowed_without_the_augmented_first_frame():
    for order in ({"dcf.augment": False, "dcf.memory_size": 2}, {"dcf.memory_size": 2, "dcf.augment": False}):
        assert preset("lite").replace(**order).dcf.memory_size == 2
    with pytest.raises(SettingError, match=r"dcf\.memory_size=2 "):
        preset("lite").replace(**{"dcf.augment": False, "dcf.memory_size": 2}).replace(**{"dcf.augment": True})


def test_the_preset_name_is_not_a_setting():
    """``--set name=foo`` ran untrained heads: the name picks the preset's built-in weights."""
    with pytest.raises(SettingError, match=r"setting name='lite' is not allowed: expected --preset instead"):
        preset("lite").replace(name="lite")
    with pytest.raises(UnknownSettingError) as caught:
        preset("lite").replace(nmae="foo")
    assert "name" not in caught.value.known and "crop_size" in caught.value.known
    assert "name" not in TrackerConfig.keys()
    variant = preset("lite").replace(crop_size=128)
    assert TrackerConfig.from_dict(variant.to_dict()) == variant  # a checkpoint's stored name is kept


@pytest.mark.parametrize("name, settings", [
    ("lite", {"crop_size": 32, "dcf.filter_size": 5}),
    ("paper", {"model.pretrained_backbone": False, "crop_size": 32, "dcf.filter_size": 5}),
    ("lite", {"dcf.memory_size": 28}),
    ("lite", {"dcf.augment": False, "dcf.memory_size": 2}),
    ("lite", {"tuning.lr": 1.0, "tuning.scale_jitter": 10.0}),
])
def test_the_boundary_values_allowed_track(davis_root, name, settings):
    """The values next to each refused one: the first frame, and tracked frames that add DCF
    samples and refit the filter on every one (``update_interval`` 1)."""
    frames = sorted((davis_root / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:4]
    mask = read_image(davis_root / "Annotations" / "480p" / "blackswan" / "00000.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paper's untrained heads
        tracker = build_tracker(name, overrides={**SHORT_TUNING, "dcf.update_interval": 1, **settings}, device="cpu")
    first = read_image(frames[0])
    predictions = [tracker.initialize(first, mask)] + [tracker.track(read_image(f)) for f in frames[1:]]
    for prediction in predictions:
        assert prediction.mask.shape == first.shape[:2] and np.isfinite(prediction.box).all()
    cfg, dcf = tracker.cfg.dcf, tracker.target.dcf
    accepted = sum(not p.uncertain for p in predictions[1:])
    assert dcf.num_samples == min((DCF_AUGMENTED_SAMPLES if cfg.augment else 1) + accepted, cfg.memory_size)
    assert dcf.filter.shape[1:] == (cfg.filter_size, cfg.filter_size)


def test_a_config_is_checked_whenever_it_is_built():
    with pytest.raises(SettingError, match="crop_size=100"):
        TrackerConfig(crop_size=100)
    with pytest.raises(SettingError, match="model.backbone='vgg'"):
        TrackerConfig.from_dict({**preset("lite").to_dict(), "model": {"backbone": "vgg"}})
    good = preset("paper").replace(**{"memory.interval": 10, "memory.max_entries": None, "search_factor": 4})
    assert good.memory.interval == 10 and preset("paper").memory.interval == 5
    assert TrackerConfig.from_dict(good.to_dict()) == good


def test_presets_and_shipped_training_configs_validate():
    for make in PRESETS.values():
        make()
    assert SHIPPED
    for path in SHIPPED:
        TrainConfig.from_json(path)


def test_training_config_files_are_checked_and_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": "many"}')
    with pytest.raises(SettingError, match=r"bad\.json: setting steps='many' .* an integer"):
        TrainConfig.from_json(bad)
    bad.write_text('{"stepz": 3}')
    with pytest.raises(SettingError, match="unknown setting 'stepz'"):
        TrainConfig.from_json(bad)
    bad.write_text('{"steps": 3')
    with pytest.raises(InputError, match="bad.json"):
        TrainConfig.from_json(bad)
    with pytest.raises(SettingError, match=r"source_weights=\['a'\] is not allowed: expected a list of numbers"):
        TrainConfig().replace(source_weights=["a"])
    # the tracker's limits where training feeds the same code (crops, jitter, Adam)
    for key, value, allowed in (("crop_size", 16, ">= 32 and a multiple of 16"), ("lr", 2, "> 0 and <= 1"),
                                ("scale_jitter", 11, ">= 0 and <= 10"), ("seed", -1, ">= 0")):
        with pytest.raises(SettingError, match=f"setting {key}={value} is not allowed: expected .*{allowed}"):
            TrainConfig().replace(**{key: value})
    with pytest.raises(SettingError, match="setting seed=-1 is not allowed"):
        DistillConfig().replace(seed=-1)


def test_a_large_training_seed_gives_step_seeds_a_generator_takes():
    """A seed of 2**25 made ``step_seed`` overflow torch's generator at the first step."""
    seed = TrainConfig(seed=2 ** 25).seed
    for rank, step in ((0, 0), (3, 10 ** 6)):
        torch.Generator().manual_seed(step_seed(seed, rank, step))
    assert step_seed(5, 1, 7) == (5 * 1_000_003 + 1) * 1_000_003 + 7  # small seeds draw as before


def test_one_grammar_python_or_json_literals_else_strings():
    parsed = parse_overrides(["a=10", "b=False", "c=true", "d=null", 'e=["davis:x", "y"]', "f=cuda:1",
                              "g = 3.5 ", "a=11"])
    assert parsed == {"a": 11, "b": False, "c": True, "d": None, "e": ["davis:x", "y"], "f": "cuda:1",
                      "g": 3.5}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_overrides(["crop_size"])


def test_trax_server_reads_the_same_grammar_from_its_variable(monkeypatch):
    from samn_tracker.vot.trax_server import options_from_args

    monkeypatch.setenv("SAMN_VOT_CONFIG", "crop_size=96 'memory.interval=10' use_dcf=False")
    options = options_from_args(["--set", "memory.interval=3"])
    assert options.overrides == {"crop_size": 96, "memory.interval": 3, "use_dcf": False}


def run_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


@pytest.mark.parametrize("item, said", [
    ("memory.interval=abc", ("memory.interval='abc'", "an integer")),
    ("dcf.memory_size=20", ("dcf.memory_size=20", ">= 28 with dcf.augment=True")),  # was a traceback
    ("name=foo", ("name='foo'", "--preset instead")),  # ran untrained heads
])
def test_track_set_with_a_bad_value_exits_2_with_one_line(tmp_path, item, said):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((64, 64, 3), 40 * i, np.uint8))
    result = run_cli("samn_tracker.cli", "track", str(frames), "--box", "10,10,20,20", "--out",
                     str(tmp_path / "out"), "--set", item, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert all(words in lines[0] for words in said), lines[0]
    assert not (tmp_path / "out").exists()


def test_train_set_with_a_bad_value_exits_2_with_one_line(tmp_path):
    result = run_cli("samn_tracker.train.cli", "--config", "lite_cpu", "--set", "steps=10",
                     "--set", "lr=-1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "lr=-1" in lines[0] and "> 0" in lines[0]


def set_parsers():
    """Each command's parser (name -> parser) and the arguments it needs beside --set."""
    from samn_tracker.cli import build_parser as samn
    from samn_tracker.evaluation.davis import build_parser as davis
    from samn_tracker.speed.cli import build_parser as bench
    from samn_tracker.train.cli import build_parser as train
    from samn_tracker.train.distill import build_parser as distill

    return [(samn(), ["track", "SOURCE", "--out", "o"]), (bench(), []), (train(), ["--config", "c"]),
            (distill(), []), (davis(), ["--root", "r"])]


@pytest.mark.parametrize("index", range(5))
def test_several_settings_after_one_set_as_the_help_texts_show(index):
    parser, needed = set_parsers()[index]
    args = vars(parser.parse_args([*needed, "--set", "a=1", "b.c=[1, 2]", "--set", "d=x"]))
    assert args.get("overrides", args.get("set")) == ["a=1", "b.c=[1, 2]", "d=x"]


def test_a_positional_after_the_settings_is_still_the_positional():
    from samn_tracker.cli import build_parser

    args = build_parser().parse_args(["track", "--set", "a=1", "b=2", "video.mp4", "--box", "1,1,5,5",
                                      "--out", "o"])
    assert (args.source, args.overrides, args.box) == ("video.mp4", ["a=1", "b=2"], "1,1,5,5")


def test_a_key_set_twice_is_refused_naming_it(capsys):
    parser, needed = set_parsers()[0]
    with pytest.raises(SystemExit) as exit:
        parser.parse_args([*needed, "--set", "memory.interval=10", "--set", "memory.interval=20"])
    assert exit.value.code == 2
    assert "samn track: error: argument --set: memory.interval is set twice" in capsys.readouterr().err


def test_a_config_names_one_of_the_presets():
    """The name picks the built-in weights: ``TrackerConfig(name="Lite")`` tracked with
    untrained heads after a warning."""
    import typing

    assert set(typing.get_args(typing.get_type_hints(TrackerConfig)["name"])) == set(PRESETS)
    with pytest.raises(SettingError, match="setting name='Lite' is not allowed: expected one of 'paper', 'lite'"):
        TrackerConfig(name="Lite")
