"""3-frame clips of one object from annotated videos (YouTube-VOS, DAVIS).

Stage 2 of the training recipe: three annotated frames in temporal order with random
gaps, the object visible in the first one (it is the memory the tracker starts from);
it may be absent later, as in real tracking.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samn_tracker.datasets import davis, read_image
from samn_tracker.datasets.splits import SPLITS_FILE, read_splits, splits_root
from samn_tracker.errors import InputError
from samn_tracker.train.clips import Clip, require_dir
from samn_tracker.train.held_out import refuse_held_out


@dataclass
class AnnotatedVideo:
    """Frames that have an annotation PNG, in temporal order. ``binary``: any non-zero
    label is the object (DAVIS 2016); otherwise labels are object ids."""

    name: str
    frames: list[Path]
    annotations: list[Path]
    binary: bool


def annotated_video(name: str, images_dir: Path, annotations_dir: Path, binary: bool) -> AnnotatedVideo:
    images_dir = require_dir(images_dir, f"frames of video {name}")
    annotations = sorted(require_dir(annotations_dir, f"annotations of video {name}").glob("*.png"))
    if not annotations:
        raise InputError(f"no annotation PNG in {annotations_dir}")
    return AnnotatedVideo(name, [images_dir / f"{a.stem}.jpg" for a in annotations], annotations,
                          binary)


def frame_gaps(count: int, max_gap: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two forward gaps in [1, max_gap] that fit in ``count`` frames (0 when they cannot)."""
    gaps = [int(g) for g in rng.integers(1, max(max_gap, 1) + 1, size=2)]
    while sum(gaps) > count - 1 and max(gaps) > 0:
        gaps[int(np.argmax(gaps))] -= 1
    return gaps[0], gaps[1]


class VideoClipSource:
    """Samples are videos; each call picks frames, then an object visible in the first.

    The largest frame gap starts at ``max_gap`` and grows by one per epoch up to
    ``max_gap_final``: near frames first, then the larger motions of real tracking.
    """

    def __init__(self, videos: list[AnnotatedVideo], max_gap: int, min_pixels: int, attempts: int = 10,
                 max_gap_final: int | None = None):
        if not videos:
            raise InputError("no annotated video to sample clips from")
        self.videos = videos
        self.first_max_gap = max_gap
        self.max_gap = max_gap
        self.max_gap_final = max(max_gap, max_gap_final or max_gap)
        self.min_pixels = min_pixels
        self.attempts = attempts

    def __len__(self) -> int:
        return len(self.videos)

    def set_epoch(self, epoch: int) -> None:
        self.max_gap = min(self.first_max_gap + epoch, self.max_gap_final)

    def labels(self, video: AnnotatedVideo, position: int) -> np.ndarray:
        return davis.read_annotation(video.annotations[position], 2016 if video.binary else 2017)

    def visible_objects(self, labels: np.ndarray) -> list[int]:
        areas = np.bincount(labels.ravel())  # uint8 ids: a count, not the sort of np.unique
        return [i for i in range(1, len(areas)) if areas[i] >= self.min_pixels]

    def first_frame(self, video: AnnotatedVideo,
                    rng: np.random.Generator) -> tuple[int, np.ndarray, list[int]]:
        """A random start frame (leaving room for two more) with a visible object; when
        random tries miss, one of the frames that show an object at all."""
        count = len(video.frames)
        for _ in range(self.attempts):
            first = int(rng.integers(0, max(count - 2, 1)))
            labels = self.labels(video, first)
            objects = self.visible_objects(labels)
            if objects:
                return first, labels, objects
        showing = [i for i in range(count) if self.visible_objects(self.labels(video, i))]
        if not showing:
            raise InputError(f"video {video.name}: no object of at least {self.min_pixels} "
                             f"pixels in any annotation of {video.annotations[0].parent}")
        with_room = [i for i in showing if i < count - 2] or showing
        first = with_room[int(rng.integers(len(with_room)))]
        labels = self.labels(video, first)
        return first, labels, self.visible_objects(labels)

    def clip(self, index: int, rng: np.random.Generator) -> Clip:
        video = self.videos[index]
        first, labels0, objects = self.first_frame(video, rng)
        object_id = objects[int(rng.integers(len(objects)))]
        g1, g2 = frame_gaps(len(video.frames) - first, self.max_gap, rng)
        positions = [first, first + g1, first + g1 + g2]
        labels = [labels0] + [self.labels(video, p) for p in positions[1:]]
        frames = []
        for position, label in zip(positions, labels):
            image = read_image(video.frames[position])
            if image.shape[:2] != label.shape:
                raise InputError(f"annotation {video.annotations[position]} does not match the "
                                 f"size of {video.frames[position]}")
            frames.append(image)
        return Clip(frames, [label == object_id for label in labels],
                    name=f"{video.name}#{object_id}@{positions}")


