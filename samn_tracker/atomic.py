"""Atomic result files: a result either exists complete or not at all.

Resuming a run treats an existing file as finished, so a file must never be visible
half-written (Ctrl-C, a killed job, a full disk): everything is written to a temporary
name in the same folder and renamed with ``os.replace``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(path: Path) -> str:
    """A temporary name's start: the file's own name, which says whose it is, unless that
    would take the temporary name past a file system's 255 bytes."""
    return f".{path.name}." if len(os.fsencode(path.name)) <= 200 else ".samn-"


@contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """A temporary file beside ``path`` (same suffix, for writers that look at it) that
    replaces ``path`` when the block ends without error, and is removed otherwise.
    The result gets the permissions a plain ``open`` would give (mkstemp's are 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


def save_figure(figure, stem: Path, **savefig) -> list[Path]:
    """A matplotlib ``figure`` as ``stem``.png and .pdf, each replaced atomically."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        with replacing(path) as tmp:
            figure.savefig(tmp, format=path.suffix[1:], **savefig)
    return paths


@contextmanager
def directory(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` that replaces it (``replace_directory``)
    once the block finishes without error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide results from the rest of a shared machine
        yield tmp
        replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_directory(new: Path, path: Path) -> None:
    """Put the folder ``new`` in place of ``path``, replaced whole if it exists. The earlier
    folder is renamed aside first and removed last, so a failure in between leaves it
    beside (``.NAME.replaced``), never neither folder."""
    previous = path.with_name(_prefix(path) + "replaced")
    _remove(previous)  # left by an earlier failure
    if path.exists() or path.is_symlink():
        path.rename(previous)
    new.rename(path)
    _remove(previous)


def _remove(path: Path) -> None:
    """A folder, or a link (to a folder, whose contents are not ours to remove), if there."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def write_zip(path: Path | str, members: Iterable[tuple[Path, str]]) -> None:
    """Zip ``(file, name inside the zip)`` pairs into ``path`` atomically."""
    with replacing(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file, name in members:
                archive.write(file, name)
