"""``samn vot workspace|local-stack ...``: the VOT toolkit helpers (see docs/vot.md)."""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded

COMMANDS = {
    "workspace": ("samn_tracker.vot.workspace",
                  "a VOT toolkit workspace anywhere: config.yaml, trackers.ini, local stacks' sequences"),
    "local-stack": ("samn_tracker.vot.local_stack",
                    "VOT-layout sequences from a DAVIS 2016 folder (box or mask ground truth)"),
}


def build_parser() -> CommandParser:
    """The help of ``samn vot`` (the commands parse their own options)."""
    parser = CommandParser(prog="samn vot", epilog="""examples:
  samn vot workspace ~/vot/vot2018 --stack vot2018
  samn vot workspace vot_local --stack local_box --davis ../shared/data/davis16
  samn vot local-stack --davis ../shared/data/davis16 --out vot_workspace/local_box/sequences

Options of one command: samn vot <command> --help.""", description="Helpers for the VOT toolkit "
                                     "(vot evaluate / vot analysis run SAMN over TraX).")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


@guarded("samn vot")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        build_parser().print_help()
        return 0
    if not argv or argv[0] not in COMMANDS:
        given = f"unknown command {argv[0]!r}; choose" if argv else "choose a command"
        raise InputError(f"{given} from {', '.join(COMMANDS)} (samn vot --help)")
    return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
