"""UAV123 (``<root>/data_seq/UAV123/<video>/000001.jpg ...`` and ``<root>/anno/UAV123/<seq>.txt``,
``x,y,w,h`` per frame, ``NaN,NaN,NaN,NaN`` where the target is out of view).

A sequence is a range of its video's images: bird1 holds bird1_1 (images 1-253), bird1_2
(775-1477) and bird1_3. The ranges are got10k's ``uav123.json`` (in the installed got10k
package), which equals the UAV toolkit's ``configSeqs.m`` for all 123 sequences."""
from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

from samn_tracker.datasets.otb import Target
from samn_tracker.errors import InputError


# --version: the download's subsets, each with its own anno/<subset>/ (UAV20L: 20 whole videos).
SUBSETS = {"uav123": "UAV123", "uav20l": "UAV20L"}


@cache
def ranges(version: str = "uav123") -> dict[str, tuple[str, int, int]]:
    """Each sequence's video folder and first and last image number, in got10k's order."""
    spec = importlib.util.find_spec("got10k")
    if spec is None or spec.origin is None:
        raise InputError("UAV123's sequence ranges come from the got10k package: pip install 'samn_tracker[got10k]'")
    meta_file = Path(spec.origin).parent / "datasets" / "uav123.json"
    try:
        meta = json.loads(meta_file.read_text())[SUBSETS[version]]
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"cannot read UAV123's sequence ranges from {meta_file} ({err}); reinstall got10k") from None
    return {name: (m["folder_name"], m["start_frame"], m["end_frame"]) for name, m in meta.items()}


def find_sequence(root: Path | str, name: str, version: str = "uav123") -> Target | None:
    """The images and ground truth of a UAV123 or UAV20L sequence (both read the videos of
    ``data_seq/UAV123/``), None where ``root`` lacks either."""
    root = Path(root)
    video = ranges(version)[name][0]
    found = Target(name, root / "data_seq" / "UAV123" / video, root / "anno" / SUBSETS[version] / f"{name}.txt")
    return found if found.images.is_dir() and found.groundtruth.is_file() else None