class YouTubeVOS(VideoClipSource):
    """YouTube-VOS 2018/2019: ``<root>/<split>/JPEGImages/<video>/*.jpg`` and palette
    ``Annotations/<video>/*.png`` (only annotated frames are used; meta.json is not
    needed). ``root`` may also be the split folder itself."""

    def __init__(self, root: Path | str, split: str = "train", max_gap: int = 5,
                 min_pixels: int = 100, held_out: frozenset[str] = frozenset()):
        root = require_dir(root, "YouTube-VOS root")
        base = root if (root / "Annotations").is_dir() and not (root / split).is_dir() else root / split
        images = require_dir(base / "JPEGImages", "YouTube-VOS frames")
        annotations = require_dir(base / "Annotations", "YouTube-VOS annotations")
        folders = [d for d in sorted(annotations.iterdir()) if d.is_dir()]
        # its video ids are hex strings, but a DAVIS sequence converted to this layout keeps its name
        refuse_untrainable(base, [d.name for d in folders], held_out, f"YouTube-VOS source {base}")
        videos = [annotated_video(d.name, images / d.name, d, binary=False) for d in folders]
        if not videos:
            raise InputError(f"no video folder in {annotations}")
        super().__init__(videos, max_gap, min_pixels)


def refuse_eval_photos(photos: list[Path]) -> None:
    """No training photo may come from an eval sequence of a tree with a ``splits.txt``
    (the sequence is the photo's folder name)."""
    held_out = set()
    for folder in {Path(p).parent for p in photos}:
        root = splits_root(folder.parent)
        if root is not None and read_splits(root).get(folder.name) == "eval":
            held_out.add(str(folder))
    if held_out:
        raise InputError(f"photos from eval sequences cannot be used for training: "
                         f"{', '.join(sorted(held_out))}")


def refuse_eval_sequences(root: Path, sequences: list[str]) -> None:
    """Training must never see a sequence that ``root/splits.txt`` keeps for evaluation."""
    if not (root / SPLITS_FILE).is_file():
        return
    splits = read_splits(root)
    held_out = [s for s in sequences if splits.get(s) == "eval"]
    if held_out:
        raise InputError(f"{root / SPLITS_FILE} marks {', '.join(held_out)} as eval sequences; "
                         "they cannot be used for training")


def refuse_untrainable(root: Path, sequences: list[str], held_out: frozenset[str], where: str) -> None:
    """Stop before training on a sequence ``root/splits.txt`` keeps for evaluation or one of
    the config's ``held_out`` sets."""
    refuse_eval_sequences(root, sequences)
    refuse_held_out(sequences, held_out, where)


class DAVISVideos(VideoClipSource):
    """DAVIS 2016 (0/255 masks, one object) or 2017 (palette PNGs of object ids):
    ``JPEGImages/<resolution>/<seq>`` and ``Annotations/<resolution>/<seq>``. Give
    ``sequences`` or a ``split`` read from ImageSets (or the shared ``splits.txt``)."""

    def __init__(self, root: Path | str, year: int = 2017, split: str = "train",
                 sequences: list[str] | None = None, resolution: str = "480p",
                 max_gap: int = 5, min_pixels: int = 100, held_out: frozenset[str] = frozenset(),
                 max_gap_final: int | None = None):
        if year not in davis.YEARS:
            raise InputError(f"DAVIS year must be 2016 or 2017, got {year}")
        root = require_dir(root, "DAVIS root")
        images = require_dir(root / "JPEGImages" / resolution, "DAVIS frames")
        annotations = require_dir(root / "Annotations" / resolution, "DAVIS annotations")
        names = list(sequences) if sequences is not None else davis.sequence_names(root, year, split,
                                                                               resolution)
        refuse_untrainable(root, names, held_out, f"DAVIS source {root}")
        videos = [annotated_video(n, images / n, annotations / n, binary=year == 2016) for n in names]
        super().__init__(videos, max_gap, min_pixels, max_gap_final=max_gap_final)
