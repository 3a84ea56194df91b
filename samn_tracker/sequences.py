"""Image sequences from disk: frame folders, video files and the benchmark layouts.

Every reader returns a ``Sequence`` whose frames are read lazily as RGB uint8, so a
long video costs no memory until it is iterated. Ground truth is a per-frame list of
regions (box (4,), polygon (N, 2), bool mask) with None where the target is absent
or not annotated (boxes with NaN or zero size, GOT-10k ``absence.label``, frames past
the end of a short ground-truth file, DAVIS frames without an annotation PNG).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image

from samn_tracker.errors import InputError
from samn_tracker.regions import parse_region

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def to_rgb(array: np.ndarray, name: str = "image") -> np.ndarray:
    """RGB uint8 ``H x W x 3`` from gray, gray+1, RGB or RGBA arrays of 8/16-bit, bool or float.

    16-bit values are scaled by 1/257; floats are taken as [0, 1] when their maximum is
    at most 1, else as [0, 255]. Alpha is dropped (not composited), as trackers see the
    colour channels only.
    """
    image = np.asarray(array)
    if image.size == 0:
        raise InputError(f"{name} is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise InputError(f"{name} must be H x W, H x W x 3 or H x W x 4, got shape {image.shape}")
    return np.ascontiguousarray(_to_uint8(image, name))


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        return np.round(image / 257.0).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InputError(f"{name} has NaN or infinite pixel values")
        scale = 255.0 if image.max() <= 1.0 else 1.0
        return np.round(np.clip(image * scale, 0, 255)).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    raise InputError(f"{name} has unsupported pixel type {image.dtype} "
                     f"(range {image.min()}..{image.max()}); expected uint8, uint16, bool or float")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (gray, RGBA and 16-bit files are converted)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot decode image file (corrupt or unsupported format): {path}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb(image, str(path))


@dataclass
class Sequence:
    """Frames (image files or one video) with optional ground truth and per-frame tags."""

    name: str
    frames: list[Path] | None
    video: Path | None
    groundtruth: list | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    video_frames: int = 0
    """Number of decodable frames of ``video`` (counted by ``video_file``)."""
    fps: float | None = None
    """Frame rate of ``video`` as the container states it (None for image folders)."""

    def __len__(self) -> int:
        return len(self.frames) if self.frames is not None else self.video_frames

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8, read from disk now (videos are decoded up to it)."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range for {self.name} ({len(self)} frames)")
        if self.frames is not None:
            return read_image(self.frames[index])
        return self._video_reader.read(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.frames is not None:
            for path in self.frames:
                yield read_image(path)
        else:
            yield from _decode_video(self.video)

    @cached_property
    def size(self) -> tuple[int, int]:
        """(W, H) of the first frame."""
        height, width = self.image(0).shape[:2]
        return width, height

    @cached_property
    def _video_reader(self) -> _VideoReader:
        return _VideoReader(self.video)


class _VideoReader:
    """Random access into a video by sequential decoding (seeking is not frame-exact)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture: cv2.VideoCapture | None = None
        self.position = 0

    def read(self, index: int) -> np.ndarray:
        if self.capture is None or index < self.position:
            self.capture = _open_video(self.path)
            self.position = 0
        while self.position < index:
            if not self.capture.grab():
                raise InputError(f"video ends before frame {index}: {self.path}")
            self.position += 1
        ok, frame = self.capture.read()
        if not ok:
            raise InputError(f"cannot decode frame {index} of video {self.path}")
        self.position += 1
        return to_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{self.path} frame {index}")


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"cannot open video file: {path}")
    return capture


