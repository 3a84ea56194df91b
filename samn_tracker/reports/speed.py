"""``samn bench`` reports: Markdown tables of a result and the long-video plot (the JSON
is the record; these are for reading)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker.atomic import replacing, write_text
from samn_tracker.reports import shortened
from samn_tracker.reports.bench_result import bench_result_files
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.tracker import HOST_PARTS, STAGES


def _num(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def machine_line(machine: dict) -> str:
    where = machine.get("gpu") or f"{machine['cpu']}, {machine['cpu_count']} cores"
    load = machine.get("load_average_1_5_15")
    return (f"Device `{machine['device']}` ({where}); torch {machine['torch']}, "
            f"{machine['torch_threads']} thread{'' if machine['torch_threads'] == 1 else 's'}" + (f"; load average before the run {load}" if load else ""))


def bench_markdown(result: dict) -> str:
    trackers = result["trackers"]
    speed_rows, accuracy_rows = [], []
    for name, entry in trackers.items():
        s, a = entry["speed"], entry["accuracy"]
        stages = [_num(s["stages_ms"].get(stage)) for stage in (*STAGES, "other")] \
            if s["stages_ms"] else ["–"] * (len(STAGES) + 1)
        speed_rows.append([name, f"{s['fps']:.1f} [{s['fps_min']:.1f}–{s['fps_max']:.1f}]",
                           _num(s["ms_per_frame"]["mean"]), _num(s["ms_per_frame"]["p90"]),
                           _num(s["init_ms"], 0), *stages, _num(s["rss_peak_mb"], 0),
                           _num(s["cuda_peak_mb"], 0) if s["cuda_peak_mb"] else "–"])
        accuracy_rows.append([name, _num(a["ao"], 3), _num(a["sr50"], 3), _num(a["success_auc"], 3),
                              _num(a["mean_iou"], 3), _num(a["jf"], 3), _num(a["j"], 3), _num(a["f"], 3),
                              str(s["lost_frames"])])
    meta = result["meta"]
    lines = [f"# samn bench ({meta['date']})", "", machine_line(meta["machine"]) + ".",
             f"Sequences: {', '.join(meta['sequences'])}; {meta['frames_per_pass']} tracked frames per "
             f"pass; {meta['repeat']} timed pass(es) after {meta['warmup']} warm-up frame(s); "
             f"SAMN precision {meta['precision']}."]
    kept = meta.get("kept_from_interrupted_run")  # absent in older results
    if kept:
        lines.append("Kept from an interrupted run of the same command and code: "
                     + ", ".join(f"{name} (measured {date})" for name, date in kept.items()) + ".")
    lines += ["", "## Speed (ms per frame; stages from `SAMNTracker.clock`)", ""]
    lines += _table(["tracker", "fps median [min–max]", "mean ms", "p90 ms", "init ms",
                     *STAGES, "other", "peak RSS MB", "peak CUDA MB"], speed_rows)
    host_rows = _host_rows(trackers)
    if host_rows:
        lines += ["", "## Host time per tracked frame (ms, wall clock: on a GPU, where the host's time goes)", ""]
        lines += _table(["tracker", "launch (on a GPU: issuing it)", "waiting for the read-back",
                         "host work (maps in frames, masks, policy, boxes)", "memory writes (on a GPU: issuing them)", "frame"],
                        host_rows)
    lines += ["", "## Accuracy (box init on frame 0)", ""]
    lines += _table(["tracker", "AO", "SR0.5", "success AUC", "mean IoU", "J&F", "J", "F", "lost frames"],
                    accuracy_rows)
    lines += ["", "## Per sequence (mean box IoU · J&F · lost frames)", ""]
    lockstep = [n for n, e in trackers.items() if "sequences" in e.get("batched", {})]  # absent in older results
    lines += _table(["sequence", *trackers, *(f"{n}, lockstep (every copy's IoU)" for n in lockstep)],
                    _sequence_rows(trackers, lockstep, meta["sequences"]))
    batched = []
    for name, entry in trackers.items():
        if "batched" in entry:
            b, change = entry["batched"], entry["batched"]["change_from_one_at_a_time"]
            host = b.get("stages_ms_per_frame", {}).get("postprocess")  # absent in older results
            groups = b.get("groups", 1)  # absent in older results
            size = str(b["batch"]) + (f" ({groups} groups)" if groups > 1 else "")
            batched.append([name, size, str(b["videos"]), _num(b["frames_per_s"]), _num(b.get("frames_per_s_with_init")),
                            _num(entry["speed"]["fps"]), _num(host, 2), _num(b["accuracy"]["ao"], 3),
                            _num(change["ao"], 4), _num(b["accuracy"]["jf"], 3), _num(change["jf"], 4)])
    if batched:
        lines += ["", "## Lockstep (`--batch`: one batched network pass per frame for all videos)", ""]
        lines += _table(["tracker", "batch", "videos", "frames/s in all", "with the starts", "fps one at a time",
                         "host ms per frame (postprocess)", "AO", "AO change", "J&F", "J&F change"], batched)
        first = {n: e["batched"]["frames_per_s_first_pass"] for n, e in trackers.items()
                 if e.get("batched", {}).get("frames_per_s_first_pass")}  # absent in older results
        if first:
            lines += ["", "Timed after an untimed pass that made the CUDA graphs of every batch size met; "
                      "that pass ran at " + ", ".join(f"{v:.1f} frames/s ({n})" for n, v in first.items()) + "."]
    profiled = []
    for name, e in trackers.items():
        runs = [(e["profile"]["sequence"], e["profile"])] if "profile" in e else []
        if "profile" in e.get("batched", {}):
            lockstep = e["batched"]["profile"]
            groups = f", {lockstep['groups']} groups" if lockstep["groups"] > 1 else ""
            runs.append((f"lockstep, batch {lockstep['batch']}{groups}", lockstep))
        profiled += [[name, what, str(p["frames"]), _num(p["launches_per_frame"]),
                      _num(p["device_busy_ms_per_frame"], 2), _num(sum(p["waits_per_frame"].values())),
                      _num(sum(p["copies_per_frame"].values())),
                      _num(p.get("operators_outside_passes_per_frame"))]  # absent in older results
                     for what, p in runs]
    if profiled:
        lines += ["", "## Profile (`--profile`: per tracked frame, under torch.profiler)", ""]
        lines += _table(["tracker", "frames of", "frames", "launches", "device busy ms", "waits",
                         "copies", "operators outside the network passes"], profiled)
    if result.get("targets"):  # absent in older results
        lines += ["", "## Targets (issue 10; judged only where the run has their conditions)", ""]
        lines += _table(["target", "needs", "measured", "status"], [_target_row(t) for t in result["targets"]])
    if "against" in result:
        lines += ["", *_against_lines(result["against"])]
    if result.get("ratios"):
        lines += [""] + [f"- {k}: {v:.2f}" for k, v in result["ratios"].items()]
    for name, reason in result.get("skipped", {}).items():
        lines += ["", f"Skipped {name}: {reason}"]
    untrained = [n for n, e in trackers.items() if e["details"].get("trained") is False]
    if untrained:
        lines += ["", f"Untrained heads ({', '.join(untrained)}): their accuracy is meaningless, speed is not."]
    return "\n".join(lines) + "\n"


def _host_rows(trackers: dict) -> list[list[str]]:
    """A row per SAMN tracker one at a time, and per lockstep run (absent in older results)."""
    rows = []
    for name, entry in trackers.items():
        speed, batched = entry["speed"], entry.get("batched", {})
        if speed.get("host_ms"):
            rows.append([name, *(_num(speed["host_ms"][p], 2) for p in HOST_PARTS),
                         _num(speed["ms_per_frame"]["mean"], 2)])
        if batched.get("host_ms_per_frame"):
            rows.append([f"{name}, lockstep batch {batched['batch']}",
                         *(_num(batched["host_ms_per_frame"][p], 2) for p in HOST_PARTS),
                         _num(1e3 / batched["frames_per_s"], 2)])
    return rows


def _sequence_rows(trackers: dict, lockstep: Sequence[str], sequences: Sequence[str]) -> list[list[str]]:
    """One row per sequence, a cell per tracker: where a tracker fails, not only how much;
    then its lockstep run's, with the mean IoU of every copy of the sequence in the batch."""
    def cell(entry: dict) -> str:
        lost = entry.get("lost_frames")  # absent in older results
        return " · ".join([_num(entry["mean_iou"], 3), _num(entry.get("jf"), 3),
                           "–" if lost is None else str(lost)])

    def copies(entry: dict) -> str:
        ious = entry["copies_mean_iou"]
        if len(ious) == 1:
            return f"{cell(entry)} (1 copy: {ious[0]:.3f})"
        spread = f"{min(ious):.3f}–{max(ious):.3f}" if max(ious) > min(ious) else f"all {ious[0]:.3f}"
        return f"{cell(entry)} ({len(ious)} copies: {spread})"

    return [[seq, *(cell(t["accuracy"]["sequences"][seq]) for t in trackers.values()),
             *(copies(trackers[n]["batched"]["sequences"][seq]) for n in lockstep)] for seq in sequences]


