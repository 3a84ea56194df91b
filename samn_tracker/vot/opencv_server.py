"""TraX entry point for OpenCV's CSRT / KCF: the baseline inside ``vot evaluate``.

``python -m samn_tracker.vot.opencv_server --tracker csrt`` (or ``SAMN_VOT_OPENCV=csrt``
from a ``trackers.ini`` entry) answers the same TraX requests as the SAMN server, with
the same request loop, so ``vot evaluate`` / ``vot analysis`` compare SAMN with CSRT on
identical terms. A polygon or mask initialisation is reduced to its bounding box,
which is all these trackers take; they answer rectangles.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import InputError
from samn_tracker.exits import INPUT_ERROR, guarded
from samn_tracker.regions import mask_to_box, polygon_to_box
from samn_tracker.speed.trackers import OPENCV_TRACKERS, OpenCVBench
from samn_tracker.vot.trax_server import serve


@dataclass
class BoxPrediction:
    box: np.ndarray
    confidence: float = 1.0


class OpenCVTraxTracker:
    """An OpenCV tracker behind the ``initialize(image, region)`` / ``track(image)`` API."""

    def __init__(self, name: str):
        self.peer = OpenCVBench(name)

    def initialize(self, image: np.ndarray, region: np.ndarray) -> BoxPrediction:
        region = np.asarray(region)
        if region.dtype == bool:
            box = mask_to_box(region)
        elif region.ndim == 2:
            box = polygon_to_box(region)
        else:
            box = region.astype(float)
        return BoxPrediction(self.peer.initialize(image, box).box)

    def track(self, image: np.ndarray) -> BoxPrediction:
        output = self.peer.track(image)
        return BoxPrediction(output.box, 0.0 if output.lost else 1.0)


@guarded("opencv trax server")
def main(argv: Optional[list[str]] = None) -> int:
    parser = CommandParser(prog="opencv trax server", description="OpenCV CSRT / KCF TraX server for the VOT toolkit")
    parser.add_argument("--tracker", choices=sorted(OPENCV_TRACKERS),
                        default=os.environ.get("SAMN_VOT_OPENCV", "csrt"))
    args = parser.parse_args(argv)
    if args.tracker not in OPENCV_TRACKERS:  # argparse checks the choices of a given option only
        parser.error(f"SAMN_VOT_OPENCV={args.tracker!r}: choose one of {', '.join(sorted(OPENCV_TRACKERS))}")
    try:
        tracker = OpenCVTraxTracker(args.tracker)
    except InputError as error:
        print(f"opencv trax server: cannot start: {error}", file=sys.stderr, flush=True)
        return INPUT_ERROR
    return serve(tracker, "rectangle")


if __name__ == "__main__":
    raise SystemExit(main())