def _decode_video(path: Path) -> Iterator[np.ndarray]:
    capture = _open_video(path)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield to_rgb(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{path} frame {index}")
            index += 1
    finally:
        capture.release()


def video_file(path: str | Path) -> Sequence:
    """A video decoded with OpenCV; the frame count is counted by decoding, not taken
    from the container (``CAP_PROP_FRAME_COUNT`` is an estimate for many codecs)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    capture = _open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or None
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    if count == 0:
        raise InputError(f"video has no decodable frames (corrupt or unsupported codec): {path}")
    return Sequence(name=path.stem, frames=None, video=path, video_frames=count, fps=fps)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files of a folder in frame order; numbered frames must have no gaps.

    Names like ``00001.jpg`` or ``img0001.png`` sharing a prefix are ordered by number
    and a missing number raises InputError naming the missing file; other names are
    sorted naturally.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder not found: {folder}")
    paths = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    if not paths:
        raise InputError(f"no image files ({', '.join(suffixes)}) in {folder}")
    matches = [_NUMBERED.match(p.stem) for p in paths]
    prefixes = {m.group(1) if m else None for m in matches}
    if len(prefixes) != 1 or None in prefixes:
        return sorted(paths, key=_natural_key)
    numbered = sorted(zip((int(m.group(2)) for m in matches), paths, matches), key=lambda t: t[0])
    for (number, path, match), (next_number, _, _) in zip(numbered, numbered[1:]):
        if next_number == number:
            raise InputError(f"two files for frame {number} in {folder}: {path.name} and another")
        if next_number != number + 1:
            digits = len(match.group(2))
            missing = f"{match.group(1)}{number + 1:0{digits}d}{path.suffix}"
            raise InputError(f"missing frame {missing} in {folder} (frames jump from {path.name})")
    return [path for _, path, _ in numbered]


def frames_dir(path: str | Path) -> Sequence:
    """A plain folder of numbered frames, without ground truth."""
    path = Path(path)
    return Sequence(name=path.name, frames=list_frames(path), video=None)


def _read_groundtruth(file: Path, num_frames: int, shape: tuple[int, int], partial: bool = True) -> list:
    """One region per line; with ``partial`` a shorter file (GOT-10k test: first frame
    only) leaves the remaining frames None."""
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    if len(lines) > num_frames or (not partial and len(lines) != num_frames):
        raise InputError(f"{file} has {len(lines)} regions but the sequence has {num_frames} frames")
    regions = []
    for number, line in enumerate(lines, start=1):
        try:
            regions.append(_present(parse_region(line, shape)))
        except InputError as err:
            raise InputError(f"{file} line {number}: {err}") from err
    return regions + [None] * (num_frames - len(regions))


def _present(region: np.ndarray) -> np.ndarray | None:
    """None for boxes/polygons that carry no target (NaN or zero size); masks stay, even empty."""
    if region.dtype == bool:
        return region
    if region.ndim == 2:
        extent = region.max(axis=0) - region.min(axis=0)
    else:
        extent = region[2:]
    if not np.all(np.isfinite(region)) or np.any(extent <= 0):
        return None
    return region


def _read_tags(folder: Path, num_frames: int) -> dict[str, np.ndarray]:
    """``*.tag`` / ``*.label`` (ints) and ``*.value`` (floats) files, zero-padded to the length."""
    tags = {}
    for file in sorted(folder.iterdir()):
        if file.suffix not in (".tag", ".label", ".value") or not file.is_file():
            continue
        try:
            values = [float(line) for line in file.read_text().split()]
        except ValueError as err:
            raise InputError(f"tag file must hold one number per line: {file}") from err
        if len(values) > num_frames:
            raise InputError(f"{file} has {len(values)} entries but the sequence has {num_frames} frames")
        array = np.zeros(num_frames, dtype=np.float64 if file.suffix == ".value" else np.int64)
        array[:len(values)] = values
        tags[file.stem] = array
    return tags


def _frame_shape(frames: list[Path]) -> tuple[int, int]:
    return read_image(frames[0]).shape[:2]


def _read_metadata(file: Path) -> dict[str, str]:
    metadata = {}
    for line in file.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            metadata[key.strip()] = value.strip()
    return metadata


def vot_sequence(path: str | Path) -> Sequence:
    """VOT layout: ``sequence`` metadata (``channels.color=color/%08d.jpg``), ``groundtruth.txt``
    with rectangle, polygon or mask lines, and per-frame ``*.tag`` / ``*.label`` / ``*.value``."""
    path = Path(path)
    metadata_file = path / "sequence"
    metadata = _read_metadata(metadata_file) if metadata_file.is_file() else {}
    pattern = metadata.get("channels.color", "color/%08d.jpg")
    frame_folder = (path / pattern).parent
    frames = list_frames(frame_folder, (Path(pattern).suffix.lower(),))
    groundtruth_file = path / "groundtruth.txt"
    if not groundtruth_file.is_file():
        raise InputError(f"VOT sequence has no groundtruth.txt: {path}")
    groundtruth = _read_groundtruth(groundtruth_file, len(frames), _frame_shape(frames), partial=False)
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth,
                    tags=_read_tags(path, len(frames)))


def got10k_sequence(path: str | Path) -> Sequence:
    """GOT-10k layout: ``00000001.jpg ...``, ``groundtruth.txt`` (one line for test
    sequences) and ``absence.label`` / ``cover.label`` / ``cut_by_image.label`` tags."""
    path = Path(path)
    frames = list_frames(path)
    groundtruth_file = path / "groundtruth.txt"
    if not groundtruth_file.is_file():
        raise InputError(f"GOT-10k sequence has no groundtruth.txt: {path}")
    groundtruth = _read_groundtruth(groundtruth_file, len(frames), _frame_shape(frames))
    tags = _read_tags(path, len(frames))
    for index in np.flatnonzero(tags.get("absence", np.zeros(0))):
        groundtruth[index] = None
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth, tags=tags)


def otb_sequence(path: str | Path) -> Sequence:
    """OTB layout: ``img/0001.jpg ...`` and ``groundtruth_rect.txt`` (comma, tab or
    space separated). Sequences whose annotation starts later than frame 1 (OTB's
    David, Tiger1, ...) fail the length check instead of being silently misaligned."""
    path = Path(path)
    frames = list_frames(path / "img")
    candidates = [path / "groundtruth_rect.txt"] + sorted(path.glob("groundtruth_rect.*.txt"))
    groundtruth_file = next((f for f in candidates if f.is_file()), None)
    if groundtruth_file is None:
        raise InputError(f"OTB sequence has no groundtruth_rect.txt: {path}")
    groundtruth = _read_groundtruth(groundtruth_file, len(frames), _frame_shape(frames), partial=False)
    return Sequence(name=path.name, frames=frames, video=None, groundtruth=groundtruth)


def _annotation_maps(root: Path, name: str, resolution: str, frames: list[Path]) -> list[np.ndarray | None]:
    """Per-frame object id maps: palette PNGs give their ids, 0/255 PNGs give 0/1."""
    folder = root / "Annotations" / resolution / name
    if not folder.is_dir():
        raise InputError(f"DAVIS annotation folder not found: {folder}")
    by_stem = {p.stem: p for p in folder.glob("*.png")}
    if not by_stem:
        raise InputError(f"no annotation PNGs in {folder}")
    maps = []
    for frame in frames:
        png = by_stem.get(frame.stem)
        if png is None:
            maps.append(None)
            continue
        try:
            with Image.open(png) as annotation:
                ids = np.array(annotation)
                palette = annotation.mode == "P"
        except OSError as err:
            raise InputError(f"cannot read DAVIS annotation {png}: {err}") from err
        if ids.ndim != 2:
            raise InputError(f"DAVIS annotation must be a single-channel PNG: {png} has shape {ids.shape}")
        maps.append(ids.astype(np.uint8) if palette else (ids > 0).astype(np.uint8))
    return maps


def davis_objects(root: str | Path, name: str, resolution: str = "480p") -> tuple[list[int], list[np.ndarray | None]]:
    """DAVIS 2017 multi-object ground truth: object ids (void 255 excluded) and per-frame id maps."""
    root = Path(root)
    frames = list_frames(root / "JPEGImages" / resolution / name)
    maps = _annotation_maps(root, name, resolution, frames)
    ids = set()
    for ids_map in maps:
        if ids_map is not None:
            ids.update(int(v) for v in np.unique(ids_map))
    return sorted(ids - {0, 255}), maps


def davis_sequence(root: str | Path, name: str, resolution: str = "480p") -> Sequence:
    """DAVIS sequence with object 1 as bool masks (DAVIS 2016: every nonzero pixel)."""
    root = Path(root)
    frames = list_frames(root / "JPEGImages" / resolution / name)
    maps = _annotation_maps(root, name, resolution, frames)
    groundtruth = [None if ids is None else ids == 1 for ids in maps]
    return Sequence(name=name, frames=frames, video=None, groundtruth=groundtruth)


def open_sequence(path: str | Path) -> Sequence:
    """Detect the layout of ``path`` and read it: video file, VOT (``sequence`` file or
    ``color/``), OTB (``img/`` + ``groundtruth_rect.txt``), GOT-10k (frames +
    ``groundtruth.txt``), a DAVIS ``JPEGImages/<res>/<seq>`` folder, or plain frames."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise InputError(f"a single image is not a sequence: {path}")
        return video_file(path)
    if not path.is_dir():
        raise InputError(f"sequence not found: {path}")
    if (path / "sequence").is_file() or (path / "color").is_dir():
        return vot_sequence(path)
    if (path / "img").is_dir():
        return otb_sequence(path)
    if (path / "groundtruth.txt").is_file():
        return got10k_sequence(path)
    if path.parent.parent.name == "JPEGImages":
        root = path.parent.parent.parent
        if (root / "Annotations" / path.parent.name / path.name).is_dir():
            return davis_sequence(root, path.name, path.parent.name)
    return frames_dir(path)
