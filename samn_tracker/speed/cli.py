"""``samn bench``: argument parsing and the order of work; the measuring lives in the
sibling modules (runs, accuracy, long_video, probes)."""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import torch

from samn_tracker.command_parser import CommandParser, check_groups, comma_names, positive_int
from samn_tracker.speed.accuracy import accuracy
from samn_tracker.speed.against import compare_runs, load_earlier
from samn_tracker.speed.batched import batched_throughput
from samn_tracker.speed.long_video import long_benchmark
from samn_tracker.speed.probes import code_description, machine_description
from samn_tracker.speed.profiling import profile_frames, profile_lockstep
from samn_tracker.speed.resume import KeptTrackers, forget_kept
from samn_tracker.speed.runs import BenchSequence, load_sequence, run_sequence, speed_summary, warm_up
from samn_tracker.speed.targets import judged_targets
from samn_tracker.speed.trackers import SAMN_PRESETS, TRACKER_NAMES, bench_tracker
from samn_tracker.tracking_loop import lockstep_groups
from samn_tracker.atomic import replacing, write_text
from samn_tracker.build import tracker_config
from samn_tracker.config import PRECISIONS, TrackerConfig, preset
from samn_tracker.devices import Rank, set_cpu_threads
from samn_tracker.settings import parse_overrides
from samn_tracker.datasets.davis import sequence_names
from samn_tracker.datasets.roots import DATA_VARIABLE, data_root
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.run_folder import check_writable
from samn_tracker.reports.speed import bench_markdown, long_markdown, plot_bench, plot_long
from samn_tracker.weights import DownloadError

LITE_CAP = preset("lite").memory.max_entries
FALLBACK_CAP = 10  # the capped long run of a preset whose memory is unbounded (paper)
# --against: AO / J&F changes this small count as unchanged. Float rounding alone (another
# thread count, OpenCV or torch crops) has moved the four eval sequences' AO by up to 0.02
# (docs/bench.md), so a change above this is a reason to look, not proof of a regression.
DEFAULT_TOLERANCE = 0.005
REPORT_OPTIONS = ("against", "tolerance", "out", "no_progress", "argv")
# Lower bounds of the counts read as plain whole numbers, checked before any work.
AT_LEAST = {"repeat": 1, "warmup": 0, "threads": 1, "cap": 1, "long": 10}
# Options of one mode: given in the other, they are refused rather than ignored.
LONG_ONLY = ("cap",)
BENCH_ONLY = ("against", "tolerance", "repeat", "warmup", "batch", "groups", "profile")
# Options that change only the SAMN presets: a run that measures none says so.
SAMN_ONLY = ("batch", "groups", "profile", "overrides", "weights", "precision", "device")
FLAGS = {"overrides": "--set"}  # options whose flag is not their name


