"""``samn`` command line: track a video, run benchmarks, make reports, train, benchmark speed."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from samn_tracker.errors import InputError

# Subcommands whose code lives in their own module: name -> (module, help).
DELEGATED = {
    "eval": ("samn_tracker.evaluation.cli", "run GOT-10k / TrackingNet / DAVIS (see docs/evaluation.md)"),
    "report": ("samn_tracker.reporting", "tables and plots from results (got10k, trackingnet, davis, vot)"),
    "bench": ("samn_tracker.speed", "speed / memory / accuracy benchmark, JSON + Markdown"),
    "train": ("samn_tracker.train.cli", "train the network (both stages of the paper)"),
}


def parse_numbers(text: str, name: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.replace(";", ",").split(",")], dtype=np.float64)
    except ValueError:
        raise InputError(f"{name} {text!r} is not a comma-separated list of numbers") from None
    return values


def add_track_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one object in a video or a folder of frames",
                       description="Track the object given on the first frame; writes boxes.txt, "
                                   "polygons.txt, confidence.txt, masks/*.png and overlay.mp4 to --out.")
    p.add_argument("source", help="video file, folder of frames, or a VOT / GOT-10k / OTB / DAVIS sequence folder")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--box", help="x,y,w,h of the target on the first frame (pixels)")
    init.add_argument("--polygon", help="x1,y1,x2,y2,... polygon on the first frame")
    init.add_argument("--mask", help="PNG mask of the target on the first frame (nonzero = object)")
    p.add_argument("--preset", default="lite", choices=["lite", "paper"])
    p.add_argument("--weights", help="checkpoint (.pth); default: the built-in one of the preset")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")


def initial_region(args: argparse.Namespace, sequence, first: np.ndarray):
    from samn_tracker.sequences import read_image

    if args.box:
        values = parse_numbers(args.box, "--box")
        if values.size != 4:
            raise InputError(f"--box needs 4 numbers x,y,w,h, got {args.box!r}")
        return values
    if args.polygon:
        values = parse_numbers(args.polygon, "--polygon")
        if values.size < 6 or values.size % 2:
            raise InputError(f"--polygon needs at least 3 x,y pairs, got {args.polygon!r}")
        return values.reshape(-1, 2)
    if args.mask:
        mask = read_image(args.mask).max(axis=2) > 0
        if mask.shape != first.shape[:2]:
            raise InputError(f"mask {args.mask} is {mask.shape[1]}x{mask.shape[0]}, the first frame "
                             f"is {first.shape[1]}x{first.shape[0]}")
        return mask
    if sequence.groundtruth and sequence.groundtruth[0] is not None:
        return sequence.groundtruth[0]
    raise InputError(f"{args.source} has no ground truth for frame 0: give --box, --polygon or --mask")


def run_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from samn_tracker.sequences import open_sequence
    from samn_tracker.tracker import SAMNTracker
    from samn_tracker.visualize import OverlayWriter, write_mask_png

    sequence = open_sequence(args.source)
    frames = iter(sequence)
    first = next(frames)
    region = initial_region(args, sequence, first)
    tracker = SAMNTracker(args.preset, weights=args.weights, device=args.device)
    out = Path(args.out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    total = len(sequence) if args.max_frames is None else min(len(sequence), args.max_frames)
    overlay = None if args.no_video else OverlayWriter(out / "overlay.mp4", first.shape[:2],
                                                       fps=sequence.fps or 30.0)
    done, track_time = 0, 0.0
    with open(out / "boxes.txt", "w") as boxes, open(out / "polygons.txt", "w") as polygons, \
            open(out / "confidence.txt", "w") as confidences:
        bar = tqdm(total=total, unit="frame", desc=sequence.name)
        try:
            image = first
            while done < total:
                start = time.perf_counter()
                pred = tracker.initialize(image, region) if done == 0 else tracker.track(image)
                if done:  # frame 0 is initialisation, not tracking
                    track_time += time.perf_counter() - start
                boxes.write(",".join(f"{v:.2f}" for v in pred.box) + "\n")
                polygons.write(",".join(f"{v:.2f}" for v in pred.polygon.reshape(-1)) + "\n")
                confidences.write(f"{pred.confidence:.4f}\n")
                write_mask_png(out / "masks" / f"{done:05d}.png", pred.mask)
                if overlay is not None:
                    overlay.write(image, pred)
                done += 1
                bar.update()
                if done < total:
                    image = next(frames)
        except KeyboardInterrupt:
            print(f"\ninterrupted: {done} frames written to {out}", file=sys.stderr)
        finally:
            bar.close()
            if overlay is not None:
                overlay.close()
    fps = (done - 1) / track_time if done > 1 and track_time > 0 else float("nan")
    print(f"{sequence.name}: {done} frames, {fps:.1f} fps on {tracker.device} -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_track_parser(sub)
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return module.main(argv[1:])
    args = parser.parse_args(argv)
    try:
        return run_track(args)
    except InputError as err:
        print(f"samn: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
