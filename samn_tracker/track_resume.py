"""``samn track --resume``: a long run that was interrupted, failed or killed continues
where it stopped, not from frame 0.

While it runs, ``samn track`` keeps a snapshot in its ``OUT.partial`` folder
(``resume.pt``): the tracked target as it was after some frame (its memories, its DCF and
its tuned decoder) and how many bytes each text file held then. It is written every
``SNAPSHOT_SECONDS`` and when Ctrl-C stops the run (which takes effect between frames, so
that snapshot is of the last frame written). A resume checks that the command asks for the
same tracking (source, first region, preset, ``--set``, weights by content, seed,
precision, a CPU run's threads), cuts the files back to the snapshot, draws the overlay of the frames before it
again and tracks on from the next frame: its outputs are those of an uninterrupted run (on a
CPU, bit for bit: tested).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import cv2
import numpy as np
import torch

from samn_tracker import atomic
from samn_tracker.errors import InputError
from samn_tracker.evaluation.run_record import differences, settings_record
from samn_tracker.regions import parse_numbers
from samn_tracker.run_folder import STATUS_FILE, partial_path

SNAPSHOT_FILE = "resume.pt"
SNAPSHOT_SECONDS = 30.0
TEXT_FILES = ("boxes.txt", "polygons.txt", "confidence.txt")


def track_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: the tracker's record (as
    ``samn eval`` keeps one) and the source and first region."""
    if args.mask:
        region = {"mask_sha256": hashlib.sha256(Path(args.mask).read_bytes()).hexdigest()}
    else:
        region = _by_value({"box": args.box, "polygon": args.polygon})
    return {**settings_record(args), "source": str(Path(args.source).resolve()), "region": region}


def _by_value(region: Any) -> Any:
    """A first region with its box or polygon as numbers, so that "127, 73, 383, 312" and
    "127,73,383,312.0" are one box: the options' text, and the records of runs made before
    regions were recorded so (2026-11-29), which kept it."""
    if not isinstance(region, dict):
        return region
    return {name: parse_numbers(value, f"--{name}").tolist() if name in ("box", "polygon") and isinstance(value, str)
            else value for name, value in region.items()}


@dataclass
class Snapshot:
    """The run after ``frames`` frames: the target to go on with and the size of each text file."""

    frames: int
    target: Any
    sizes: dict[str, int]

    def save(self, folder: Path) -> None:
        path = folder / SNAPSHOT_FILE
        try:
            with atomic.replacing(path) as tmp:
                torch.save({"frames": self.frames, "target": self.target, "sizes": self.sizes}, tmp)
        except RuntimeError as err:  # torch's writer says a full disk so ("unexpected pos"), not as an OSError
            raise OSError(f"cannot write the resume snapshot {path} (is the disk full?): {err}") from None


def check_unfinished(out: Path, overwrite: bool) -> None:
    """Before a run that starts from frame 0: refuse to delete ``out``'s partial folder while
    another process writes it, or, without ``overwrite``, while its snapshot lets
    ``--resume`` continue it (the hours of tracking it holds would go with it)."""
    folder = partial_path(out)
    try:
        record = _status(folder)
    except (OSError, ValueError):  # none, or unreadable: nothing to keep
        return
    _check_not_running(record, folder, f"--out {out}")
    if (folder / SNAPSHOT_FILE).is_file() and not overwrite:
        status = record.get("status")
        how = "killed before it finished" if status == "running" else status  # its process is gone (above)
        raise InputError(f"--out {out}: {folder} holds an unfinished run ({record.get('frames')} frames, "
                         f"{how}) that the same command with --resume continues; "
                         "add --resume, or --overwrite to start again from frame 0")