def build_parser() -> CommandParser:
    p = CommandParser(
        prog="samn bench", epilog="""examples:
  samn bench --data ../shared/data/davis16 --trackers samn_lite,csrt --threads 1
  samn bench --data /data/DAVIS --split val --trackers samn_lite,csrt --out results/bench_val
  samn bench --trackers samn_paper --device cuda --repeat 3
  samn bench --trackers samn_lite --device cuda --batch 32
  samn bench --long 3000 --threads 1
  samn bench --trackers samn_lite --out results/now --against results/before""", description="Per-stage speed, peak memory and accuracy of SAMN (lite, paper) and OpenCV "
                    "CSRT / KCF on the same frames; --long N: per-frame cost against video length "
                    "with and without the memory cap. Writes JSON + Markdown (and a PNG) to --out. "
                    "Interrupted, it keeps the trackers it finished; the same command resumes.")
    p.add_argument("--trackers", default="samn_lite,samn_paper,csrt,kcf",
                   help=f"comma-separated, from {', '.join(TRACKER_NAMES)}")
    p.add_sequences_option("DAVIS sequence names (default: those of --split)")
    p.add_argument("--split", default="eval",
                   help="split of --data measured without --sequences (splits.txt or ImageSets; default: eval)")
    p.add_argument("--data", help=f"DAVIS root with boxes/<seq>.txt (default: ${DATA_VARIABLE})")
    p.add_argument("--max-frames", type=int, help="use at most this many frames of each sequence")
    p.add_argument("--device", default="auto", help="SAMN device: auto, cpu, cuda, cuda:N")
    p.add_argument("--weights", action="append", default=[], metavar="[PRESET=]PATH",
                   help="checkpoint for SAMN; PRESET=PATH (lite=..., paper=...) for one preset only")
    p.add_set_option(example="crop_size=192 memory.last_frame=False")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="SAMN network precision (autocast; bf16 uses AMX on recent Xeons)")
    p.add_argument("--repeat", type=int, default=1, help="timed passes per tracker (report the spread)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed frames of the first sequence before timing each tracker (at most its tracked frames)")
    p.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="also track N videos in lockstep with SAMN (the sequences repeated to fill "
                        "the batch) and report aggregate frames/s")
    p.add_groups_option()
    p.add_argument("--profile", type=positive_int, metavar="N",
                   help="also profile N tracked frames of the first sequence per SAMN preset "
                        "(torch.profiler: launches, copies, waits, operators and device time per "
                        "frame; tables in profile_<tracker>.txt), and with --batch N lockstep steps")
    p.add_argument("--threads", type=int, help="torch and OpenCV CPU threads (default: library defaults)")
    p.add_argument("--long", type=int, metavar="N",
                   help="long-video mode (N >= 10): loop the first sequence to N frames with the first SAMN "
                        "preset of --trackers (default samn_lite), capped and uncapped")
    p.add_argument("--cap", type=int, help="with --long: memory.max_entries of the capped run (default: the "
                                           f"preset's own cap, lite {LITE_CAP}, or {FALLBACK_CAP})")
    p.add_argument("--against", type=Path, metavar="EARLIER",
                   help="an earlier run's bench.json (or its folder): add how much faster each tracker "
                        "is now and whether its accuracy changed (e.g. the same command on the previous code)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"with --against: AO and J&F changes up to this count as unchanged "
                        f"(default {DEFAULT_TOLERANCE})")
    p.add_argument("--out", default="results/bench", help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    return p


def flag(dest: str) -> str:
    return FLAGS.get(dest, "--" + dest.replace("_", "-"))


def note(text: str) -> None:
    print(f"samn bench: note: {text}", file=sys.stderr)


def given(args: argparse.Namespace, dests: Sequence[str]) -> list[str]:
    """Those of ``dests`` that the command line set otherwise than by default."""
    defaults = build_parser().parse_args([])
    return [dest for dest in dests if getattr(args, dest) != getattr(defaults, dest)]


def check_options(args: argparse.Namespace) -> None:
    """Refuse, before any work, a count below its bound and an option of the other mode."""
    for dest, least in AT_LEAST.items():
        if getattr(args, dest) is not None and getattr(args, dest) < least:
            raise InputError(f"{flag(dest)} must be at least {least}, got {getattr(args, dest)}")
    if not args.tolerance >= 0:
        raise InputError(f"--tolerance must be a number >= 0, got {args.tolerance}")
    if args.long is not None and given(args, BENCH_ONLY):
        raise InputError(f"{flag(given(args, BENCH_ONLY)[0])} does not apply to --long")
    if args.long is None and given(args, LONG_ONLY):
        raise InputError(f"{flag(given(args, LONG_ONLY)[0])} applies to --long only")


def split_names(items: Sequence[str], allowed: Optional[Sequence[str]], what: str) -> list[str]:
    """The names of comma lists, each once (a repeated one with a note)."""
    names, repeated = comma_names(items)
    if not names:
        raise InputError(f"no {what} given")
    unknown = [n for n in names if allowed is not None and n not in allowed]
    if unknown:
        raise InputError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if repeated:
        note(f"{what} {', '.join(repeated)} given more than once; measured once")
    return names


def warmup_frames(asked: int, first: BenchSequence, profiled: bool) -> int:
    """``--warmup``, at most the tracked frames of the first sequence, where it runs (with
    ``--profile`` one fewer, so that a frame is left to profile)."""
    room = len(first.frames) - 1 - int(profiled)
    if asked <= room:
        return asked
    left = ", one left to profile" if profiled else ""
    note(f"--warmup {asked}: {first.name} has {len(first.frames)} frames, so {room} warm-up frame(s) run{left}")
    return room


def weights_for(items: Sequence[str], tracker: str) -> Optional[str]:
    """The checkpoint of ``samn_<preset>`` from ``--weights`` (a bare PATH applies to all)."""
    preset = SAMN_PRESETS.get(tracker)
    chosen = None
    for item in items:
        key, sep, path = item.partition("=")
        if not sep:
            chosen = chosen or item
        elif key not in SAMN_PRESETS.values():
            raise InputError(f"--weights {item!r}: {key!r} is not a preset ({', '.join(SAMN_PRESETS.values())})")
        elif key == preset:
            chosen = path
    return chosen


def sequences_of(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The DAVIS root and the sequences to measure on it."""
    root = data_root(args.data, "--data")
    if args.sequences is None:
        return root, sequence_names(root, 2016, args.split)
    return root, split_names(args.sequences, None, "sequence")


def meta(args: argparse.Namespace, device: torch.device) -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": ["samn", "bench", *args.argv],
            "code": code_description(), "machine": machine_description(device), "opencv": cv2.__version__,
            "opencv_threads": cv2.getNumThreads()}


def samn_device(args: argparse.Namespace) -> torch.device:
    return Rank.from_env().device(args.device)


def checked_overrides(args: argparse.Namespace, trackers: Sequence[str]) -> dict:
    """The ``--set`` settings, checked before any work against every SAMN preset measured,
    or lite's when none is (an unknown key is a mistake even where it changes nothing)."""
    overrides = parse_overrides(args.overrides)
    for preset_name in [SAMN_PRESETS[n] for n in trackers if n in SAMN_PRESETS] or ["lite"]:
        tracker_config(preset_name, overrides)
    return overrides


def note_unused_weights(items: Sequence[str], measured: Sequence[str]) -> None:
    """Check every ``--weights PRESET=PATH`` names a preset, and say so when its preset is
    not measured (``measured``: the SAMN trackers that run; none: the SAMN-only note says it)."""
    weights_for(items, "")  # an unknown PRESET is refused here, before any work
    presets = {SAMN_PRESETS[name] for name in measured}
    unused = [item for item in items if "=" in item and item.partition("=")[0] not in presets]
    if measured and unused:
        note(f"--weights {', '.join(unused)} unused: no such preset is measured ({', '.join(measured)})")


def measured_settings(args: argparse.Namespace) -> dict:
    """The options that decide what a run measures (an interrupted run's trackers are kept
    for a run with the same), not those that only change its report."""
    return {key: str(value) if isinstance(value, Path) else value for key, value in sorted(vars(args).items())
            if key not in REPORT_OPTIONS}


def run_bench(args: argparse.Namespace, out: Path) -> dict:
    trackers = split_names([args.trackers], TRACKER_NAMES, "tracker")
    check_groups(args.batch, args.groups)
    earlier = load_earlier(args.against) if args.against is not None else None  # before any work
    root, names = sequences_of(args)
    overrides = checked_overrides(args, trackers)
    note_unused_weights(args.weights, [name for name in trackers if name in SAMN_PRESETS])
    device = samn_device(args)
    sequences = [load_sequence(root, n, args.max_frames, pin=device.type == "cuda") for n in names]
    samn = [name for name in trackers if name in SAMN_PRESETS]
    args.warmup = warmup_frames(args.warmup, sequences[0], bool(args.profile and samn))
    if not samn and given(args, SAMN_ONLY):
        note(f"{', '.join(flag(d) for d in given(args, SAMN_ONLY))} apply to the SAMN presets only, "
             f"and none is measured ({', '.join(trackers)})")
    info = meta(args, device)
    info.update(sequences=names, repeat=args.repeat, warmup=args.warmup, precision=args.precision,
                frames_per_pass=sum(len(s.frames) - 1 for s in sequences), overrides=overrides,
                max_frames=args.max_frames, kept_from_interrupted_run={})
    result = {"meta": info, "trackers": {}, "skipped": {}}
    kept = KeptTrackers(out, {**measured_settings(args), "data": str(root)}, info["code"])
    if kept.ignored:
        print(f"samn bench: not resuming from {kept.path}: {kept.ignored}", file=sys.stderr)
    for name in trackers:
        if name in kept.entries:
            print(f"samn bench: {name} kept from the interrupted run (measured {kept.dates[name]})",
                  file=sys.stderr)
            result["trackers"][name] = kept.entries[name]
            info["kept_from_interrupted_run"][name] = kept.dates[name]
            continue
        try:
            entry = measure_tracker(name, args, overrides, sequences, out)
        except DownloadError as err:  # e.g. ResNet-50 ImageNet weights offline: run the others
            result["skipped"][name] = str(err)
            print(f"samn bench: skipping {name}: {err}", file=sys.stderr)
            continue
        except KeyboardInterrupt:
            raise kept.interrupted(name) from None
        result["trackers"][name] = entry
        kept.keep(name, entry, time.strftime("%Y-%m-%d %H:%M:%S"))
    fps = {n: e["speed"]["fps"] for n, e in result["trackers"].items()}
    result["ratios"] = {f"{n} fps / csrt fps": fps[n] / fps["csrt"]
                        for n in fps if n.startswith("samn") and "csrt" in fps}
    result["targets"] = judged_targets(result)
    if earlier is not None:
        result["against"] = compare_runs(result, *earlier, args.tolerance)
    return result


def measure_tracker(name: str, args: argparse.Namespace, overrides: dict, sequences: list, out: Path) -> dict:
    """One tracker's entry: speed over ``--repeat`` passes, accuracy of the first, and with
    ``--batch`` / ``--profile`` the lockstep throughput and the profiles."""
    gc.collect()
    tracker = bench_tracker(name, args.device, weights_for(args.weights, name), overrides, args.precision)
    warm_up(tracker, sequences[0], args.warmup)
    passes = []
    for rep in range(args.repeat):
        keep = rep == 0  # accuracy from the first pass; the tracker is deterministic
        passes.append([run_sequence(tracker, s, keep_masks=keep, progress=not args.no_progress)
                       for s in sequences])
    entry = {"details": tracker.details, "speed": speed_summary(passes, tracker.stages),
             "accuracy": accuracy(passes[0], sequences)}
    groups = lockstep_groups(args.groups, args.batch, tracker.tracker) if name in SAMN_PRESETS else 1
    if args.batch > 1 and name in SAMN_PRESETS:
        entry["batched"] = batched_throughput(tracker.tracker, sequences, args.batch,
                                              entry["accuracy"], progress=not args.no_progress,
                                              groups=groups)
    if args.profile and name in SAMN_PRESETS:
        entry["profile"], tables = profile_frames(tracker, sequences[0], args.profile, args.warmup)
        write_text(out / f"profile_{name}.txt", tables)
        if args.batch > 1:
            entry["batched"]["profile"], tables = profile_lockstep(
                tracker.tracker, sequences, args.batch, groups, args.profile, args.warmup)
            write_text(out / f"profile_{name}_batch{args.batch}.txt", tables)
    return entry


def run_long_mode(args: argparse.Namespace) -> dict:
    trackers = split_names([args.trackers], TRACKER_NAMES, "tracker")
    name = next((n for n in trackers if n in SAMN_PRESETS), "samn_lite")
    root, names = sequences_of(args)
    seq_name = names[0]
    left = [n for dest, listed in (("trackers", trackers), ("sequences", names)) if given(args, [dest])
            for n in listed if n not in (name, seq_name)]
    if left:
        note(f"--long measures one SAMN preset on one sequence, {name} on {seq_name}; not {', '.join(left)}")
    overrides = checked_overrides(args, [name])
    note_unused_weights(args.weights, [name])
    device = samn_device(args)
    seq = load_sequence(root, seq_name, args.max_frames, pin=device.type == "cuda")
    info = meta(args, device)
    info.update(tracker=name, sequence=seq_name, source_frames=len(seq.frames), frames=args.long,
                precision=args.precision,
                overrides=overrides)

    def make(max_entries: Optional[int]):
        gc.collect()
        return bench_tracker(name, args.device, weights_for(args.weights, name),
                             {**overrides, "memory.max_entries": max_entries}, args.precision)

    cap = long_cap(args.cap, tracker_config(SAMN_PRESETS[name], overrides))
    return {"meta": info, **long_benchmark(make, seq, args.long, cap, not args.no_progress)}


def long_cap(cap: Optional[int], config: TrackerConfig) -> int:
    """The capped long run's ``memory.max_entries``: ``--cap``, else the tracker's own cap
    (what a user of that preset runs with), else ``FALLBACK_CAP``."""
    return cap or config.memory.max_entries or FALLBACK_CAP


@guarded("samn bench", on_interrupt="(nothing written)")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    check_options(args)
    out = Path(args.out)
    check_writable(out, out)
    args.argv = argv
    if args.threads is not None:
        set_cpu_threads(args.threads)
    if args.long is not None:
        result = run_long_mode(args)
        stem, table = "long", long_markdown(result)
        with replacing(out / "long.png") as partial:
            plot_long(result, partial)
    else:
        result = run_bench(args, out)
        stem, table = "bench", bench_markdown(result)
        with replacing(out / "bench.png") as partial:
            plot_bench(result, partial)
    write_text(out / f"{stem}.json", json.dumps(result, indent=1))
    write_text(out / f"{stem}.md", table)
    if stem == "bench":
        forget_kept(out)
    print(table)
    print(f"wrote {out / (stem + '.json')}, {out / (stem + '.md')} and {out / (stem + '.png')}")
    return 0
