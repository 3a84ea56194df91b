"""Which layout a path is in, and its reader."""
from __future__ import annotations

import warnings
from pathlib import Path

from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.datasets.frames import frames_dir
from samn_tracker.datasets.got10k import got10k_sequence
from samn_tracker.datasets.images import IMAGE_SUFFIXES
from samn_tracker.datasets.lasot import is_lasot_sequence, lasot_sequence
from samn_tracker.datasets.otb import otb_sequence
from samn_tracker.datasets.sequence import Sequence
from samn_tracker.datasets.video import video_file
from samn_tracker.datasets.vot import vot_sequence
from samn_tracker.errors import InputError


def open_sequence(path: str | Path) -> Sequence:
    """Detect the layout of ``path`` and read it: video file, VOT (``sequence`` file or
    ``color/``), LaSOT (``img/`` + ``groundtruth.txt``), OTB (``img/`` +
    ``groundtruth_rect.txt``), GOT-10k (frames +
    ``groundtruth.txt``), a DAVIS ``JPEGImages/<res>/<seq>`` folder, or plain frames.
    A folder with frames of its own is no layout whose frames lie in a subfolder (an
    ``img/`` or ``color/`` beside them is something else), and its ``groundtruth.txt``,
    where it cannot be read, is left out with a warning: a ``--box`` needs none."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise InputError(f"a single image is not a sequence: {path}")
        return video_file(path)
    if not path.is_dir():
        raise InputError(f"sequence not found: {path}")
    # two or more images of its own (a preview.jpg or a ._ file beside a benchmark's frames is none)
    own_frames = sum(p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
                     for p in path.iterdir()) >= 2
    if not own_frames:
        if (path / "sequence").is_file() or (path / "color").is_dir():
            return vot_sequence(path)
        if is_lasot_sequence(path):
            return lasot_sequence(path)
        if (path / "img").is_dir():
            return otb_sequence(path)
    if (path / "groundtruth.txt").is_file():
        try:
            return got10k_sequence(path)
        except InputError as err:
            if not own_frames:
                raise
            warnings.warn(f"{err}; {path} is read as a folder of frames without ground truth", stacklevel=2)
    if path.parent.parent.name == "JPEGImages":
        root = path.parent.parent.parent
        if (root / "Annotations" / path.parent.name / path.name).is_dir():
            return davis_sequence(root, path.name, path.parent.name)
    return frames_dir(path)
