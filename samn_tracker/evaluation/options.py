"""Command-line options shared by the benchmark commands (tracker choice, device, output)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

from samn_tracker.devices import Rank
from samn_tracker.evaluation.runner import ResultWriter, TrackerFactory, run_sequences, samn_factory, wait_for_all
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded
from samn_tracker.model.network import PRECISIONS
from samn_tracker.settings import add_groups_option, add_set_option, check_groups, positive_int


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="lite", choices=["lite", "paper"],
                        help="tracker configuration (default: lite)")
    parser.add_argument("--weights", help="checkpoint (.pth); default: the preset's built-in one")
    add_set_option(parser)
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="network precision (fp32; bf16 / fp16 under autocast)")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda:LOCAL_RANK when CUDA is present, else cpu), cpu, cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=positive_int, default=1, metavar="N",
                        help="track N targets in lockstep, one batched network pass per frame "
                             "(faster on a GPU; results equal up to float rounding)")
    add_groups_option(parser)
    parser.add_argument("--tracker-name",
                        help="name of the results folder and of the table row (default: samn_<preset>)")
    parser.add_argument("--sequences", nargs="+", metavar="NAME",
                        help="run / score only these sequences (default: the whole split)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def tracker_name(args: argparse.Namespace) -> str:
    name = args.tracker_name or f"samn_{args.preset}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise InputError(f"--tracker-name {name!r} must be letters, digits and _ . + - only")
    return name


def tracker_factory(args: argparse.Namespace) -> TrackerFactory:
    return samn_factory(args.preset, args.weights, args.overrides, args.seed, args.precision)


def select(sequences: list, names: list[str] | None, source: Path) -> list:
    """Keep the named sequences (all when ``names`` is None); unknown names raise InputError."""
    if not names:
        return sequences
    known = {s.name: s for s in sequences}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"sequences not in {source}: {', '.join(unknown)}")
    return [known[n] for n in names]


RESUME_HINT = "(finished sequences are kept: run the same command to resume)"


def run_command(command: str, parser: argparse.ArgumentParser,
                run: Callable[[argparse.Namespace], int], argv: Optional[Sequence[str]]) -> int:
    """Parse and run; bad input and Ctrl-C end as one line each (``samn_tracker.exits``)."""
    return guarded(command, on_interrupt=RESUME_HINT)(lambda: run(parser.parse_args(argv)))()


def run_shard(args: argparse.Namespace, sequences: list, writer: ResultWriter) -> bool:
    """Track this rank's share of ``sequences`` (unless ``--score-only``); returns True on
    rank 0 once every rank's results exist, False on the other ranks."""
    shard = Rank.from_env()
    check_groups(args.batch, args.groups)
    if not args.score_only:
        run_sequences(sequences, tracker_factory(args), writer, shard, args.device,
                      progress=not args.no_progress, batch=args.batch, groups=args.groups)
    if shard.rank != 0:
        return False
    wait_for_all(sequences, writer)
    return True
