"""Split lists: which sequences a split of a dataset holds, read in one place.

Three formats: name lists (GOT-10k ``list.txt``, DAVIS 2017 ``ImageSets/2017/<split>.txt``),
DAVIS 2016 lists of frame paths (``/JPEGImages/480p/<seq>/00000.jpg /Annotations/...``,
the sequence is the frame's folder) and the shared data's ``splits.txt``
(``<split> <sequence>`` lines). In all of them ``#`` starts a comment and blank lines
are skipped.
"""
from __future__ import annotations

from pathlib import Path

from samn_tracker.errors import InputError

SPLITS_FILE = "splits.txt"


def _rows(path: Path) -> list[tuple[str, list[str]]]:
    """(line, words without the comment) of every line that has words."""
    rows = []
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            rows.append((line, words))
    return rows


def read_name_list(path: Path | str) -> list[str]:
    """Sequence names of a list file in order, without repeats: the first word of each
    line, or the folder of a frame path (DAVIS 2016). An empty list is an error: a benchmark
    run over it would pack an empty zip and fail on having nothing to score."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"sequence list not found: {path}")
    names: list[str] = []
    for _, words in _rows(path):
        name = Path(words[0]).parent.name if "/" in words[0] else words[0]
        if name not in names:
            names.append(name)
    if not names:
        raise InputError(f"sequence list {path} names no sequence")
    return names


def read_splits(root: Path | str) -> dict[str, str]:
    """``root/splits.txt`` as {sequence: split}, in file order."""
    path = Path(root) / SPLITS_FILE
    if not path.is_file():
        raise InputError(f"sequence split list: file {path} does not exist")
    splits = {}
    for line, words in _rows(path):
        if len(words) != 2:
            raise InputError(f"{path}: expected '<split> <sequence>', got {line!r}")
        splits[words[1]] = words[0]
    return splits


def splits_root(folder: Path) -> Path | None:
    """The nearest of ``folder`` and its parents that holds a ``splits.txt``: the tree
    whose eval sequences training must leave alone."""
    here = Path(folder).resolve()
    return next((a for a in (here, *here.parents) if (a / SPLITS_FILE).is_file()), None)


def names_in_split(root: Path | str, split: str) -> list[str]:
    """The sequences ``root/splits.txt`` puts in ``split``, in file order."""
    splits = read_splits(root)
    names = [name for name, s in splits.items() if s == split]
    if not names:
        raise InputError(f"{Path(root) / SPLITS_FILE} has no sequence in split {split!r} "
                         f"(it has {', '.join(sorted(set(splits.values())))})")
    return names
