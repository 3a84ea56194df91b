"""``samn bench``: speed (per stage), memory and accuracy of SAMN next to OpenCV's CSRT and
KCF on the same frames, and a long-video mode that shows how the per-frame cost grows."""
from samn_tracker.speed.cli import main

__all__ = ["main"]
