"""`samn bench` on real DAVIS frames: its JSON / Markdown / PNG outputs, the long-video mode,
and the inference preparation (BatchNorm folding, channels-last, reduced precision) it measures."""
from __future__ import annotations

import json
import warnings

import matplotlib.pyplot as plt
import pytest
import torch

from samn_tracker.datasets.roots import DATA_VARIABLE
from samn_tracker.reports.cli import main as report_main
from samn_tracker.reports.speed import bench_markdown, claim_line, log_ticks, plot_bench
from samn_tracker.speed import main
from samn_tracker.speed.cli import build_parser, sequences_of
from samn_tracker.speed.against import compare_runs
from samn_tracker.speed.long_video import judged_claim, loop_period, ping_pong, windows
from samn_tracker.speed.targets import judged_targets
from samn_tracker.config import preset
from samn_tracker.model.decoder import foreground_probability
from samn_tracker.model.network import SAMNNetwork, slow_cpu_precisions
from samn_tracker.tracker import HOST_PARTS, STAGES

from conftest import SHORT_TUNING

TINY = ["--set", "crop_size=64", "--no-progress", "--threads", "1"]


def bench_args(davis_root, out, *extra):
    return ["--data", str(davis_root), "--sequences", "car-shadow", "--out", str(out), *TINY, *extra]