def plot_bench(result: dict, path) -> None:
    """Speed against accuracy (AO over fps, and the lockstep frames/s where measured), and
    each sequence's mean box IoU per tracker."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trackers, sequences = result["trackers"], result["meta"]["sequences"]
    fig, (ax_speed, ax_seq) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1, 1.6]})
    fig.suptitle(f"samn bench {result['meta']['date']} ({machine_line(result['meta']['machine']).replace('`', '')})",
                 fontsize=9)  # the Markdown line without its code marks
    if not trackers:  # every tracker was skipped (bench.md says why)
        fig.text(0.5, 0.5, "no tracker was measured", ha="center")
        _save(fig, path)
        return
    speeds = []
    for rank, (name, entry) in enumerate(trackers.items()):
        fps, ao = entry["speed"]["fps"], entry["accuracy"]["ao"]
        point, = ax_speed.plot(fps, ao, "o", markersize=8, label=name)
        # labels of trackers of like speed and accuracy alternate sides, not one on the other
        ax_speed.annotate(f"{fps:.0f} fps", (fps, ao), textcoords="offset points", fontsize=8,
                          xytext=(6, 6) if rank % 2 == 0 else (6, -12))
        speeds.append(fps)
        if "batched" in entry:
            b = entry["batched"]
            ax_speed.plot(b["frames_per_s"], b["accuracy"]["ao"], "o", mfc="none", markersize=8,
                          color=point.get_color(), label=f"{name}, {b['batch']} in lockstep (frames/s in all)")
            ax_speed.annotate(f"{b['frames_per_s']:.0f} frames/s", (b["frames_per_s"], b["accuracy"]["ao"]),
                              textcoords="offset points", xytext=(6, 6), fontsize=8)
            speeds.append(b["frames_per_s"])
    ax_speed.set_xscale("log")
    low, high = min(speeds) / 1.5, max(speeds) * 1.5
    ax_speed.set_xlim(low, high)
    ax_speed.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(log_ticks(low, high)))
    ax_speed.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax_speed.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_speed.set_xlabel("frames per second (log scale)")
    ax_speed.set_ylabel("AO")
    ax_speed.set_ylim(0, 1)
    ax_speed.grid(alpha=0.3)
    ax_speed.legend(fontsize=8)
    width = 0.8 / len(trackers)
    positions = np.arange(len(sequences))
    for k, (name, entry) in enumerate(trackers.items()):
        ious = [entry["accuracy"]["sequences"][seq]["mean_iou"] for seq in sequences]
        ax_seq.bar(positions + (k - (len(trackers) - 1) / 2) * width,  # none measured: no bar, not one of 0
                   [np.nan if iou is None else iou for iou in ious], width, label=name)
    ax_seq.set_xticks(positions, [shortened(s, 24) for s in sequences], rotation=60,
                      ha="right", fontsize=8)
    ax_seq.set_ylabel("mean box IoU")
    ax_seq.set_ylim(0, 1)
    # above the bars, in a row: inside, it sat over the highest ones
    ax_seq.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1), ncol=len(trackers), frameon=False)
    _save(fig, path)


def log_ticks(low: float, high: float) -> list[float]:
    """Labelled values of a log axis from ``low`` to ``high``: 1, 2, 5 per decade, or more
    multiples where that leaves fewer than three. One kind of label in one size: matplotlib's
    own labels a decade larger than the minor ticks beside it, and crowds them."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multiples in ((1, 2, 5), (1, 2, 3, 5), range(1, 10)):
        ticks = [v for k in decades for m in multiples if low <= (v := float(f"{m}e{k}")) <= high]
        if len(ticks) >= 3:
            break
    return ticks


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _against_lines(against: dict) -> list[str]:
    """``--against``: the earlier run named, then a row per tracker measured in both."""
    code = (against.get("code") or {}).get("commit")
    lines = [f"## Against {against['source']} ({against['date']}" + (f", code {code}" if code else "") + ")", ""]
    if not against["trackers"]:
        return lines + [f"No tracker in common with {against['source']} (it measured "
                        f"{', '.join(against['only_before']) or 'none'}; this run "
                        f"{', '.join(against['only_now']) or 'none'})."]
    rows = []
    for name, t in against["trackers"].items():
        ao, jf = t["accuracy"]["ao"], t["accuracy"]["jf"]
        worst = max(t["sequences"].items(), key=lambda item: abs(item[1]["change"] or 0.0), default=None)
        moved = "–" if worst is None or not worst[1]["change"] else f"{worst[0]} {worst[1]['change']:+.3f}"
        verdict = t["verdict"] + (f" ({', '.join(t['conditions_differ'])} differ)" if t["conditions_differ"] else "")
        rows.append([name, _num(t["fps"]["before"]), _num(t["fps"]["now"]), f"{t['fps']['ratio']:.2f}x",
                     _moved(ao), _moved(jf), moved, {"identical": "**identical**"}.get(verdict, verdict)])
    lines += _table(["tracker", "fps before", "fps now", "now / before", "AO before → now", "J&F before → now",
                     "largest change of a sequence's mean IoU", "accuracy"], rows)
    lockstep = [[name, str(t["lockstep"]["batch"]), *_rate_cells(t["lockstep"]),
                 *_rate_cells(t["lockstep"].get("with_starts", {}))]  # absent in older results
                for name, t in against["trackers"].items() if "lockstep" in t]
    if lockstep:
        lines += [""] + _table(["tracker", "batch", "lockstep frames/s before", "now", "now / before",
                                "with the starts: before", "now", "now / before"], lockstep)
    lines += ["", f"Accuracy: identical = every measure equal; within tolerance = AO and J&F moved by at "
                  f"most {against['tolerance']:g}."]
    settings = against.get("settings_differ") or {}  # absent in older results
    if settings:
        changes = "; ".join(f"`{key}` {_setting(change['before'])} → {_setting(change['now'])}"
                            for key, change in settings.items())
        lines += [f"Settings that change how the outputs are computed, not what they are: {changes}."]
    if against["speed_conditions_differ"]:
        lines += [f"The speeds are not comparable: {', '.join(against['speed_conditions_differ'])} differ."]
    for key, what in (("only_now", "only in this run"), ("only_before", "only in the earlier run")):
        if against[key]:
            lines += [f"Measured {what}: {', '.join(against[key])}."]
    return lines


