"""TraX entry point: ``python -m samn_tracker.vot.trax_server [--preset lite] [--output auto]``.

The VOT toolkit starts this process once per sequence (``protocol = traxpython`` in
``trackers.ini``) and talks TraX over stdin/stdout, so nothing here may print to stdout.
The network is built once; every TraX ``initialize`` (reset-based experiments send many)
re-initialises the same ``SAMNTracker``. Bad input (empty region, region outside the
image, unreadable image) or a broken TraX stream is reported on stderr (one line) and as
the TraX quit reason, and the process exits with status 1 instead of leaving the toolkit
waiting; a bad option or setting at start-up exits with status 2, as every command's.

Options default to environment variables so ``trackers.ini`` entries can set them with
``env_SAMN_VOT_*`` keys: ``SAMN_VOT_PRESET``, ``SAMN_VOT_WEIGHTS``, ``SAMN_VOT_DEVICE``,
``SAMN_VOT_THREADS`` (on a CPU; by default ``lite`` runs on one thread, as in ``samn track``),
``SAMN_VOT_OUTPUT`` and ``SAMN_VOT_CONFIG``: settings of the preset in the ``KEY=VALUE``
grammar of every ``--set`` option, separated by spaces (shell quoting), e.g.
``crop_size=128 memory.interval=5``; ``--set`` on the command line adds to them.

``--output auto`` answers in the kind of the region that initialised the target: the
kind of the stack's ground truth, against which overlaps are computed. A rotated box
scored against axis-aligned boxes (VOT-LT, the local box stacks) loses overlap even around
a perfect mask: on the 20 DAVIS val sequences, ``local_box`` EAO 0.646 as polygons, 0.770 as
rectangles; ``local_lt`` F 0.551 and 0.632.
Each ``track`` answer carries the tracker's ``confidence``; the ``initialize`` answer
carries none, as with the toolkit's own Python integration: frame 0 predicts nothing,
and a confidence there would put that frame (overlap 0) above every long-term threshold.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, get_args

import numpy as np

from samn_tracker.command_parser import THREADS_HELP, CommandParser, positive_int
from samn_tracker.errors import InputError
from samn_tracker.exits import INPUT_ERROR, SYSTEM_ERROR, guarded
from samn_tracker.settings import parse_overrides

OutputKind = Literal["auto", "mask", "polygon", "rectangle"]
OUTPUT_KINDS = get_args(OutputKind)


@dataclass
class ServerOptions:
    preset: str = "lite"
    weights: Optional[str] = None
    device: str = "auto"
    threads: Optional[int] = None  # CPU threads; None: devices.cpu_threads' rule
    output: OutputKind = "auto"   # auto: the kind of the initial region
    overrides: dict[str, Any] = field(default_factory=dict)


def region_from_trax(region, shape: tuple[int, int]) -> np.ndarray:
    """TraX rectangle / polygon / mask -> box (4,), polygon (N,2) or full-frame bool mask,
    checked against the image ``shape`` = (H, W)."""
    from trax.region import Region as TraxRegion

    from samn_tracker.regions import check_box, polygon_to_box

    height, width = shape
    if region.type == TraxRegion.RECTANGLE:
        box = np.asarray(region.bounds(), dtype=float)
        return check_box(box, shape, name="initial rectangle")
    if region.type == TraxRegion.POLYGON:
        polygon = np.asarray(list(region), dtype=float).reshape(-1, 2)
        if len(polygon) < 3:
            raise InputError(f"initial polygon has {len(polygon)} points, needs at least 3")
        check_box(polygon_to_box(polygon), shape, name="initial polygon")
        return polygon
    if region.type == TraxRegion.MASK:
        patch = np.asarray(region.array()) > 0
        x0, y0 = region.offset()
        mask = np.zeros((height, width), dtype=bool)
        x1, y1 = min(x0 + patch.shape[1], width), min(y0 + patch.shape[0], height)
        if x1 > max(x0, 0) and y1 > max(y0, 0):
            mask[max(y0, 0):y1, max(x0, 0):x1] = patch[max(-y0, 0):y1 - y0, max(-x0, 0):x1 - x0]
        if not patch.any():
            raise InputError(f"initial mask (offset {x0},{y0}, size {patch.shape[1]}x{patch.shape[0]}) is empty")
        if not mask.any():
            raise InputError(f"initial mask (offset {x0},{y0}, size {patch.shape[1]}x{patch.shape[0]}) "
                             f"has no pixel inside the {width}x{height} image")
        return mask
    raise InputError(f"unsupported initial region type {region.type!r}")


def region_to_trax(prediction, kind: str):
    """The prediction as a TraX region of ``kind`` (mask / polygon / rectangle)."""
    from trax.region import Mask, Polygon, Rectangle

    if kind == "mask":
        mask = np.asarray(prediction.mask, dtype=bool)
        if not mask.any():
            # VOT has no "target absent" answer, and the toolkit's anchor-based analysis
            # divides by zero on a run of empty masks: report the box the tracker holds.
            from samn_tracker.regions import box_to_mask
            mask = box_to_mask(prediction.box, mask.shape)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return Mask.create(np.zeros((1, 1), dtype=np.uint8), 0, 0)
        patch = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return Mask.create(np.ascontiguousarray(patch, dtype=np.uint8), int(cols[0]), int(rows[0]))
    if kind == "polygon":
        return Polygon.create([(float(x), float(y)) for x, y in np.asarray(prediction.polygon)])
    x, y, w, h = (float(v) for v in prediction.box)
    return Rectangle.create(x, y, w, h)


def _image(request) -> np.ndarray:
    from samn_tracker.datasets import read_image

    images = request.image
    channel = images.get("color") if isinstance(images, dict) else images
    if channel is None:
        raise InputError("TraX request carries no color image")
    return read_image(channel.path())


def serve(tracker, output: OutputKind = "auto") -> int:
    """Answer TraX requests with ``tracker`` until the client quits; returns the exit code."""
    import trax

    server = trax.Server(["rectangle", "polygon", "mask"], ["path"], ["color"],
                         tracker_name="samn", tracker_family="samn",
                         tracker_description="SAMN segmentation tracker")
    kinds = {trax.region.Region.RECTANGLE: "rectangle", trax.region.Region.POLYGON: "polygon",
             trax.region.Region.MASK: "mask"}
    kind = "rectangle" if output == "auto" else output
    try:
        while True:
            request = server.wait()
            if request.type == trax.TraxStatus.QUIT:
                return 0
            image = _image(request)
            if request.type == trax.TraxStatus.INITIALIZE:
                if len(request.objects) != 1:
                    raise InputError(f"expected one object to initialise, got {len(request.objects)}")
                region = request.objects[0][0]
                if output == "auto":
                    kind = kinds[region.type]
                prediction = tracker.initialize(image, region_from_trax(region, image.shape[:2]))
                properties = {}  # as the toolkit's own Python integration: frame 0 predicts nothing
            else:
                prediction = tracker.track(image)
                properties = {"confidence": float(prediction.confidence)}
            server.status([(region_to_trax(prediction, kind), properties)])
    except InputError as error:
        message = f"samn trax server: error: {error}"
        status = 1
    except trax.TraxException as error:  # stdin closed or not TraX: no stack to read
        message = (f"samn trax server: error: the TraX connection failed ({error}); the VOT toolkit "
                   "starts this server and talks to it over stdin/stdout")
        status = 1
    except Exception as error:  # reported to the toolkit instead of leaving it waiting
        traceback.print_exc(file=sys.stderr)
        message = f"samn trax server: unexpected {type(error).__name__}: {error}"
        status = 2
    print(message, file=sys.stderr, flush=True)
    try:
        server.quit(reason=message)
    except trax.TraxException:
        pass  # the client is gone already
    return status


def options_from_args(argv: Optional[list[str]] = None) -> ServerOptions:
    env = os.environ
    parser = CommandParser(prog="python -m samn_tracker.vot.trax_server",
                           description="SAMN tracker TraX server for the VOT toolkit")
    parser.add_argument("--preset", default=env.get("SAMN_VOT_PRESET", "lite"))
    parser.add_argument("--weights", default=env.get("SAMN_VOT_WEIGHTS") or None)
    parser.add_argument("--device", default=env.get("SAMN_VOT_DEVICE", "auto"))
    parser.add_argument("--threads", type=positive_int, metavar="N", help=THREADS_HELP)
    parser.add_argument("--output", choices=OUTPUT_KINDS, default=env.get("SAMN_VOT_OUTPUT", "auto"))
    parser.add_set_option()
    try:
        parser.set_defaults(overrides=shlex.split(env.get("SAMN_VOT_CONFIG", "")))
    except ValueError as err:
        raise InputError(f"SAMN_VOT_CONFIG={env['SAMN_VOT_CONFIG']!r} cannot be split into "
                         f"KEY=VALUE items: {err}") from None
    args = parser.parse_args(argv)
    if args.output not in OUTPUT_KINDS:
        parser.error(f"SAMN_VOT_OUTPUT={args.output!r}: choose one of {', '.join(OUTPUT_KINDS)}")
    if args.threads is None and env.get("SAMN_VOT_THREADS"):
        try:
            args.threads = positive_int(env["SAMN_VOT_THREADS"])
        except argparse.ArgumentTypeError as err:
            parser.error(f"SAMN_VOT_THREADS={env['SAMN_VOT_THREADS']!r}: {err}")
    return ServerOptions(preset=args.preset, weights=args.weights, device=args.device,
                         threads=args.threads, output=args.output, overrides=parse_overrides(args.overrides))


def tracker_for(options: ServerOptions):
    from samn_tracker.build import build_tracker as front_door
    from samn_tracker.devices import use_cpu_threads

    tracker = front_door(options.preset, options.weights, options.overrides, options.device)
    use_cpu_threads(tracker, options.threads)
    return tracker


@guarded("samn trax server")
def main(argv: Optional[list[str]] = None) -> int:
    try:
        options = options_from_args(argv)
        tracker = tracker_for(options)
    except (InputError, OSError) as error:  # bad start-up input ends as every command's does
        print(f"samn trax server: cannot start: {error}", file=sys.stderr, flush=True)
        return SYSTEM_ERROR if isinstance(error, OSError) else INPUT_ERROR
    return serve(tracker, options.output)


if __name__ == "__main__":
    raise SystemExit(main())
