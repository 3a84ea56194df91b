"""Create a VOT toolkit workspace that uses SAMN's stacks and tracker registry.

``samn vot workspace DIR --stack vot2018`` works from an installed package (no source
checkout): ``config.yaml`` names the stack file inside the package, and ``trackers.ini``
is the package's registry (``samn_tracker/vot/trackers.ini``, the file the checkout's
top-level ``trackers.ini`` links to) without its ``paths = .`` lines, which only make a
checkout importable. The local stacks also build their sequences from a DAVIS folder
(``--davis``, else ``$SAMN_DATA``, as ``samn vot local-stack``).

Every input is checked before anything is written, and the workspace is built in a
hidden folder beside ``DIR`` and moved into place whole, so a failed or interrupted run
leaves nothing. A folder that already holds a workspace is refused unless
``--overwrite`` is given; it is then replaced as a whole, its ``results``, ``analysis``
and ``cache`` too (they belong to the stack and sequences replaced, and the toolkit
would reuse them), except the ``trackers.ini`` entries the package does not define:
the user's own trackers are kept.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from samn_tracker.command_parser import CommandParser
from samn_tracker import atomic
from samn_tracker.datasets.roots import DATA_VARIABLE, data_root
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.run_folder import check_writable
from samn_tracker.vot import STACKS_DIR
from samn_tracker.vot.local_stack import LocalStackOptions, build_local_stack, check_davis_folder

# The local stacks and how their sequences are built (``local_lt``: a 20-frame away span
# after every 30 frames, so most DAVIS sequences lose the target two or three times).
LOCAL_STACKS = {"local_box": LocalStackOptions(groundtruth="box"),
                "local_mask": LocalStackOptions(groundtruth="mask"),
                "local_lt": LocalStackOptions(groundtruth="box", away_every=30, away_for=20)}
STACKS = ("vot2016", "vot2017", "vot2018", "vot2019", "vot2020", "vot2021", "vot2022", "vot2022box",
          "vot2018lt", "vot2019lt", "vot2020lt", "vot2021lt", "vot2022lt", *LOCAL_STACKS)

REGISTRY = Path(__file__).with_name("trackers.ini")
MARKER = "config.yaml"  # what makes a folder a workspace
SECTION = re.compile(r"\s*\[([^\]]+)\]\s*")


def trackers_ini() -> str:
    """The registry text without its ``paths = .`` lines: an installed package is
    importable from anywhere, and a workspace is not the checkout."""
    lines = [line for line in REGISTRY.read_text().splitlines() if line.partition("=")[0].strip() != "paths"]
    return "\n".join(lines) + "\n"


def ini_sections(text: str) -> dict[str, str]:
    """Each ``[name]`` section of an ini text with its lines as written (comments, order
    and spacing kept, which configparser would lose)."""
    sections: dict[str, str] = {}
    name = None
    for line in text.splitlines(keepends=True):
        header = SECTION.fullmatch(line.rstrip("\n"))
        if header:
            name = header.group(1).strip()
            sections[name] = ""
        if name is not None:
            sections[name] += line if line.endswith("\n") else line + "\n"
    return sections


@dataclass
class WorkspacePlan:
    """A checked request: nothing is written until ``write_workspace``."""

    directory: Path
    stack: str
    davis: Optional[Path]        # the DAVIS folder a local stack's sequences come from
    replaced: list[str]          # what the folder holds now (empty: new or empty)
    own_entries: dict[str, str]  # trackers.ini sections of the user's, kept

    def replacing_note(self) -> str:
        """One line saying what ``--overwrite`` replaces and keeps."""
        kept = f"; keeping its own trackers.ini entries {', '.join(self.own_entries)}" if self.own_entries else ""
        return f"replacing the workspace in {self.directory} ({', '.join(self.replaced)}){kept}"


def plan_workspace(directory: Path | str, stack: str, davis: Optional[Path | str] = None,
                   overwrite: bool = False) -> WorkspacePlan:
    """Check a request; InputError naming the value for an unknown stack, a missing or
    unneeded DAVIS folder, or a destination that cannot take a workspace."""
    if stack not in STACKS:
        raise InputError(f"unknown stack {stack!r}; choose one of {', '.join(STACKS)}")
    if stack in LOCAL_STACKS:
        davis = check_davis_folder(data_root(davis, "--davis"))
    elif davis is not None:
        raise InputError(f"--davis is for the local stacks ({', '.join(LOCAL_STACKS)}); "
                         f"the toolkit downloads {stack}'s sequences itself")
    directory = Path(directory)
    replaced = _held(directory, overwrite)
    registry = directory / "trackers.ini"
    own = ini_sections(registry.read_text()) if replaced and registry.is_file() else {}
    package = ini_sections(REGISTRY.read_text())
    return WorkspacePlan(directory, stack, davis, replaced,
                         {name: text for name, text in own.items() if name not in package})


def _held(directory: Path, overwrite: bool) -> list[str]:
    """What ``directory`` holds, for a folder that may receive a workspace."""
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file; give a folder for the workspace")
    if not str(directory.absolute()).isascii():
        raise InputError(f"{directory.absolute()} has characters outside ASCII, and the TraX library through "
                         "which the toolkit runs every tracker fails on such a workspace path (a protocol "
                         "error); give a workspace path of ASCII characters")
    check_writable(directory, directory, "the workspace")
    held = sorted(e.name + "/" * e.is_dir() for e in directory.iterdir()) if directory.is_dir() else []
    if held and not (directory / MARKER).is_file():
        raise InputError(f"{directory} is a folder with other files in it (no {MARKER}); "
                         "give a new or empty folder")
    if held and not overwrite:
        raise InputError(f"{directory} already holds a VOT workspace; add --overwrite to replace it "
                         "(its results, analysis and cache go too)")
    return held


def write_workspace(plan: WorkspacePlan) -> Path:
    """Write ``config.yaml``, ``trackers.ini`` (the user's own entries after the package's)
    and a local stack's ``sequences``, then put them in place of the folder's content.
    Official datasets are downloaded by the toolkit on first use (``vot evaluate``)."""
    with atomic.directory(plan.directory) as folder:
        (folder / "trackers.ini").write_text("\n".join([trackers_ini(), *plan.own_entries.values()]))
        (folder / MARKER).write_text(
            f"registry:\n- ./trackers.ini\nstack: {STACKS_DIR / (plan.stack + '.yaml')}\nsequences: sequences\n")
        if plan.davis is not None:
            build_local_stack(plan.davis, folder / "sequences", LOCAL_STACKS[plan.stack])
    return plan.directory


@guarded("samn vot workspace", on_interrupt="(nothing written)")
def main(argv: Optional[list[str]] = None) -> int:
    parser = CommandParser(prog="samn vot workspace", description=__doc__.split("\n\n")[0], epilog="""examples:
  samn vot workspace ~/vot/vot2018 --stack vot2018
  samn vot workspace ~/vot/lt2019 --stack vot2019lt
  samn vot workspace vot_local --stack local_box --davis ../shared/data/davis16
  samn vot workspace ~/vot/vot2018 --stack vot2018 --overwrite   (results, analysis and cache go too)
then: vot evaluate --workspace ~/vot/vot2018 samn""")
    parser.add_argument("directory", type=Path, help="a new or empty folder, or a workspace with --overwrite")
    parser.add_argument("--stack", choices=STACKS, required=True)
    parser.add_argument("--davis", type=Path,
                        help=f"DAVIS 2016 folder the local stacks' sequences come from (default: ${DATA_VARIABLE})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the workspace in DIRECTORY: its results, analysis and cache go too; "
                             "trackers.ini entries of your own are kept")
    args = parser.parse_args(argv)
    plan = plan_workspace(args.directory, args.stack, args.davis, args.overwrite)
    if plan.replaced:
        print(f"samn vot workspace: {plan.replacing_note()}", file=sys.stderr)
    print(write_workspace(plan))
    return 0
