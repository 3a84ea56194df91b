"""Create a VOT toolkit workspace that uses SAMN's stacks and tracker entries.

``python -m samn_tracker.vot.workspace DIR --stack vot2018`` works from an installed
package (no source checkout): ``config.yaml`` names the stack file inside the package
and a ``trackers.ini`` with the ``samn``, ``samn_mask`` and ``samn_paper`` entries is
written next to it. The local stacks also build their sequences from a DAVIS folder.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from samn_tracker.errors import InputError
from samn_tracker.vot import STACKS_DIR
from samn_tracker.vot.local_stack import LocalStackOptions, build_local_stack

STACKS = ("vot2016", "vot2017", "vot2018", "vot2019", "vot2020", "local_box", "local_mask")
LOCAL_GROUNDTRUTH = {"local_box": "box", "local_mask": "mask"}

ENTRIES = {
    "samn": ("SAMN (lite)", "lite", "auto", 300),
    "samn_mask": ("SAMN (lite, mask output)", "lite", "mask", 300),
    "samn_paper": ("SAMN (paper, ResNet-50)", "paper", "auto", 600),
}


def trackers_ini(paths: Optional[str] = None) -> str:
    """Registry text; ``paths`` (e.g. a source checkout) is put on the tracker's PYTHONPATH."""
    blocks = []
    for name, (label, preset, output, timeout) in ENTRIES.items():
        lines = [f"[{name}]", f"label = {label}", "protocol = traxpython",
                 "command = samn_tracker.vot.trax_server"]
        if paths:
            lines.append(f"paths = {paths}")
        lines += [f"timeout = {timeout}", f"env_SAMN_VOT_PRESET = {preset}", f"env_SAMN_VOT_OUTPUT = {output}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


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


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--stack", choices=STACKS, required=True)
    parser.add_argument("--davis", type=Path, help="DAVIS 2016 folder (local stacks)")
    args = parser.parse_args(argv)
    print(create_workspace(args.directory, args.stack, args.davis))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
