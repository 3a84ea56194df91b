"""One front door: every adapter builds its SAMN tracker through ``samn_tracker.build_tracker``,
and the pieces adapters share (device choice, the tracking loop, the feature grid) live once."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import samn_tracker
from samn_tracker import build, tracking_loop
from samn_tracker.config import MemoryConfig, preset
from samn_tracker.devices import pick_device
from samn_tracker.errors import InputError, SettingError
from samn_tracker.model.network import slow_cpu_precisions
from samn_tracker.tracking_loop import track_frames

PACKAGE = Path(samn_tracker.__file__).parent


def test_the_tracker_is_constructed_in_one_place_outside_tracker_py():
    found = [path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
             for line in path.read_text().splitlines()
             if re.search(r"\bSAMNTracker\(", line) and path.name != "tracker.py"]
    assert found == ["build.py"]


@pytest.fixture
def recorded(monkeypatch):
    """The tracker class replaced by a recorder of its constructor's arguments."""
    calls = []

    class Recorder:
        def __init__(self, config, weights=None, device="auto", seed=0, precision="fp32"):
            calls.append(dict(config=config, weights=weights, device=device, seed=seed, precision=precision))
            self.cfg, self.device, self.weights = config, device, weights

    monkeypatch.setattr("samn_tracker.tracker.SAMNTracker", Recorder)
    return calls


def test_every_adapter_goes_through_the_front_door(recorded, monkeypatch):
    from samn_tracker.evaluation.runner import samn_factory
    from samn_tracker.speed.trackers import bench_tracker
    from samn_tracker.vot.trax_server import options_from_args, tracker_for

    samn_factory("lite", overrides=["memory.interval=10"], seed=3)("cpu")
    bench_tracker("samn_lite", "cpu", overrides={"crop_size": 128}, precision="bf16")
    monkeypatch.setenv("SAMN_VOT_CONFIG", "crop_size=96")
    tracker_for(options_from_args(["--device", "cpu"]))
    samn_tracker.build_tracker("paper", weights="w.pth", overrides=["use_dcf=False"], device="cpu")
    assert [c["config"].memory.interval for c in recorded] == [10, 5, 5, 5]
    assert [c["config"].crop_size for c in recorded] == [256, 128, 96, 384]
    assert [c["seed"] for c in recorded] == [3, 0, 0, 0]
    assert [c["precision"] for c in recorded] == ["fp32", "bf16", "fp32", "fp32"]
    assert recorded[-1]["weights"] == "w.pth" and recorded[-1]["config"].use_dcf is False
    assert all(c["device"] == torch.device("cpu") for c in recorded)


def test_bad_settings_fail_before_the_tracker_is_built(recorded, monkeypatch):
    from samn_tracker.evaluation.runner import samn_factory
    from samn_tracker.speed.trackers import bench_tracker
    from samn_tracker.vot.trax_server import options_from_args, tracker_for

    with pytest.raises(SettingError, match="crop_size=-5"):
        samn_tracker.build_tracker(overrides=["crop_size=-5"])
    with pytest.raises(SettingError, match="no_such_field"):
        samn_factory("lite", overrides={"no_such_field": 1})
    with pytest.raises(SettingError, match="dcf.filter_size=50"):
        samn_tracker.build_tracker("lite", overrides=["dcf.filter_size=50"])
    # the preset's name picks its trained weights: every adapter refuses it as a setting
    monkeypatch.setenv("SAMN_VOT_CONFIG", "name=lite")
    for build_with_name in (lambda: samn_tracker.build_tracker("lite", overrides=["name=lite"]),
                            lambda: samn_factory("lite", overrides=["name=foo"]),
                            lambda: bench_tracker("samn_lite", "cpu", overrides={"name": "foo"}),
                            lambda: tracker_for(options_from_args(["--device", "cpu"]))):
        with pytest.raises(SettingError, match="name=.* expected --preset instead"):
            build_with_name()
    assert recorded == []
    assert build.tracker_config("lite", ["crop_size=64"]).crop_size == 64


def test_settings_given_where_the_preset_goes_are_one_input_error(recorded):
    """``build_tracker({"crop_size": 128})`` (the overrides as the first argument) failed
    with an AttributeError from inside the tracker."""
    for wrong in ({"crop_size": 128}, None):
        with pytest.raises(InputError, match=r"preset must be a name \(lite, paper\) or a TrackerConfig, got "
                                             r".*; settings go in overrides="):
            samn_tracker.build_tracker(wrong)
    assert recorded == []


def test_one_override_string_is_one_setting_and_pairs_are_refused_in_words():
    """A single ``"KEY=VALUE"`` was iterated as characters (``setting 'm' must look like
    KEY=VALUE``); a list of (KEY, value) pairs failed with an AttributeError."""
    assert build.tracker_config("lite", "memory.interval=10").memory.interval == 10
    with pytest.raises(InputError, match=r"setting \('crop_size', 64\) is not a 'KEY=VALUE' string: "
                                         r"give such strings or a mapping"):
        build.tracker_config("lite", [("crop_size", 64)])


def test_numpy_numbers_in_settings_are_the_numbers_they_hold():
    """A sweep ``for n in np.arange(5, 20, 5)`` gave ``memory.interval=np.int64(5) is not
    allowed: expected an integer``."""
    for interval in np.arange(5, 8):
        assert build.tracker_config("lite", {"memory.interval": interval}).memory.interval == interval
    config = build.tracker_config("lite", {"mask_threshold": np.float32(0.25), "use_dcf": np.bool_(False)})
    assert (config.mask_threshold, config.use_dcf) == (0.25, False)
    with pytest.raises(SettingError, match="memory.interval=2.5"):
        build.tracker_config("lite", {"memory.interval": np.float64(2.5)})
    replaced = preset("lite").replace(**{"memory.interval": np.int64(7), "crop_size": np.int32(128)})
    assert type(replaced.memory.interval) is int and type(replaced.crop_size) is int  # saved as plain numbers
    assert replaced == preset("lite").replace(**{"memory.interval": 7, "crop_size": 128})
    assert type(MemoryConfig(interval=np.int64(3)).interval) is int