@pytest.fixture(scope="module")
def bench_result(davis_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained-heads warning
        code = main(bench_args(davis_root, out, "--trackers", "samn_lite,csrt,kcf",
                               "--max-frames", "6", "--repeat", "2", "--warmup", "1", "--batch", "3",
                               "--profile", "3"))
    assert code == 0
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text(), out


def test_bench_reports_speed_per_stage_memory_and_accuracy_for_every_tracker(bench_result):
    result, table, _ = bench_result
    assert set(result["trackers"]) == {"samn_lite", "csrt", "kcf"}
    assert result["meta"]["frames_per_pass"] == 5 and result["meta"]["sequences"] == ["car-shadow"]
    for name, entry in result["trackers"].items():
        speed, acc = entry["speed"], entry["accuracy"]
        assert speed["fps"] > 0 and len(speed["fps_per_pass"]) == 2
        assert speed["fps_min"] <= speed["fps"] <= speed["fps_max"]
        assert speed["ms_per_frame"]["min"] <= speed["ms_per_frame"]["mean"] <= speed["ms_per_frame"]["max"]
        assert speed["rss_peak_mb"] > 0
        for key in ("ao", "sr50", "success_auc", "mean_iou"):
            assert 0.0 <= acc[key] <= 1.0, (name, key)
        assert 0.0 <= acc["sequences"]["car-shadow"]["mean_iou"] <= 1.0
        assert acc["sequences"]["car-shadow"]["lost_frames"] == speed["lost_frames"]
        assert f"| {name} |" in table
    # Box trackers initialised on the ground-truth box stay on a slowly moving car for 5 frames.
    assert result["trackers"]["csrt"]["accuracy"]["ao"] > 0.5


def test_samn_frames_whose_mask_was_refused_count_as_lost(davis_root):
    from samn_tracker.speed.runs import load_sequence, run_sequence
    from samn_tracker.speed.trackers import SamnBench

    seq = load_sequence(davis_root, "car-shadow", max_frames=6)

    def lost(**check):
        settings = {**SHORT_TUNING, **{f"mask_check.{k}": v for k, v in check.items()}}
        bench = SamnBench("samn_lite", None, settings, "cpu")
        return run_sequence(bench, seq, keep_masks=False, progress=False).lost_frames

    assert lost(enabled=False) == 0
    # an area that may not change at all refuses every mask
    assert lost(max_area_change=1.0, accept_growth_after=0, accept_shrink_after=0) == 5


def test_batch_tracks_copies_in_lockstep_with_the_accuracy_of_one_at_a_time(bench_result):
    result, table, _ = bench_result
    batched = result["trackers"]["samn_lite"]["batched"]
    assert (batched["batch"], batched["videos"], batched["tracked_frames"]) == (3, 3, 15)
    assert batched["frames_per_s"] > batched["frames_per_s_with_init"] > 0
    for key, change in batched["change_from_one_at_a_time"].items():
        assert abs(change) < 0.01, key
    assert batched["accuracy"]["ao"] == pytest.approx(result["trackers"]["samn_lite"]["accuracy"]["ao"], abs=0.01)
    # the three videos are copies of car-shadow: on a CPU each row of the batch tracks alike
    alone, copies = result["trackers"]["samn_lite"]["accuracy"]["sequences"]["car-shadow"], \
        batched["sequences"]["car-shadow"]
    assert copies["copies_mean_iou"] == [copies["mean_iou"]] * 3
    assert copies["mean_iou"] == pytest.approx(alone["mean_iou"], abs=0.01)
    assert copies["lost_frames"] == alone["lost_frames"]
    assert f"(3 copies: all {copies['mean_iou']:.3f}) |" in table
    assert "batched" not in result["trackers"]["csrt"]
    # Stage times of the batched steps, per tracked frame: every stage ran, and together
    # they account for the step time (the rest is input checks and bookkeeping).
    stages = batched["stages_ms_per_frame"]
    assert set(stages) == set(STAGES) and min(v for k, v in stages.items() if k != "memory_write") > 0
    assert sum(stages.values()) <= 1e3 / batched["frames_per_s"] * 1.001
    assert "## Lockstep" in table and "| samn_lite | 3 | 3 |" in table


def test_report_bench_writes_the_same_table_and_plot_again(bench_result, tmp_path):
    result, table, out = bench_result
    (tmp_path / "bench.json").write_text(json.dumps(result, indent=1))
    assert report_main(["bench", str(tmp_path / "bench.json")]) == 0
    assert (tmp_path / "bench.md").read_text() == table
    for folder in (out, tmp_path):
        assert plt.imread(folder / "bench.png").shape[:2] == (528, 1320)
    plot_bench(dict(result, trackers={}), tmp_path / "none.png")  # every tracker skipped: still a plot
    assert plt.imread(tmp_path / "none.png").shape[:2] == (528, 1320)


def test_the_per_sequence_legend_sits_above_the_bars(bench_result, tmp_path, monkeypatch):
    """Inside the axes it sat over the highest bars (car-shadow's CSRT bar at 0.84)."""
    from samn_tracker.reports import speed as speed_report

    figures = []
    monkeypatch.setattr(speed_report, "_save", lambda fig, path: figures.append(fig))
    plot_bench(bench_result[0], tmp_path / "bench.png")
    figures[0].canvas.draw()
    bars = figures[0].axes[1]
    assert bars.get_legend().get_window_extent().y0 >= bars.get_window_extent().y1 - 1
    assert "1 thread;" in figures[0].get_suptitle()  # the fixture's --threads 1, not "1 threads"


def test_bench_gives_each_trackers_iou_j_and_f_and_lost_frames_per_sequence(bench_result):
    result, table, _ = bench_result
    cells = {name: entry["accuracy"]["sequences"]["car-shadow"] for name, entry in result["trackers"].items()}
    row = " | ".join(f"{c['mean_iou']:.3f} · {'–' if c.get('jf') is None else format(c['jf'], '.3f')} · "
                     f"{c['lost_frames']}" for c in cells.values())
    assert "| sequence | samn_lite | csrt | kcf |" in table and f"| car-shadow | {row} |" in table


def test_sequences_default_to_the_eval_split_of_the_data_folder(davis_root, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    args = build_parser().parse_args(["--out", str(tmp_path)])
    assert main(["--out", str(tmp_path), "--trackers", "kcf"]) == 2
    assert f"give --data DIR or set {DATA_VARIABLE}" in capsys.readouterr().err
    monkeypatch.setenv(DATA_VARIABLE, str(davis_root))
    assert sequences_of(args) == (davis_root, ["blackswan", "bmx-trees", "car-roundabout", "car-shadow"])
    args = build_parser().parse_args(["--split", "train"])
    assert sequences_of(args)[1] == ["breakdance", "camel", "cows", "dance-twirl"]


def test_an_out_that_cannot_be_a_folder_is_refused_before_measuring(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        assert main(["--out", str(out), "--trackers", "kcf", "--data", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "is a file" in err, err


def test_samn_stage_times_add_up_to_the_frame_time_and_masks_get_j_and_f(bench_result):
    result, table, _ = bench_result
    samn = result["trackers"]["samn_lite"]
    stages = samn["speed"]["stages_ms"]
    assert set(stages) == set(STAGES) | {"other"}
    assert all(stages[s] >= 0 for s in STAGES)
    total = sum(stages[s] for s in STAGES)
    assert 0.5 * samn["speed"]["ms_per_frame"]["mean"] <= total <= samn["speed"]["ms_per_frame"]["mean"]
    for key in ("jf", "j", "f"):
        assert 0.0 <= samn["accuracy"][key] <= 1.0
    assert result["trackers"]["csrt"]["accuracy"]["jf"] is None
    assert result["trackers"]["csrt"]["speed"]["stages_ms"] == {}
    # the host's wall time split into the parts of a step: on a CPU they hold the whole call
    host = samn["speed"]["host_ms"]
    assert set(host) == set(HOST_PARTS) and all(host[p] > 0 for p in HOST_PARTS)
    assert 0.8 * samn["speed"]["ms_per_frame"]["mean"] <= sum(host.values()) <= samn["speed"]["ms_per_frame"]["mean"]
    assert result["trackers"]["csrt"]["speed"]["host_ms"] == {}
    lockstep = samn["batched"]["host_ms_per_frame"]
    assert set(lockstep) == set(HOST_PARTS) and sum(lockstep.values()) <= 1e3 / samn["batched"]["frames_per_s"]
    assert "## Host time per tracked frame" in table and "| samn_lite, lockstep batch 3 |" in table
    assert samn["details"]["crop_size"] == 64 and samn["details"]["trained"] in (True, False)
    assert set(result["ratios"]) == {"samn_lite fps / csrt fps"}


def test_profile_counts_what_each_frame_asks_of_the_machine(bench_result):
    """``--profile 3``: three frames after the warm-up one, under torch.profiler, for the
    SAMN preset only; on a CPU nothing is launched on a device, and the host's top
    operators are the network's convolutions."""
    result, table, out = bench_result
    profile = result["trackers"]["samn_lite"]["profile"]
    assert profile["sequence"] == "car-shadow" and profile["frames"] == 3 and profile["warmup"] == 1
    assert profile["launches_per_frame"] == 0 and profile["device_busy_ms_per_frame"] == 0
    # crops, DCF, memory read, paste-back, host work: dozens of operators, not the passes' hundreds
    assert 20 < profile["operators_outside_passes_per_frame"] < 400
    names = [name for name, _ in profile["top_host_ms_per_frame"]]
    assert any("conv" in name for name in names[:5]), names
    assert all(ms >= 0 for _, ms in profile["top_host_ms_per_frame"])
    assert "profile" not in result["trackers"]["csrt"]
    assert "## Profile" in table
    assert "Self CPU" in (out / "profile_samn_lite.txt").read_text()
    # --batch 3: three lockstep steps of three targets each; per tracked frame a step's
    # batched operators are shared, so fewer than one target alone issues
    lockstep = result["trackers"]["samn_lite"]["batched"]["profile"]
    assert (lockstep["batch"], lockstep["groups"], lockstep["frames"]) == (3, 1, 9)
    assert 10 < lockstep["operators_outside_passes_per_frame"] < profile["operators_outside_passes_per_frame"]
    assert "| samn_lite | lockstep, batch 3 | 9 |" in table
    assert "Self CPU" in (out / "profile_samn_lite_batch3.txt").read_text()


def test_device_time_counts_each_kernel_once():
    """A network pass is a profiler range; on a GPU the range has a device time too, the
    span of the kernels inside it, which are rows of their own. Busy time sums the rows
    of the work, not the ranges (counted together, a lite frame read 2.5 ms instead of
    1.1 on the H100)."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    from samn_tracker.speed.profiling import PASS, _device_work

    rows = [SimpleNamespace(key=key, device_type=kind) for key, kind in
            ((PASS, DeviceType.CUDA), ("sm90_xmma_fprop", DeviceType.CUDA), ("Memcpy DtoH", DeviceType.CUDA),
             ("aten::conv2d", DeviceType.CPU))]
    assert [row.key for row in _device_work(rows)] == ["sm90_xmma_fprop", "Memcpy DtoH"]


def test_long_mode_writes_plot_and_checks_the_flat_time_claim(davis_root, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Every frame must reach the memory for the growth to show, whatever the masks
        # at this tiny crop look like: the plausibility check is off here.
        code = main(bench_args(davis_root, tmp_path, "--long", "60", "--cap", "2",
                               "--set", "mask_check.enabled=False", "--trackers", "kcf"))
    assert code == 0
    assert capsys.readouterr().err == ("samn bench: note: --long measures one SAMN preset on one sequence, "
                                       "samn_lite on car-shadow; not kcf\n")
    assert (tmp_path / "long.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads((tmp_path / "long.json").read_text())
    assert result["loop_period"] == loop_period(result["meta"]["source_frames"])
    assert result["windows"] == windows(60, result["loop_period"])
    cap, free = result["runs"]["cap"], result["runs"]["no_cap"]
    for run in (cap, free):
        assert len(run["per_frame"]["frame_ms"]) == 59 and min(run["per_frame"]["frame_ms"]) > 0
        assert run["early"]["median_ms"] > 0 and run["late"]["median_ms"] > 0
    # First frame + last frame + at most 2 sampled entries, against one entry per 5 frames.
    assert max(cap["per_frame"]["memory_entries"]) <= 4
    assert free["memory_entries_last"] >= 59 // 5
    claim = result["claim"]
    assert claim["ratio"] == pytest.approx(cap["late"]["median_ms"] / cap["early"]["median_ms"])
    assert claim["holds"] == (claim["ratio"] <= 1.1)
    # Per-stage times explain the frame times: on frames that wrote, the write stage took time.
    records = cap["per_frame"]
    assert set(records["stage_ms"]) >= {"query_encoder", "memory_write", "dcf"}
    assert all(len(v) == 59 for v in records["stage_ms"].values())
    assert max(records["stage_ms"]["memory_write"]) > 0 and min(records["stage_ms"]["query_encoder"]) > 0
    assert cap["stage_ms"]["query_encoder"]["early_median"] > 0
    assert cap["late_over_early_mean"] == pytest.approx(cap["late"]["mean_ms"] / cap["early"]["mean_ms"])
    markdown = (tmp_path / "long.md").read_text()
    assert "Claim:" in markdown and "| memory_write |" in markdown
    assert result["meta"]["tracker"] == "samn_lite" and "| no_cap | uncapped |" in markdown
    assert "compare RSS early to late within a run, not across runs" in markdown  # one process, runs in turn


def test_the_long_claim_is_not_judged_where_the_cap_never_evicted_an_entry():
    """Capped and uncapped runs are then the same run: their time ratio says nothing of the cap."""
    def runs(cap_entries, free_entries):
        return {name: {"late_over_early": 1.2, "per_frame": {"memory_entries": entries}}
                for name, entries in (("cap", cap_entries), ("no_cap", free_entries))}

    spans = windows(60)
    claim = judged_claim(runs([3, 8, 13], [3, 8, 13]), spans, 20)
    assert claim["holds"] is None and claim["ratio"] == 1.2
    assert claim["why"] == ("the cap (20 sampled entries) was never reached (the uncapped memory held at most 13 "
                            "entries, first and last frame included); use a longer --long or a smaller --cap")
    assert claim_line(claim).endswith(f"— **not judged**: {claim['why']} (ratio of medians 1.200).")
    assert judged_claim(runs([3, 4, 4], [3, 8, 13]), spans, 2)["holds"] is False
    assert "does not hold" in claim_line({"text": "t", "ratio": 1.2, "holds": False})  # an older result


def test_the_capped_long_run_uses_the_trackers_own_cap_unless_given_one():
    from samn_tracker.config import preset
    from samn_tracker.speed.cli import FALLBACK_CAP, long_cap

    assert long_cap(None, preset("lite")) == preset("lite").memory.max_entries == 20
    assert long_cap(None, preset("paper")) == FALLBACK_CAP  # the paper's memory is unbounded
    assert long_cap(3, preset("lite")) == 3


def _targets_of(device="cpu", threads=1, overrides=None, max_frames=None, batch=None, fps=30.0):
    entry = {"speed": {"fps": fps}}
    if batch is not None:
        entry["batched"] = {"batch": batch, "frames_per_s": 1200.0}
    result = {"meta": {"machine": {"device": device, "torch_threads": threads},
                       "overrides": overrides or {}, "max_frames": max_frames},
              "trackers": {"samn_lite": entry}}
    return {row["target"]: row for row in judged_targets(result)}


def test_speed_targets_are_judged_only_under_their_conditions():
    def lite_cpu(**run):
        return _targets_of(**run)["lite on one CPU thread"]

    assert lite_cpu()["status"] == "met" and lite_cpu()["fps"] == 30.0
    assert lite_cpu(fps=27.9)["status"] == "not met"
    assert lite_cpu(threads=2)["why"] == "the run used 2 CPU threads"
    assert lite_cpu(overrides={"host_threads": 2, "frame_ops": "torch"})["status"] == "met"
    assert lite_cpu(overrides={"crop_size": 128})["why"] == "--set crop_size changes what is computed"
    assert lite_cpu(max_frames=10)["why"] == "--max-frames shortened the sequences"
    gpu = _targets_of(device="cuda:0", batch=32)
    assert gpu["lite, 32 videos in lockstep on one GPU"]["status"] == "met"
    assert gpu["lite, 32 videos in lockstep on one GPU"]["fps"] == 1200.0
    assert gpu["paper on one GPU"]["why"] == "samn_paper was not measured"
    assert gpu["lite on one CPU thread"]["why"] == "the run was on cuda"
    assert _targets_of(device="cuda:0", batch=8)["lite, 32 videos in lockstep on one GPU"]["why"] == \
        "the run had no --batch 32"


def test_bench_lists_the_targets_it_could_not_judge_and_why(bench_result):
    result, table, _ = bench_result
    rows = {row["target"]: row for row in result["targets"]}
    assert rows["lite on one CPU thread"]["status"] == "not judged"
    assert rows["lite on one CPU thread"]["why"] == "--max-frames shortened the sequences"
    assert rows["paper on one GPU"]["why"] == "samn_paper was not measured"
    assert "## Targets" in table and "not judged: --max-frames shortened the sequences" in table


def test_against_an_earlier_run_gives_the_speedup_and_whether_accuracy_moved(bench_result, davis_root, tmp_path):
    """The same frames tracked again, the lockstep's host work in threads: every measure is
    identical, each tracker's fps is set beside the earlier one, the thread setting is named,
    and a tracker the new run left out is named; both runs name their code."""
    earlier, _, earlier_out = bench_result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained-heads warning
        assert main(bench_args(davis_root, tmp_path, "--trackers", "samn_lite,kcf", "--max-frames", "6",
                               "--warmup", "1", "--batch", "3", "--set", "host_threads=2",
                               "--against", str(earlier_out))) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    against = result["against"]
    assert against["source"] == str(earlier_out / "bench.json") and against["date"] == earlier["meta"]["date"]
    assert against["code"] == earlier["meta"]["code"] and set(result["meta"]["code"]) == {"version", "commit"}
    assert list(against["trackers"]) == ["samn_lite", "kcf"] and against["only_before"] == ["csrt"]
    for name, entry in against["trackers"].items():
        assert entry["verdict"] == "identical" and entry["conditions_differ"] == []
        assert entry["fps"]["before"] == earlier["trackers"][name]["speed"]["fps"]
        assert entry["fps"]["ratio"] == pytest.approx(entry["fps"]["now"] / entry["fps"]["before"])
        assert entry["accuracy"]["ao"]["change"] == 0.0
    table = (tmp_path / "bench.md").read_text()
    assert f"## Against {earlier_out / 'bench.json'}" in table
    assert "| samn_lite |" in table.split("## Against")[1] and "**identical**" in table
    assert "Measured only in the earlier run: csrt." in table
    assert against["settings_differ"] == {"host_threads": {"before": None, "now": 2}}
    assert "not what they are: `host_threads` the preset's → 2." in table
    assert against["trackers"]["samn_lite"]["lockstep"]["batch"] == 3 and "lockstep frames/s before" in table


def test_an_interrupted_bench_keeps_finished_trackers_and_the_same_command_resumes(davis_root, tmp_path,
                                                                                   monkeypatch, capsys):
    import samn_tracker.speed.cli as bench_cli

    argv = bench_args(davis_root, tmp_path, "--trackers", "kcf,csrt", "--max-frames", "4", "--warmup", "1")
    measure = bench_cli.measure_tracker

    def interrupted_in_csrt(name, *rest):
        if name == "csrt":
            raise KeyboardInterrupt
        return measure(name, *rest)

    monkeypatch.setattr(bench_cli, "measure_tracker", interrupted_in_csrt)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted during csrt; the finished trackers (kcf) are kept in" in err
    assert "run the same command to resume" in err and not (tmp_path / "bench.json").exists()
    partial = (tmp_path / "bench.partial.json").read_text()
    kept = json.loads(partial)["trackers"]
    assert list(kept) == ["kcf"]

    monkeypatch.setattr(bench_cli, "measure_tracker", measure)
    assert main(argv) == 0
    assert "kcf kept from the interrupted run" in capsys.readouterr().err
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["trackers"]["kcf"] == kept["kcf"] and "csrt" in result["trackers"]
    assert list(result["meta"]["kept_from_interrupted_run"]) == ["kcf"]
    assert "Kept from an interrupted run of the same command and code: kcf (measured" in \
        (tmp_path / "bench.md").read_text()
    assert not (tmp_path / "bench.partial.json").exists()  # complete: nothing left to resume

    # another setting (here two passes) measures afresh; a report option does not matter
    (tmp_path / "bench.partial.json").write_text(partial)
    assert main([*argv, "--tolerance", "0.01"]) == 0
    assert json.loads((tmp_path / "bench.json").read_text())["trackers"]["kcf"] == kept["kcf"]
    (tmp_path / "bench.partial.json").write_text(partial)
    capsys.readouterr()
    assert main([*argv, "--repeat", "2"]) == 0
    assert "not resuming from" in (err := capsys.readouterr().err) and "other settings made it" in err
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["meta"]["kept_from_interrupted_run"] == {}
    assert len(result["trackers"]["kcf"]["speed"]["fps_per_pass"]) == 2


def _bench_json(ao=0.7, jf=0.6, iou=0.8, threads=1, sequences=("blackswan",), overrides=None, sha="ab"):
    accuracy = {"ao": ao, "sr50": 0.9, "sr75": 0.5, "success_auc": 0.7, "mean_iou": iou, "jf": jf, "j": jf,
                "f": jf, "sequences": {name: {"mean_iou": iou} for name in sequences}}
    details = {"preset": "lite", "crop_size": 256, "backbone": "efficientnet_lite0",
               "weights": f"/checkout-{sha}/lite-query.pth", "weights_sha256": sha}
    return {"meta": {"date": "d", "sequences": list(sequences), "frames_per_pass": 10, "max_frames": None,
                     "precision": "fp32", "overrides": overrides or {},
                     "machine": {"cpu": "x", "device": "cpu", "torch_threads": threads}},
            "trackers": {"samn_lite": {"details": details, "accuracy": accuracy,
                                       "speed": {"fps": 30.0, "stages_ms": {"decoder": 3.0}}}}}


def test_accuracy_verdicts_against_an_earlier_run():
    def verdict(tolerance=0.005, **now):
        against = compare_runs(_bench_json(**now), _bench_json(), "earlier.json", tolerance)
        entry = against["trackers"]["samn_lite"]
        return entry["verdict"], entry["conditions_differ"], against["speed_conditions_differ"]

    assert verdict() == ("identical", [], [])
    assert verdict(iou=0.81)[0] == "within tolerance"  # a sequence moved, AO and J&F did not
    assert verdict(ao=0.704, jf=0.596)[0] == "within tolerance"
    assert verdict(ao=0.69)[0] == "changed" and verdict(jf=0.61)[0] == "changed"
    assert verdict(ao=0.69, tolerance=0.02)[0] == "within tolerance"
    assert verdict(sequences=("blackswan", "dog")) == ("not comparable", ["sequences"],
                                                        ["the frames timed (sequences)"])
    assert verdict(overrides={"memory.interval": 2})[1] == ["overrides"]
    # settings that change how, not what, is computed: an A/B of an implementation compares
    assert verdict(overrides={"entries_at": "finish"}, ao=0.701) == ("within tolerance", [], [])
    assert verdict(overrides={"entries_at": "finish", "memory.interval": 2})[1] == ["overrides"]
    assert verdict(overrides={"model.pretrained_backbone": False})[1] == ["overrides"]
    against = compare_runs(_bench_json(overrides={"entries_at": "finish", "memory.interval": 2}),
                           _bench_json(overrides={"memory.interval": 2, "frame_ops": "torch"}), "earlier.json", 0.005)
    assert against["settings_differ"] == {"entries_at": {"before": None, "now": "finish"},
                                          "frame_ops": {"before": "torch", "now": None}}
    assert against["trackers"]["samn_lite"]["verdict"] == "identical"
    assert verdict(sha="cd")[1] == ["weights"]
    # another thread count: rounding may differ but the frames are the same; speeds do not compare
    assert verdict(threads=2, ao=0.701) == ("within tolerance", [], ["the torch thread count"])
    # lockstep throughput set side by side only where both runs had the same --batch
    now, before = _bench_json(), _bench_json()
    now["trackers"]["samn_lite"]["batched"] = {"batch": 32, "frames_per_s": 450.0, "frames_per_s_with_init": 200.0}
    before["trackers"]["samn_lite"]["batched"] = {"batch": 32, "frames_per_s": 300.0, "frames_per_s_with_init": 50.0}
    entry = compare_runs(now, before, "earlier.json", 0.005)["trackers"]["samn_lite"]
    assert entry["lockstep"] == {"batch": 32, "before": 300.0, "now": 450.0, "ratio": 1.5,
                                 "with_starts": {"before": 50.0, "now": 200.0, "ratio": 4.0}}
    del before["trackers"]["samn_lite"]["batched"]["frames_per_s_with_init"]  # an older result
    entry = compare_runs(now, before, "earlier.json", 0.005)["trackers"]["samn_lite"]
    assert entry["lockstep"]["with_starts"] == {"before": None, "now": 200.0, "ratio": None}
    before["trackers"]["samn_lite"]["batched"]["batch"] = 8
    assert "lockstep" not in compare_runs(now, before, "earlier.json", 0.005)["trackers"]["samn_lite"]


def test_settings_of_the_samn_presets_leave_an_opencv_tracker_comparable():
    """``--set`` and ``--precision`` change only SAMN: CSRT's accuracy is judged on its own."""
    def with_csrt(**settings):
        result = _bench_json(**settings)
        result["trackers"]["csrt"] = {**result["trackers"]["samn_lite"], "details": {"opencv": "4.10"}}
        return result

    now = with_csrt(overrides={"memory.interval": 2})
    now["meta"]["precision"] = "bf16"
    trackers = compare_runs(now, with_csrt(), "earlier.json", 0.005)["trackers"]
    assert trackers["csrt"]["verdict"] == "identical" and trackers["csrt"]["conditions_differ"] == []
    assert trackers["samn_lite"]["conditions_differ"] == ["precision", "overrides"]


def test_options_that_do_nothing_here_are_named_and_repeats_measured_once(davis_root, tmp_path, capsys):
    """A run of KCF alone: the SAMN-only options, a warm-up longer than the sequence and a
    repeated sequence each get a note; an earlier run with no tracker in common is said so."""
    (tmp_path / "earlier.json").write_text(json.dumps(_bench_json()))
    assert main(bench_args(davis_root, tmp_path / "out", "--trackers", "kcf", "--sequences", "car-shadow", "car-shadow",
                           "--max-frames", "4", "--warmup", "9", "--batch", "2",
                           "--against", str(tmp_path / "earlier.json"))) == 0
    assert capsys.readouterr().err == (
        "samn bench: note: sequence car-shadow given more than once; measured once\n"
        "samn bench: note: --warmup 9: car-shadow has 4 frames, so 3 warm-up frame(s) run\n"
        "samn bench: note: --batch, --set apply to the SAMN presets only, and none is measured (kcf)\n")
    result = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert result["meta"]["sequences"] == ["car-shadow"] and result["meta"]["warmup"] == 3
    assert result["meta"]["frames_per_pass"] == 3 and "batched" not in result["trackers"]["kcf"]
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "after 3 warm-up frame(s)" in table
    assert (f"No tracker in common with {tmp_path / 'earlier.json'} (it measured samn_lite; this run kcf)."
            in table)


def test_weights_for_a_preset_not_measured_are_named(monkeypatch, capsys):
    from samn_tracker.speed import cli

    cli.note_unused_weights(["paper=copy.pth", "lite=mine.pth"], ["samn_lite"])
    assert capsys.readouterr().err == (
        "samn bench: note: --weights paper=copy.pth unused: no such preset is measured (samn_lite)\n")
    cli.note_unused_weights(["copy.pth", "lite=mine.pth"], ["samn_lite"])
    assert capsys.readouterr().err == ""


def test_a_lockstep_of_one_copy_per_sequence_says_copy(bench_result):
    result = json.loads(json.dumps(bench_result[0]))
    result["trackers"]["samn_lite"]["batched"]["sequences"]["car-shadow"]["copies_mean_iou"] = [0.5]
    assert "(1 copy: 0.500) |" in bench_markdown(result)


def test_fps_ticks_are_one_kind_of_label_spread_over_the_axis():
    """4 to 70 fps drawn from 2.7 to 105: 1-2-5 per decade, not matplotlib's crowded minor labels."""
    assert log_ticks(4 / 1.5, 70 * 1.5) == [5, 10, 20, 50, 100]
    assert log_ticks(30 / 1.5, 35 * 1.5) == [20, 30, 50]  # too few with 1-2-5
    assert log_ticks(0.2, 0.45) == [0.2, 0.3, 0.4]


def test_against_rejects_what_is_not_an_earlier_bench_run(davis_root, tmp_path, capsys):
    (tmp_path / "long.json").write_text(json.dumps({"meta": {}, "runs": {}}))
    for target, message in ((tmp_path / "missing", "not a samn bench result"),
                            (tmp_path / "long.json", "a --long result")):
        assert main(bench_args(davis_root, tmp_path / "out", "--trackers", "kcf", "--max-frames", "3",
                               "--against", str(target))) == 2
        assert message in capsys.readouterr().err
    assert main(bench_args(davis_root, tmp_path / "out", "--long", "20", "--against", str(tmp_path))) == 2
    assert "does not apply to --long" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_looped_video_goes_forth_and_back_and_windows_fit_short_runs():
    assert ping_pong(4, 10).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert windows(3000) == {"early": [75, 125], "late": [2950, 3000]}
    # Looped 50 frames (period 98): the late window is whole loops after the early one.
    assert windows(3000, 98) == {"early": [75, 125], "late": [2917, 2967]}
    order = ping_pong(50, 3000)
    assert order[75:125].tolist() == order[2917:2967].tolist()
    spans = windows(60)
    assert 1 <= spans["early"][0] < spans["early"][1] <= spans["late"][0] and spans["late"][1] == 60
    # Too short for a whole loop between the windows: the last frames.
    assert windows(60, 98) == windows(60)


@pytest.mark.parametrize("argv, message", [
    (["--trackers", "samn_lite,siamrpn"], "unknown tracker siamrpn"),
    (["--weights", "huge=model.pth", "--trackers", "samn_lite"], "'huge' is not a preset"),
    (["--set", "memory.size=3", "--trackers", "samn_lite"], "memory.size"),
    (["--set", "nope=1", "--trackers", "kcf"], "nope"),
    (["--weights", "huge=model.pth", "--trackers", "kcf"], "'huge' is not a preset"),
    (["--sequences", "no-such-seq", "--trackers", "kcf"], "no-such-seq"),
    (["--batch", "2", "--groups", "3", "--trackers", "samn_lite"], "--groups 3 needs a --batch of at least 3"),
    (["--warmup", "-1", "--trackers", "kcf"], "--warmup must be at least 0, got -1"),
    (["--cap", "5", "--trackers", "kcf"], "--cap applies to --long only"),
    (["--long", "20", "--batch", "2"], "--batch does not apply to --long"),
    (["--long", "5"], "--long must be at least 10, got 5"),
])
def test_bad_arguments_fail_with_a_message_naming_the_value(davis_root, tmp_path, capsys, argv, message):
    assert main(bench_args(davis_root, tmp_path, "--max-frames", "3", *argv)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


def _outputs(net, images, masks):
    with torch.inference_mode():
        query = net.encode_query(images)
        key, value = net.encode_memory(images, masks)
        logits = net.decode(net.read(query, key.flatten(2), value.flatten(2)), query, None, images.shape[-1])
    return query, key, foreground_probability(logits)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet50"])
def test_inference_preparation_folds_batchnorm_without_changing_outputs(backbone):
    cfg = preset("lite").model if backbone == "efficientnet_lite0" else preset("paper").model
    cfg.pretrained_backbone = backbone == "efficientnet_lite0"  # no ResNet download in tests
    torch.manual_seed(0)
    net = SAMNNetwork(cfg).eval()
    images, masks = torch.rand(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.5).float()
    reference = _outputs(net, images, masks)
    net.prepare_for_inference()
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Only the memory encoder's stem keeps its norm (it normalises the RGB and mask stems' sum).
    assert len(norms) == (0 if cfg.memory_pass == "query" else 1)
    prepared = _outputs(net, images, masks)
    assert prepared[0].s16.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(prepared[0].s16, reference[0].s16, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(prepared[1], reference[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(prepared[2], reference[2], rtol=1e-4, atol=1e-4)


def test_bf16_inference_keeps_float32_outputs_within_the_stated_tolerance():
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").model).eval()
    images, masks = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.5).float()
    reference = _outputs(net.prepare_for_inference(), images, masks)[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probability = _outputs(net.prepare_for_inference(precision="bf16"), images, masks)[2]
    said_slow = any("bf16 on a CPU is slow" in str(w.message) for w in caught)
    assert said_slow == ("bf16" in slow_cpu_precisions())  # said where it is slow (no bf16 kernels), only there
    assert probability.dtype == torch.float32
    # docs/bench.md states the tolerance: mean |dp| < 0.01, max < 0.1 on random inputs.
    difference = (probability - reference).abs()
    assert float(difference.mean()) < 0.01 and float(difference.max()) < 0.1
    assert not torch.equal(probability, reference)  # it really ran in reduced precision
    with pytest.raises(ValueError, match="precision"):
        net.prepare_for_inference(precision="int4")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (page-locked memory)")
def test_frames_for_a_gpu_bench_are_page_locked(davis_root):
    from samn_tracker.speed.runs import load_sequence
    plain = load_sequence(davis_root, "car-shadow", 3)
    pinned = load_sequence(davis_root, "car-shadow", 3, pin=True)
    assert all(torch.from_numpy(f).is_pinned() for f in pinned.frames)
    assert all((a == b).all() for a, b in zip(plain.frames, pinned.frames))


def test_a_warm_lockstep_pass_is_untimed_and_tracks_alike(davis_root):
    """On CUDA the first lockstep pass makes the graphs of every batch size it meets; the
    timed pass is the second. The warm pass is forced here on a CPU: same tracks, its own rate."""
    from samn_tracker.build import build_tracker
    from samn_tracker.speed.batched import batched_throughput
    from samn_tracker.speed.runs import load_sequence

    tracker = build_tracker("lite", device="cpu", overrides=SHORT_TUNING)
    assert not tracker.cuda_graphs  # nothing to make on a CPU: one pass by default
    sequences = [load_sequence(davis_root, "car-shadow", 4), load_sequence(davis_root, "blackswan", 3)]
    alone = dict.fromkeys(("ao", "sr50", "mean_iou", "success_auc", "jf"), None)
    once = batched_throughput(tracker, sequences, 3, alone, progress=False)
    warmed = batched_throughput(tracker, sequences, 3, alone, progress=False, warm=True)
    assert once["frames_per_s_first_pass"] is None and warmed["frames_per_s_first_pass"] > 0
    assert warmed["accuracy"] == once["accuracy"] and warmed["sequences"] == once["sequences"]
    assert warmed["tracked_frames"] == once["tracked_frames"] == 3 + 2 + 3
