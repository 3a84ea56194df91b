"""Datasets on disk: one reader per layout, shared by tracking, evaluation, speed
measurement, training and the local VOT stacks.

Frame folders (``frames``), video files (``video``), VOT, OTB, GOT-10k, TrackingNet, LaSOT
and DAVIS 2016/2017 each have a module; ``splits`` reads every split list; ``open_sequence``
(``layouts``) detects the layout of a path. Every reader returns a ``Sequence`` whose
frames are read lazily as RGB uint8 and raises ``InputError`` naming the file at fault.
"""
from samn_tracker.datasets.images import IMAGE_SUFFIXES, list_frames, read_frames, read_image, to_rgb
from samn_tracker.datasets.layouts import open_sequence
from samn_tracker.datasets.sequence import Sequence

__all__ = ["IMAGE_SUFFIXES", "Sequence", "list_frames", "open_sequence", "read_frames", "read_image", "to_rgb"]
