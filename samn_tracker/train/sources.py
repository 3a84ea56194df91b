"""Training sources named on the command line: ``kind:arg[:arg...]``.

    davis:ROOT[:YEAR[:SPLIT[:GAPS]]]  DAVIS 2016/2017 videos (default 2017, train); GAPS
                                   "3-20": largest frame gap 3, growing by one per
                                   epoch up to 20 (default 5)
    davis-stills:ROOT[:YEAR[:SPLIT]]  every annotated frame of those videos as a still
                                   image, three strongly augmented views
    davis-paste:ROOT[:YEAR[:SPLIT[:COUNT]]]  objects of those frames pasted over frames of
                                   other videos, with distractors and occluders
    ytvos:ROOT[:SPLIT]             YouTube-VOS 2018/2019
    coco:IMAGES_DIR:INSTANCES_JSON COCO instances (still images, 3 augmented views)
    saliency:IMAGES_DIR:MASKS_DIR  ECSSD / MSRA10K / DUTS image + mask folders
    voc:ROOT[:SPLIT]               PASCAL VOC SegmentationObject
    synthetic:PHOTOS_DIR[:COUNT]   procedural objects on real photos (held-out sequences and
                                   eval ones of a splits.txt above PHOTOS_DIR are left out)
"""
from __future__ import annotations

from pathlib import Path

from samn_tracker.datasets.splits import SPLITS_FILE, read_splits, splits_root
from samn_tracker.errors import InputError
from samn_tracker.train.composites import CutAndPaste, VideoFrameStills
from samn_tracker.train.clips import ClipSource
from samn_tracker.train.still_images import CocoInstances, PascalVOCObjects, SaliencyFolders
from samn_tracker.train.synthetic import SyntheticClips
from samn_tracker.train.video_clips import DAVISVideos, YouTubeVOS

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
PATH_FIELDS = {"coco": 2, "saliency": 2}  # how many leading fields are paths (others: one)
MASK_FOLDERS = ("Annotations",)  # DAVIS / YouTube-VOS label maps: PNGs that are not photos


def _kept_out(folder: Path, held_out: frozenset[str]) -> dict[str, str]:
    """{sequence: why training may not read it}: the config's held-out sets, then the
    eval split of a ``splits.txt`` in ``folder`` or above it."""
    why = {name: "in the config's held_out sets" for name in held_out}
    root = splits_root(folder)
    if root is not None:
        for name, split in read_splits(root).items():
            if split == "eval" and name not in why:
                why[name] = f"an eval sequence of {root / SPLITS_FILE}"
    return why


def _photos(folder: str, held_out: frozenset[str]) -> list[Path]:
    """Photos under ``folder`` (a sequence is a photo's folder), leaving out the held-out
    and eval sequences, so a DAVIS tree can be given whole; refused when nothing is left."""
    kept_out = _kept_out(Path(folder), held_out)
    found = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
                   and not set(p.relative_to(folder).parts[:-1]) & set(MASK_FOLDERS))
    if not found:
        raise InputError(f"synthetic source: no photos (*.jpg, *.png) under {folder}")
    photos = [p for p in found if p.parent.name not in kept_out]
    if not photos:
        left = sorted({p.parent.name for p in found})
        reasons = "; ".join(f"{name} ({kept_out[name]})" for name in left)
        raise InputError(f"synthetic source: every photo under {folder} was left out, as training "
                         f"may not read its sequences: {reasons}")
    return photos


def _saliency(args: list[str], held_out: frozenset[str]) -> SaliencyFolders:
    """Image and mask folders, refused when either is a held-out or eval sequence's
    (a DAVIS frame folder is a valid saliency pair)."""
    for folder in map(Path, args[:2]):
        name = folder.resolve().name
        why = _kept_out(folder, held_out).get(name)
        if why:
            raise InputError(f"saliency source {folder}: {name} is {why} and cannot be used for training")
    return SaliencyFolders(args[0], args[1])


def _gaps(text: str) -> tuple[int, int]:
    first, _, final = text.partition("-")
    try:
        gaps = int(first), int(final or first)
    except ValueError:
        raise InputError(f"frame gaps {text!r} must look like 5 or 3-20") from None
    if min(gaps) < 1 or gaps[1] < gaps[0]:
        raise InputError(f"frame gaps {text!r}: need 1 <= first <= final")
    return gaps


def _integer(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"training source field {field} {text!r} is not a whole number") from None


def _davis(args: list[str], held_out: frozenset[str]) -> DAVISVideos:
    year = _integer(args[1], "YEAR") if len(args) > 1 else 2017
    split = args[2] if len(args) > 2 else "train"
    max_gap, final = _gaps(args[3]) if len(args) > 3 else (5, 5)
    return DAVISVideos(args[0], year=year, split=split, held_out=held_out, max_gap=max_gap,
                       max_gap_final=final)


def build_source(spec: str, root_dir: Path | None = None,
                 held_out: frozenset[str] = frozenset()) -> ClipSource:
    """A clip source from its spec; relative paths (each of COCO's and saliency's two) are
    taken from ``root_dir`` when given. Sequences named in ``held_out`` are refused by every
    source."""
    kind, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    if root_dir is not None:
        for i in range(min(PATH_FIELDS.get(kind, 1), len(args))):
            if not Path(args[i]).is_absolute():
                args[i] = str(root_dir / args[i])
    try:
        if kind == "davis":
            return _davis(args, held_out)
        if kind == "davis-stills":
            return VideoFrameStills(_davis(args[:3], held_out))
        if kind == "davis-paste":
            count = _integer(args[3], "COUNT") if len(args) > 3 else 10_000
            return CutAndPaste(_davis(args[:3], held_out), count)
        if kind == "ytvos":
            return YouTubeVOS(args[0], split=args[1] if len(args) > 1 else "train", held_out=held_out)
        if kind == "coco":
            return CocoInstances(args[0], args[1])
        if kind == "saliency":
            return _saliency(args, held_out)
        if kind == "voc":
            return PascalVOCObjects(args[0], split=args[1] if len(args) > 1 else "train")
        if kind == "synthetic":
            return SyntheticClips(_photos(args[0], held_out),
                                  count=_integer(args[1], "COUNT") if len(args) > 1 else 1000)
    except IndexError:
        raise InputError(f"training source {spec!r} lacks an argument; see `samn train --help`") from None
    raise InputError(f"unknown training source kind {kind!r} in {spec!r}; known: davis, "
                     "davis-stills, davis-paste, ytvos, coco, saliency, voc, synthetic")