def test_the_untrained_warning_says_whether_the_backbone_is_random_too():
    with pytest.warns(UserWarning, match=r"untrained \(the backbone random too: model.pretrained_backbone=False\)"):
        samn_tracker.build_tracker("paper", overrides=["model.pretrained_backbone=False"], device="cpu")


def test_fp16_on_a_cpu_is_a_note_that_it_is_slow():
    faster = "fp32" if "bf16" in slow_cpu_precisions() else "bf16 or fp32"
    with pytest.warns(UserWarning, match=f"fp16 on a CPU is slow .*; use {faster} there"):
        samn_tracker.build_tracker("lite", device="cpu", precision="fp16")


def test_bf16_on_a_cpu_without_bf16_kernels_is_a_note_that_it_is_slow():
    """Such a CPU (the project's AVX2 EPYC) ran lite 20x slower in bf16: no advice to use it."""
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has bf16 kernels")
    with pytest.warns(UserWarning, match="bf16 on a CPU is slow .*; use fp32 there"):
        samn_tracker.build_tracker("lite", device="cpu", precision="bf16")


def test_device_names_mean_the_same_everywhere():
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="'gpu0'"):
        pick_device("gpu0")
    with pytest.raises(InputError, match=r"device '\[0\]' is not a device name"):
        pick_device([0])  # was torch's TypeError
    assert pick_device(None) == pick_device("auto")  # was a TypeError: None is the default to a Python caller
    if torch.cuda.is_available():
        assert pick_device("auto", local_rank=0) == torch.device("cuda", 0)
        assert pick_device("cuda", local_rank=0) == torch.device("cuda", 0)
    else:
        assert pick_device("auto", local_rank=3) == torch.device("cpu")
        with pytest.raises(InputError, match="CUDA is not available"):
            pick_device("cuda")


@pytest.mark.parametrize("name", ["mps", "xpu", "meta", "cuda:99"])
def test_a_device_that_is_not_here_is_one_input_error(name):
    with pytest.raises(InputError, match=f"device '{name}' is not available here .*; use cpu"):
        pick_device(name)


def test_the_tracking_loop_initialises_once_times_each_call_and_reads_one_frame_ahead(monkeypatch):
    calls, pulled = [], []

    class Tracker:
        def initialize(self, image, region):
            calls.append(("init", int(image[0, 0]), region))
            return "first"

        def track(self, image):
            calls.append(("track", int(image[0, 0])))
            return f"frame {len(calls) - 1}"

    def frames():
        for i in range(3):
            pulled.append(i)
            yield np.full((2, 2), i)

    syncs = []
    monkeypatch.setattr(tracking_loop, "synchroniser", lambda device: lambda: syncs.append(len(calls)))
    steps = track_frames(Tracker(), frames(), region="box")
    first = next(steps)
    # one frame read ahead; the initialisation's device work finished on both sides
    assert pulled == [0, 1] and first.index == 0 and first.output == "first" and first.seconds >= 0
    assert syncs == [0, 1]
    rest = list(steps)
    assert [s.index for s in rest] == [1, 2] and [s.output for s in rest] == ["frame 1", "frame 2"]
    assert calls == [("init", 0, "box"), ("track", 1), ("track", 2)]
    # a tracked frame's queued device work overlaps the next call; the last one's is waited for
    assert syncs == [0, 1, 3]

    def unreadable_third():
        yield from (np.full((2, 2), i) for i in range(2))
        raise OSError("frame 2 is corrupt")

    steps = track_frames(Tracker(), unreadable_third(), region="box")
    assert [s.index for s in (next(steps), next(steps))] == [0, 1]  # frame 1 still given out
    with pytest.raises(OSError, match="frame 2"):
        next(steps)


def test_training_draws_the_spatial_map_the_tracker_draws():
    """Same centre and width: the training map (crop pixels) equals the tracker's distance map
    (cells) up to float rounding, both floored at half a cell."""
    from samn_tracker.crops import CropWindow
    from samn_tracker.feature_grid import STRIDE, pixel_to_cell
    from samn_tracker.train.trainer import _gaussian

    tracker = samn_tracker.build_tracker(preset=samn_tracker.preset("lite").replace(crop_size=128),
                                         device="cpu")
    window = CropWindow(cx=63.5, cy=63.5, side=128.0, out_size=128)  # crop pixel = frame pixel
    sigma = tracker.cfg.dcf.sigma_factor
    for box in ([30.0, 40.0, 48.0, 20.0], [60.0, 10.0, 8.0, 8.0]):
        theirs = tracker._distance_map(np.array(box), window)[0, 0]
        cx, cy = box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2
        coords = (torch.arange(128 // STRIDE, dtype=torch.float32) + 0.5) * STRIDE - 0.5
        ours = _gaussian(coords, torch.tensor([cx]), torch.tensor([cy]),
                         torch.tensor([box[2] * sigma]), torch.tensor([box[3] * sigma]))[0]
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
        assert pixel_to_cell(cx) == pytest.approx(float(theirs.amax(0).argmax()), abs=0.5)
        assert pixel_to_cell(cy) == pytest.approx(float(theirs.amax(1).argmax()), abs=0.5)