def resume_point(out: Path, settings: dict[str, Any], device: torch.device) -> Snapshot:
    """The snapshot of ``out``'s unfinished run, checked against this command's
    ``settings``; an InputError says why there is none to continue."""
    folder = partial_path(out)
    status_file, snapshot_file = folder / STATUS_FILE, folder / SNAPSHOT_FILE
    if not status_file.is_file():
        raise InputError(f"--resume: no unfinished run to continue ({folder} does not exist); "
                         "run without --resume")
    try:
        record = _status(folder)
    except (OSError, ValueError) as err:
        raise InputError(f"--resume: cannot read {status_file}: {err}; run without --resume") from None
    _check_not_running(record, folder, "--resume")
    before = record.get("settings")
    if not isinstance(before, dict):  # written by a samn track from before --resume
        raise InputError(f"--resume: {status_file} records no settings (a run made before --resume "
                         "existed, which kept no snapshot); run without --resume")
    before = {**before, "region": _by_value(before.get("region"))}
    differ = differences(settings, before) + [
        f"{key}: {settings[key]} now, {before.get(key)} before"
        for key in ("source", "region") if settings[key] != before.get(key)]
    if differ:
        raise InputError(f"--resume: {folder} was made by another tracking ({'; '.join(differ)}); "
                         "give the same options, or run without --resume")
    if not snapshot_file.is_file():
        if not record.get("frames"):  # stopped while it started (tuning)
            raise InputError(f"--resume: the run in {folder} stopped before its first frame was written; "
                             "run without --resume")
        raise InputError(f"--resume: {folder} holds no snapshot (one is written every "
                         f"{SNAPSHOT_SECONDS:.0f} s and at Ctrl-C); run without --resume")
    try:
        data = torch.load(snapshot_file, map_location=device, weights_only=False)
        return Snapshot(data["frames"], data["target"], data["sizes"])
    except Exception as err:  # a torn or foreign file: torch raises many kinds, some of many lines
        detail = " ".join(str(err).split())[:200]
        raise InputError(f"--resume: {snapshot_file} is damaged, not a snapshot ({type(err).__name__}: "
                         f"{detail}); run without --resume") from None


def _status(folder: Path) -> dict[str, Any]:
    """The partial folder's run record; OSError where there is none, ValueError where it
    is not a record."""
    record = json.loads((folder / STATUS_FILE).read_text())
    if not isinstance(record, dict):
        raise ValueError(f"{STATUS_FILE} holds {type(record).__name__}, not a run record")
    return record


def _check_not_running(record: dict[str, Any], folder: Path, option: str) -> None:
    """A run whose status still says ``running`` was killed, unless its process lives on."""
    pid = record.get("pid")
    if record.get("status") != "running" or not isinstance(pid, int) or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise InputError(f"{option}: the run in {folder} is still running (process {pid}); "
                     "wait for it or stop it, or give another --out")


def cut_back(folder: Path, snapshot: Snapshot) -> None:
    """The text files and masks of ``folder`` as they were at the snapshot, and no overlay:
    a resume draws it again from the start, or (``--no-video``) has none."""
    (folder / "overlay.mp4").unlink(missing_ok=True)
    for name in TEXT_FILES:
        with open(folder / name, "r+b") as f:
            f.truncate(snapshot.sizes[name])
    for mask in (folder / "masks").glob("*.png"):
        if not mask.stem.isdigit() or int(mask.stem) >= snapshot.frames:
            mask.unlink()


@dataclass
class WrittenFrame:
    """A frame's outputs as its files hold them, for drawing the overlay again."""

    mask: np.ndarray
    box: np.ndarray
    polygon: np.ndarray
    confidence: float


def mask_name(index: int, length: int) -> str:
    """Frame ``index``'s mask file of a sequence of ``length`` frames: five digits as DAVIS
    names them, more where the sequence needs them (past 99,999 frames, an hour at 30 fps), so
    that the names sort as the frames do."""
    return f"{index:0{max(5, len(str(length - 1)))}d}.png"


def written_frames(folder: Path, frames: int, length: int) -> Iterator[WrittenFrame]:
    """The first ``frames`` frames' outputs of a sequence of ``length``, read one at a time (a
    long run's masks would not fit in memory together)."""
    with open(folder / "boxes.txt") as boxes, open(folder / "polygons.txt") as polygons, \
            open(folder / "confidence.txt") as confidences:
        for index, box, polygon, confidence in zip(range(frames), boxes, polygons, confidences):
            yield WrittenFrame(mask=_read_mask(folder / "masks" / mask_name(index, length)),
                               box=np.array(box.split(","), float),
                               polygon=np.array(polygon.split(","), float).reshape(-1, 2),
                               confidence=float(confidence))


def _read_mask(path: Path) -> np.ndarray:
    mask: Optional[np.ndarray] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(f"--resume: cannot read {path}")
    return mask > 0
