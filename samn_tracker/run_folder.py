"""Result folders that are complete or visibly not.

A run writes into ``<out>.partial`` beside ``<out>`` and renames it to ``<out>`` only
once every frame is written, so ``<out>`` never holds a half run nor stale files from an
earlier one. ``run.json`` in the folder records the command, the package version, the
frames written (while it runs, those of its last ``--resume`` snapshot) and the status:
``running`` while it works, then ``complete``, ``interrupted`` (Ctrl-C, SIGTERM) or
``failed`` (with the error). An interrupted or failed run leaves ``<out>.partial`` with its
``run.json`` saying so; the next run continues it with ``--resume`` or replaces it
(``track_resume.check_unfinished`` says when it may).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from samn_tracker import atomic
from samn_tracker.errors import InputError
from samn_tracker.exits import Terminated

STATUS_FILE = "run.json"
RESULT_MARKERS = (STATUS_FILE, "boxes.txt")  # what a folder written by `samn track` holds


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (where a new folder would be made)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_destination(out: Path, overwrite: bool) -> None:
    """Raise InputError, before anything is written, if ``out`` cannot receive a run:
    a file, a folder that holds something else, an earlier result without
    ``overwrite``, or a place this process cannot write to."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if len(os.fsencode(partial_path(out).name)) > 255:
        raise InputError(f"--out {out.name[:40]}...: the name is too long for the run's folder "
                         f"{out.name[:20]}....partial beside it (255 bytes at most); give a shorter name")
    if out.is_dir() and any(out.iterdir()):
        if not any((out / marker).exists() for marker in RESULT_MARKERS):
            raise InputError(f"--out {out} is a folder with other files in it (no {STATUS_FILE}); "
                             "give a new or empty folder")
        if not overwrite:
            raise InputError(f"--out {out} already holds results; add --overwrite to replace them")
    check_writable(out.resolve().parent, out)


def check_writable(place: Path, out: Path, name: str = "--out") -> None:
    """Raise InputError unless ``place`` (``out``, or a folder in or beside it where a run
    writes) is a folder this process can write to, or can be made one: checked before any
    work, so that a bad ``--out`` never ends a long run at its first write. ``name``: the
    option or setting that gave ``out``, for the message."""
    existing = nearest_existing(Path(place).resolve())
    if not existing.is_dir():
        if existing == Path(out).resolve():
            raise InputError(f"{name} {out} is a file; give a folder")
        raise InputError(f"cannot create {name} {out}: {existing} is a file")
    try:
        Path(tempfile.mkdtemp(dir=existing, prefix=".samn-write-test-")).rmdir()
    except OSError as err:
        raise InputError(f"cannot write to {existing} for {name} {out}: {err.strerror}") from None


class BetweenFrames(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) taken after a frame's writes: the tracker and every file hold the
    same frames, so the run can be snapshotted as it stands."""


class RunFolder:
    """``with RunFolder(out, command, settings) as run:`` write each frame into ``run.path``
    inside ``with run.frame():``; the block's end decides the status and, when complete,
    moves the folder into place. ``resumed``: the frames an earlier attempt left in
    ``run.path`` (``samn track --resume``), kept instead of starting afresh. The status
    file records ``settings`` (what a resume must share) and the process id (a run whose
    status says ``running`` but whose process is gone was killed)."""

    def __init__(self, out: Path, command: Sequence[str], settings: Optional[dict] = None, resumed: int = 0):
        self.out = Path(out)
        self.path = partial_path(self.out)
        self.command = list(command)
        self.settings = settings
        self.frames = resumed
        self.resumable = False  # set once a snapshot lets `--resume` continue the run
        self._signals: dict[int, Any] = {}  # the handlers replaced while signals wait for a frame's end
        self._pending: list[int] = []

    def write_status(self, status: str, error: Optional[str] = None) -> None:
        from samn_tracker import __version__

        record = {"command": self.command, "version": __version__, "frames": self.frames,
                  "status": status, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "pid": os.getpid(),
                  "settings": self.settings}
        if error is not None:
            record["error"] = error
        atomic.write_text(self.path / STATUS_FILE, json.dumps(record, indent=1) + "\n")

    @contextmanager
    def frame(self) -> Iterator[None]:
        """Write one frame's files whole, then count it. From the first frame on, Ctrl-C and
        SIGTERM take effect only here, after a frame's writes (``BetweenFrames``), so that
        every file, and the tracker, hold the same number of frames."""
        if not self._signals:
            for number in (signal.SIGINT, signal.SIGTERM):
                self._signals[number] = signal.signal(number, lambda signum, stack: self._pending.append(signum))
        yield
        self.frames += 1
        if self._pending:
            raise BetweenFrames

    def __enter__(self) -> "RunFolder":
        if self.frames == 0:
            if self.path.exists():
                shutil.rmtree(self.path)  # an earlier interrupted or failed attempt
            self.path.mkdir(parents=True)
        self.write_status("running")
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self._end(kind, error)
        finally:  # only now: a second Ctrl-C while the first one's status is written waits too
            for number, handler in self._signals.items():
                signal.signal(number, handler)
            self._signals.clear()

    def _end(self, kind, error) -> None:
        resume = "; the same command with --resume continues it" if self.resumable else ""
        if kind is None:
            self.write_status("complete")
            atomic.replace_directory(self.path, self.out)  # empty, or an earlier result to overwrite
        elif issubclass(kind, KeyboardInterrupt):
            self.write_status("interrupted")
            stopped = Terminated if issubclass(kind, Terminated) or self._pending[:1] == [signal.SIGTERM] \
                else KeyboardInterrupt
            raise stopped(f"after {self.frames} frames; partial results in {self.path} "
                          f"({STATUS_FILE}: interrupted{resume})") from None
        else:
            try:
                self.write_status("failed", error=str(error))
                recorded = f"{STATUS_FILE}: failed"
            except OSError as unrecorded:  # a full disk refuses the record too: the first error is the one to see
                recorded = f"{STATUS_FILE} not updated: {unrecorded.strerror or unrecorded}"
            where = f"({self.frames} frames written to {self.path}, {recorded}{resume})"
            if isinstance(error, InputError):
                raise InputError(f"{error} {where}") from None
            if isinstance(error, OSError):  # a write's own error names no file (no space left on device)
                raise OSError(f"{error} {where}") from None