def _setting(value) -> str:
    return "the preset's" if value is None else str(value)


def _rate_cells(rates: dict) -> list[str]:
    ratio = rates.get("ratio")
    return [_num(rates.get("before")), _num(rates.get("now")), "–" if ratio is None else f"{ratio:.2f}x"]


def _moved(measure: dict) -> str:
    if measure["change"] is None:
        return "–"
    return f"{measure['before']:.3f} → {measure['now']:.3f} ({measure['change']:+.3f})"


def _target_row(target: dict) -> list[str]:
    unit = "fps" if target["batch"] == 1 else "frames/s in all"
    status = target["status"] if "why" not in target else f"{target['status']}: {target['why']}"
    met = {"met": "**met**"}.get(status, status)
    return [f"{target['target']} (`{target['tracker']}`)", f">= {target['min_fps']:g} {unit}",
            _num(target.get("fps")), met]


def long_markdown(result: dict) -> str:
    meta, spans = result["meta"], result["windows"]
    period = result.get("loop_period", 0)  # absent in results of older versions
    aligned = period > 0 and (spans["late"][0] - spans["early"][0]) % period == 0
    rows = []
    for name, run in result["runs"].items():
        rows.append([name, _cap_text(run["memory_max_entries"]), _num(run["early"]["median_ms"]),
                     _num(run["late"]["median_ms"]), _num(run["late_over_early"], 3),
                     _num(run.get("late_over_early_mean"), 3),
                     _num(run["rss_mb"]["early"], 0), _num(run["rss_mb"]["late"], 0),
                     str(run["memory_entries_last"])])
    lines = [f"# samn bench --long {meta['frames']} ({meta['date']})", "",
             machine_line(meta["machine"]) + ".",
             f"{meta['tracker']} on {meta['sequence']} looped forth and back to {meta['frames']} frames; "
             f"per-frame time over frames [{spans['early'][0]}, {spans['early'][1]}) and "
             f"[{spans['late'][0]}, {spans['late'][1]})"
             + (" (the same source frames, whole loops apart)." if aligned else "."),
             ""]
    lines += _table(["run", "max entries", "early median ms", "late median ms", "late / early",
                     "late / early (means)", "RSS MB early", "RSS MB late", "memory entries at end"], rows)
    if len(rows) > 1:
        lines += ["", "The runs share one process, one after the other as listed: a later run's RSS starts "
                      "from what the earlier left, so compare RSS early to late within a run, not across runs."]
    stages = result["runs"]["cap"].get("stage_ms")  # absent in results of older versions
    if stages:
        lines += ["", "Capped run, per stage (median / mean ms per frame; a stage a frame skips counts 0):", ""]
        lines += _table(["stage", "early median", "late median", "early mean", "late mean"],
                        [[name, _num(s["early_median"], 2), _num(s["late_median"], 2),
                          _num(s["early_mean"], 2), _num(s["late_mean"], 2)] for name, s in stages.items()])
    lines += ["", claim_line(result["claim"])]
    return "\n".join(lines) + "\n"


