"""``samn`` command line: track a video, run benchmarks, make reports, train, benchmark speed."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
from itertools import chain, islice
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker import __version__
from samn_tracker.command_parser import THREADS_HELP, CommandParser, positive_int, seed_number
from samn_tracker.config import PRECISIONS, PRESETS
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded

# Subcommands whose code lives in their own module: name -> (module, help).
DELEGATED = {
    "eval": ("samn_tracker.evaluation.cli", "run GOT-10k / TrackingNet / LaSOT / OTB / DAVIS, or score the "
                                            "memory read (keys): resumable, shardable"),
    "report": ("samn_tracker.reports.cli", "tables and plots from results (got10k, trackingnet, lasot, otb, davis, "
                                         "vot, bench)"),
    "vot": ("samn_tracker.vot.cli", "VOT toolkit workspaces and the local DAVIS stacks"),
    "bench": ("samn_tracker.speed", "speed / memory / accuracy benchmark, JSON + Markdown"),
    "train": ("samn_tracker.train.cli", "train the network (both stages of the paper)"),
    "distill": ("samn_tracker.train.distill", "train the light memory pass (memory_pass=query) from a trained network"),
    "doctor": ("samn_tracker.doctor", "check the environment: torch, OpenCV contrib, VOT toolkit, weights, disk"),
}

EXAMPLES = """examples:
  samn track video.mp4 --box 120,80,200,150 --out results/video
  samn eval davis --root DAVIS --year 2016 --sequences blackswan
  samn bench --data DAVIS --trackers samn_lite,csrt --max-frames 20
  samn doctor

Each command has its own help: samn <command> --help."""

TRACK_EXAMPLES = """examples:
  samn track frames/ --box 127,73,383,312 --out results/blackswan
  samn track video.mp4 --box=-50,-40,200,150 --out results/video --no-video
  samn track DAVIS/JPEGImages/480p/cows --mask cows_00000.png --out results/cows --overwrite
  samn track vot2018/ball1 --out results/ball1 --max-frames 50       (box from groundtruth.txt)
  samn track video.mp4 --select --out results/video                  (draw the box in a window)

