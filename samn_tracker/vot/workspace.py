"""Create a VOT toolkit workspace that uses SAMN's stacks and tracker registry.

``samn vot workspace DIR --stack vot2018`` works from an installed package (no source
checkout): ``config.yaml`` names the stack file inside the package, and ``trackers.ini``
is the package's registry (``samn_tracker/vot/trackers.ini``, the file the checkout's
top-level ``trackers.ini`` links to) without its ``paths = .`` lines, which only make a
checkout importable. The local stacks also build their sequences from a DAVIS folder.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.vot import STACKS_DIR
from samn_tracker.vot.local_stack import LocalStackOptions, build_local_stack

STACKS = ("vot2016", "vot2017", "vot2018", "vot2019", "vot2020", "local_box", "local_mask")
LOCAL_GROUNDTRUTH = {"local_box": "box", "local_mask": "mask"}

REGISTRY = Path(__file__).with_name("trackers.ini")


def trackers_ini(paths: Optional[str] = None) -> str:
    """The registry text; ``paths`` (e.g. a source checkout) replaces each entry's
    ``paths = .``, None drops it (an installed package is importable anyway)."""
    lines = []
    for line in REGISTRY.read_text().splitlines():
        if line.partition("=")[0].strip() != "paths":
            lines.append(line)
        elif paths:
            lines.append(f"paths = {paths}")
    return "\n".join(lines) + "\n"


def create_workspace(directory: Path | str, stack: str, davis: Optional[Path | str] = None) -> Path:
    """Write ``config.yaml`` and ``trackers.ini`` in ``directory``; for a local stack with
    ``davis`` given, also its ``sequences``. Official datasets are downloaded by the
    toolkit on first use (``vot evaluate``)."""
    if stack not in STACKS:
        raise InputError(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trackers.ini").write_text(trackers_ini())
    (directory / "config.yaml").write_text(
        f"registry:\n- ./trackers.ini\nstack: {STACKS_DIR / (stack + '.yaml')}\nsequences: sequences\n")
    if stack in LOCAL_GROUNDTRUTH:
        if davis is None:
            raise InputError(f"stack {stack} needs --davis (a DAVIS 2016 folder) to build its sequences")
        build_local_stack(davis, directory / "sequences", LocalStackOptions(groundtruth=LOCAL_GROUNDTRUTH[stack]))
    return directory


@guarded("samn vot workspace")
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="samn vot workspace", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--stack", choices=STACKS, required=True)
    parser.add_argument("--davis", type=Path, help="DAVIS 2016 folder (local stacks)")
    args = parser.parse_args(argv)
    print(create_workspace(args.directory, args.stack, args.davis))
    return 0