def claim_line(claim: dict) -> str:
    """The long-video claim and its verdict: holds, does not hold, or not judged and why
    (``holds`` None; results of older versions judged every run)."""
    verdict = {True: "holds", False: "does not hold", None: "not judged"}[claim["holds"]]
    why = f": {claim['why']}" if claim.get("why") else ""
    return f"Claim: {claim['text']} — **{verdict}**{why} (ratio of medians {claim['ratio']:.3f})."


def _cap_text(max_entries: Optional[int], prefix: str = "") -> str:
    return "uncapped" if max_entries is None else f"{prefix}{max_entries}"


def plot_long(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    on_cuda = any(max(r["per_frame"]["cuda_mb"]) > 0 for r in result["runs"].values())
    for name, run in result["runs"].items():
        records = run["per_frame"]
        frames = np.arange(1, len(records["frame_ms"]) + 1)
        times = np.asarray(records["frame_ms"])
        width = max(1, min(25, len(times) // 10))
        smooth = np.array([np.median(times[max(0, i - width):i + width + 1]) for i in range(len(times))])
        label = ("capped" if name == "cap" else "uncapped") + (f" (at most {run['memory_max_entries']} entries)"
                                                                   if run["memory_max_entries"] is not None else "")
        line, = ax_time.plot(frames, smooth, label=label)
        ax_time.plot(frames, times, color=line.get_color(), alpha=0.2, linewidth=0.5)
        ax_mem.plot(frames, records["cuda_mb" if on_cuda else "rss_mb"], color=line.get_color(), label=label)
    for window, span in result["windows"].items():  # the frames whose medians the ratio compares
        ax_time.axvspan(*span, color="grey", alpha=0.15, label=f"{window} frames compared")
    ax_time.set_ylim(bottom=0)  # from 0: a small rise does not look like a doubling
    ax_time.set_ylabel("ms per frame (running median)")
    ax_time.legend()
    ax_mem.set_ylabel("CUDA allocated MB" if on_cuda else "process RSS MB (both runs in one process)")
    ax_mem.set_xlabel("frame")
    fig.suptitle(f"{result['meta']['tracker']} on {result['meta']['sequence']} looped to "
                 f"{result['meta']['frames']} frames ({result['meta']['machine']['device']})")
    _save(fig, path)


@guarded("samn report bench")
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = CommandParser(
        prog="samn report bench", description="Write again the Markdown tables and the plot of a "
        "`samn bench` result (bench.json or long.json), next to its JSON.", epilog="""examples:
  samn report bench results/bench/bench.json
  samn report bench results/bench   (every result in the folder: bench.json, long.json)""")
    parser.add_argument("result", type=Path, help="bench.json or long.json written by samn bench, or their folder")
    args = parser.parse_args(argv)
    for file in bench_result_files(args.result):
        try:
            result = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"not a samn bench result: {file} ({err})") from None
        stem = file.with_suffix("")
        if "runs" in result:
            write_text(stem.with_suffix(".md"), long_markdown(result))
            with replacing(stem.with_suffix(".png")) as partial:
                plot_long(result, partial)
        else:
            write_text(stem.with_suffix(".md"), bench_markdown(result))
            with replacing(stem.with_suffix(".png")) as partial:
                plot_bench(result, partial)
        print(f"wrote {stem}.md and {stem}.png")
    return 0