The results appear in --out only once every frame is written; until then they are in
OUT.partial, whose run.json says whether the run is running, interrupted or failed. A run
that stopped (Ctrl-C, SIGTERM, a bad frame, a kill) continues with the same command and
--resume, from its last snapshot (every 30 s, and at Ctrl-C or SIGTERM); without --resume
such a run is kept unless --overwrite is given.
Boxes are x,y,w,h in frame pixels, not clipped to the frame: a target leaving the
view may get a negative x."""


def add_track_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object in a video or a folder of frames",
                       epilog=TRACK_EXAMPLES,
                       description="Track the object given on the first frame; writes boxes.txt, "
                                   "polygons.txt, confidence.txt, masks/*.png, overlay.mp4 and "
                                   "run.json to --out.")
    p.add_argument("source",
                   help="video file, folder of frames, or a VOT / GOT-10k / OTB / LaSOT / DAVIS sequence folder")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--box", help="x,y,w,h of the target on the first frame (pixels; may be negative, "
                                    "the part outside the frame is clipped); default: the sequence's "
                                    "ground truth")
    init.add_argument("--polygon", help="x1,y1,x2,y2,... polygon on the first frame")
    init.add_argument("--mask", help="mask of the target on the first frame: nonzero (or, in a 0-255 file, "
                                     "bright) pixels, a palette PNG's nonzero indices or a cut-out's opaque "
                                     "pixels are the object")
    init.add_argument("--select", action="store_true",
                      help="draw the box with the mouse on the first frame, in a window (needs a display); "
                           "the box chosen is printed as the --box that repeats the run")
    p.add_argument("--preset", default="lite", choices=sorted(PRESETS),
                   help="lite: EfficientNet-Lite0, for a CPU, weights built in; paper: ResNet-50 as in "
                        "the paper, for a GPU (downloads ImageNet weights on first use)")
    p.add_argument("--weights", help="checkpoint (.pth); default: the built-in one of the preset")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, metavar="N", help=THREADS_HELP)
    p.add_set_option()
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="network precision (bf16 / fp16 run under autocast)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of the first-frame augmentations")
    p.add_argument("--out", required=True, help="output folder (must be new or empty, or use --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results already in --out once the new run is complete, and an "
                        "unfinished run in OUT.partial that --resume would continue")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in OUT.partial (interrupted, failed or killed) from "
                        "its last snapshot, written every 30 s and at Ctrl-C, instead of from frame 0")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (at least 1); default: all")
    p.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in a batch job's log)")
    p.set_defaults(command_parser=p)


def initial_region(args: argparse.Namespace, sequence, first: np.ndarray):
    """The first frame's region from the options, or the sequence's ground truth. A box drawn
    with ``--select`` stands in for ``--box`` from here on (run.json, ``--resume``'s checks)."""
    from samn_tracker import regions
    from samn_tracker.datasets.images import read_mask

    if args.select:
        if args.resume:
            raise InputError("--resume continues from the box the run started with: give the --box that "
                             "--select printed (run.json in OUT.partial records it too)")
        from samn_tracker.box_picker import pick_box

        args.box = numbers(pick_box(first, f"samn track: {sequence.name}, frame 0"))
        print(f"samn track: --select chose --box {args.box}", file=sys.stderr)
    if args.box:
        values = regions.parse_numbers(args.box, "--box")
        if values.size != 4:
            raise InputError(f"--box needs 4 numbers x,y,w,h, got {args.box!r}")
        return values
    if args.polygon:
        values = regions.parse_numbers(args.polygon, "--polygon")
        if values.size < 6 or values.size % 2:
            raise InputError(f"--polygon needs at least 3 x,y pairs, got {args.polygon!r}")
        return values.reshape(-1, 2)
    if args.mask:
        mask = read_mask(args.mask)
        if mask.shape != first.shape[:2]:
            raise InputError(f"mask {args.mask} is {mask.shape[1]}x{mask.shape[0]}, the first frame "
                             f"is {first.shape[1]}x{first.shape[0]}")
        return mask
    if sequence.groundtruth and sequence.groundtruth[0] is not None:
        return sequence.groundtruth[0]
    raise InputError(f"{args.source} has no ground truth for frame 0: give --box, --polygon or --mask, "
                     "or draw the box with --select")


def check_start(region, shape: tuple[int, int]) -> None:
    """The tracker's checks of the first region, made before anything is written, and a
    note when a box or polygon reaches outside the frame (tracking starts from its part
    inside)."""
    from samn_tracker import regions

    values = np.asarray(region)
    if values.dtype == bool:
        if not values.any():
            raise InputError("the initial mask is empty")
        return
    is_box = values.size == 4
    values = values.astype(np.float64)
    # a polygon's messages give its bounds as x,y,w,h, named so, not as if they were its corners
    what = "initial box" if is_box else "initial polygon's bounding box"
    if is_box:
        box = regions.check_box(values, shape, name=what)
    else:
        box = regions.polygon_to_box(regions.check_polygon(values, shape, name="initial polygon"))
    covered = regions.box_to_mask(box, shape) if is_box else regions.polygon_to_mask(values.reshape(-1, 2), shape)
    if not covered.any():
        raise InputError(f"initial {'box' if is_box else 'polygon'} {numbers(values)} covers no pixel of the image")
    height, width = shape
    if box[0] < 0 or box[1] < 0 or box[0] + box[2] > width or box[1] + box[3] > height:
        x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
        inside = np.array([x0, y0, min(box[0] + box[2], width) - x0, min(box[1] + box[3], height) - y0])
        print(f"samn track: note: the {what} (x,y,w,h) {numbers(box)} reaches outside the {width}x{height} "
              f"frame; tracking starts from its part inside, {numbers(inside)}", file=sys.stderr)


def numbers(values: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in values)


def speed_text(calls: int, seconds: float) -> str:
    """Frames per second of ``calls`` ``track`` calls (a 1-frame run makes none)."""
    if calls < 1 or seconds <= 0:
        return "initialisation only, no fps"
    return f"{calls / seconds:.1f} fps"


@guarded("samn track", on_interrupt="before tracking started; nothing was written")
def run_track(args: argparse.Namespace) -> int:
    import torch

    from samn_tracker.build import build_tracker, tracker_config
    from samn_tracker.datasets import open_sequence
    from samn_tracker.devices import pick_device, use_cpu_threads
    from samn_tracker.run_folder import RunFolder, check_destination
    from samn_tracker.track_resume import check_unfinished, cut_back, resume_point, track_settings
    from samn_tracker.visualize import check_overlay_size

    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    sequence = open_sequence(args.source)
    frames = iter(sequence)
    first = next(frames)
    region = initial_region(args, sequence, first)
    check_start(region, first.shape[:2])
    config = tracker_config(args.preset, args.overrides)
    out = Path(args.out)
    # `--out .`: this folder, by its name; a link: the folder it points to, where the results belong
    out = out.resolve() if out.name in ("", "..") or out.is_symlink() else out
    check_destination(out, args.overwrite)
    settings = track_settings(args)
    if args.resume:
        resumed = resume_point(out, settings, pick_device(args.device))
    else:
        check_unfinished(out, args.overwrite)
        resumed = None
    total = len(sequence) if args.max_frames is None else min(len(sequence), args.max_frames)
    if resumed is not None and resumed.frames > total:  # equal: stopped after its last frame, finished here
        raise InputError(f"--resume: the snapshot is after frame {resumed.frames}, and this run tracks "
                         f"{total} frames; give a larger --max-frames, or run without --resume")
    if not args.no_video:
        check_overlay_size(first.shape[:2])
    began = time.monotonic()
    tracker = build_tracker(config, args.weights, device=args.device, precision=args.precision,
                            seed=args.seed)
    use_cpu_threads(tracker, args.threads)
    with RunFolder(out, args.invocation, settings, resumed=resumed.frames if resumed else 0) as run:
        if resumed is not None:
            cut_back(run.path, resumed)
            run.resumable = True
        start_time, track_time = write_track(run, tracker, sequence, first, frames, region, total,
                                             video=not args.no_video, progress=not args.no_progress,
                                             resumed=resumed)
    summary = finished_text(run.frames, resumed.frames if resumed else None, start_time, track_time,
                            time.monotonic() - began, video=not args.no_video)
    on = f"{tracker.device}, {torch.get_num_threads()} thread(s)" if tracker.device.type == "cpu" else tracker.device
    print(f"{sequence.name}: {summary} on {on} -> {out}")
    return 0


def finished_text(frames: int, resumed: Optional[int], start_time: float, track_time: float,
                  wall: float, video: bool) -> str:
    """How many frames a run wrote, the speed of the ``track`` calls it made (without the
    initialisation, or, resumed, without the frames found in the snapshot), and the run's
    whole time: reading, mask files and the overlay cost more than tracking on large frames."""
    written = f"{frames} frame{'' if frames == 1 else 's'}"
    work = "reading, writing and the overlay" if video else "reading and writing"
    whole = f"{wall:.1f} s in all with loading the model, {work}"
    if resumed is None:
        return f"{written}, {speed_text(frames - 1, track_time)} (initialisation {start_time:.1f} s; {whole})"
    tracked = frames - resumed
    if not tracked:
        return f"{written}, all from the snapshot"
    return (f"{written} ({resumed} from the snapshot, {tracked} tracked now at {speed_text(tracked, track_time)}; "
            f"{whole})")


def write_track(run, tracker, sequence, first: np.ndarray, frames, region, total: int,
                video: bool, progress: bool, resumed=None) -> tuple[float, float]:
    """Track ``total`` frames from ``first`` into ``run.path``, each written whole
    (``run.frame``), with a snapshot for ``--resume`` every ``SNAPSHOT_SECONDS`` and at
    Ctrl-C; returns the seconds of the ``initialize`` call and of the ``track`` calls.
    ``resumed``: the snapshot an earlier attempt left; its frames are not tracked again
    (the overlay of them is drawn from their files). Without ``progress`` no bar; with it
    tqdm's own settings hold (``TQDM_DISABLE=1`` too)."""
    from tqdm import tqdm

    from samn_tracker import regions
    from samn_tracker.datasets.prefetch import prefetched
    from samn_tracker.run_folder import BetweenFrames
    from samn_tracker.track_resume import (SNAPSHOT_FILE, SNAPSHOT_SECONDS, TEXT_FILES, Snapshot, mask_name,
                                           written_frames)
    from samn_tracker.tracking_loop import track_frames
    from samn_tracker.visualize import OverlayWriter, write_mask_png

    folder = run.path
    done = resumed.frames if resumed is not None else 0
    (folder / "masks").mkdir(exist_ok=True)
    overlay = OverlayWriter(folder / "overlay.mp4", first.shape[:2], fps=sequence.fps or 30.0) if video else None
    start_time = track_time = 0.0
    images = chain([first], frames)
    texts = [open(folder / name, "a" if done else "w") for name in TEXT_FILES]
    boxes, polygons, confidences = texts

    def snapshot() -> None:
        for text in texts:
            text.flush()
        sizes = {name: os.fstat(text.fileno()).st_size for name, text in zip(TEXT_FILES, texts)}
        Snapshot(run.frames, tracker.target, sizes).save(folder)
        run.resumable = True
        run.write_status("running")  # run.json's frames: those a kill leaves to --resume

    given_mask = regions.is_mask(region)
    with tqdm(total=total, initial=done, unit="frame", desc=sequence.name,
              **({} if progress else {"disable": True})) as bar:
        try:
            if resumed is not None:
                if overlay is not None:
                    bar.set_postfix_str(f"drawing the overlay of the {done} frames before the snapshot")
                    for image, written in zip(islice(images, done), written_frames(folder, done, len(sequence))):
                        overlay.write(image, written)
                else:  # the frames before the snapshot are passed over, not read as results
                    images = islice(images, done, None)
                tracker.resume(resumed.target)
                bar.set_postfix_str("")
            elif tracker.tunes(given_mask=given_mask):
                steps = tracker.cfg.tuning.steps
                bar.set_postfix_str(f"tuning the decoder on the first frame ({steps} steps)" if given_mask
                                    else f"segmenting the first box, then tuning the decoder on a trusted mask ({steps} steps)")
            ahead = prefetched(islice(images, total - done), pin=tracker.device.type == "cuda")
            saved = time.monotonic()
            for step in track_frames(tracker, ahead, region, first_index=done):
                pred = step.output
                if step.index or resumed is not None:  # frame 0 is initialisation, not tracking
                    track_time += step.seconds
                else:
                    start_time = step.seconds
                    bar.set_postfix_str("")
                with run.frame():
                    boxes.write(",".join(f"{v:.2f}" for v in pred.box) + "\n")
                    polygons.write(",".join(f"{v:.2f}" for v in pred.polygon.reshape(-1)) + "\n")
                    confidences.write(f"{pred.confidence:.4f}\n")
                    write_mask_png(folder / "masks" / mask_name(step.index, len(sequence)), pred.mask)
                    if overlay is not None:
                        overlay.write(step.image, pred)
                bar.update()
                if time.monotonic() - saved >= SNAPSHOT_SECONDS:
                    snapshot()
                    saved = time.monotonic()
            if bar.n < total:  # the video ended before its packets did (an edit list, a
                bar.total = bar.n  # truncated file: decode_video warns); the bar ends whole
                bar.refresh()
            (folder / SNAPSHOT_FILE).unlink(missing_ok=True)  # complete: nothing left to resume
        except (BetweenFrames, InputError):  # both come between frames: a frame that fails to
            if run.frames > done:            # read is raised once the one before it is written
                snapshot()
            raise
        finally:
            for text in texts:
                text.close()
            if overlay is not None:
                overlay.close()
    return start_time, track_time


def build_parser() -> CommandParser:
    parser = CommandParser(prog="samn", description=__doc__, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"samn_tracker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_track_parser(sub)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


COORDINATE_OPTIONS = ("--box", "--polygon")
NEGATIVE_NUMBER = re.compile(r"-\.?\d")


def attach_negative_values(argv: Sequence[str]) -> list[str]:
    """``--box -50,-40,200,150`` -> ``--box=-50,-40,200,150``: argparse reads a value that
    starts with "-" (and is not one plain number) as an option, but negative coordinates
    are legal."""
    joined: list[str] = []
    for item in argv:
        if joined and joined[-1] in COORDINATE_OPTIONS and NEGATIVE_NUMBER.match(item):
            joined[-1] = f"{joined[-1]}={item}"
        else:
            joined.append(item)
    return joined


@guarded("samn")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # FFmpeg prints its own lines for a broken video ("moov atom not found", "No JPEG data found
    # in image" at its fatal level too) beside ours, which name the file and the frames; OpenCV
    # reads the level once, at its first video, and a user who wants those lines can set it
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return module.main(argv[1:])
    args, unknown = build_parser().parse_known_args(attach_negative_values(argv))
    if unknown:  # told by `samn track`, whose options they are not, not by the top level
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.invocation = ["samn", *argv]
    return run_track(args)


if __name__ == "__main__":
    sys.exit(main())
