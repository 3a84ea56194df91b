"""Command-line options shared by the benchmark commands (tracker choice, device, output)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, Container, Optional, Sequence

from samn_tracker.command_parser import (THREADS_HELP, CommandParser, check_groups, comma_names, positive_int,
                                         seed_number)
from samn_tracker.devices import Rank, use_cpu_threads
from samn_tracker.evaluation.run_record import claim, hold, settings_record
from samn_tracker.evaluation.runner import ResultWriter, TrackerFactory, run_sequences, samn_factory, wait_for_all
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded, note
from samn_tracker.config import PRECISIONS, PRESETS
from samn_tracker.run_folder import check_writable


def add_tracker_arguments(parser: CommandParser) -> None:
    parser.add_argument("--preset", default="lite", choices=sorted(PRESETS),
                        help="tracker configuration (default: lite)")
    parser.add_argument("--weights", help="checkpoint (.pth); default: the preset's built-in one")
    parser.add_set_option()
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="network precision (fp32; bf16 / fp16 under autocast)")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda:LOCAL_RANK when CUDA is present, else cpu), cpu, cuda:N")
    parser.add_argument("--seed", type=seed_number, default=0)
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help=THREADS_HELP + "; under torchrun each process's own")
    parser.add_argument("--batch", type=positive_int, default=1, metavar="N",
                        help="track N targets in lockstep, one batched network pass per frame "
                             "(faster on a GPU; results equal up to float rounding)")
    parser.add_groups_option()
    parser.add_argument("--tracker-name",
                        help="name of the results folder and of the table row (default: samn_<preset>)")
    parser.add_sequences_option("run / score only these sequences (default: the whole split); one starting "
                                "with '-' (a TrackingNet id) needs the = form: --sequences=-3TIfnTSM6c_2,NAME2")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def tracker_name(args: argparse.Namespace) -> str:
    name = args.tracker_name or f"samn_{args.preset}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise InputError(f"--tracker-name {name!r} must be letters, digits and _ . + - only")
    return name


def tracker_factory(args: argparse.Namespace) -> TrackerFactory:
    """``samn_factory`` of the command's settings; a tracker on a CPU gets ``--threads``' count."""
    make = samn_factory(args.preset, args.weights, args.overrides, args.seed, args.precision)

    def build(device):
        tracker = make(device)
        use_cpu_threads(tracker, args.threads)
        return tracker

    return build


def requested(names: Optional[list[str]]) -> Optional[list[str]]:
    """The ``--sequences`` names (None: not given), commas split, each once: a name given
    twice would be tracked twice and packed twice. A shell's completion of a sequence folder
    ends it with ``/``, which no name has: dropped."""
    if names is None:
        return None
    unique, repeated = comma_names(n.strip().rstrip("/") for item in names for n in item.split(","))
    if not unique:
        raise InputError("--sequences names no sequence")
    if repeated:
        note(f"--sequences: {listed(repeated)} given more than once; each is taken once")
    return unique


def listed(names: Sequence[str], limit: int = 5) -> str:
    """Names for a one-line message: the first ``limit``, then how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def select(sequences: list, names: list[str] | None, source: Path) -> list:
    """Keep the ``--sequences`` (all when ``names`` is None); unknown names raise InputError."""
    names = requested(names)
    if names is None:
        return sequences
    known = {s.name: s for s in sequences}
    check_known(names, known, source)
    return [known[n] for n in names]


def check_known(names: Sequence[str], known: Container[str], source: Path | str, why: str = "") -> None:
    """Raise InputError naming the ``names`` that are not ``known`` sequences of ``source``
    (a folder, or a benchmark's split), with ``why`` that matters where it is not plain."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"sequences not in {source}: {listed(unknown)}{f' ({why})' if why else ''}")


def check_root(root: Path, split: str, marker: str, benchmark: str, option: str) -> None:
    """Refuse, before anything else, a ``--root`` without ``<split>/<marker>``, saying what to
    fix: a split the root lacks is named with those it has, and a root given one folder too
    high or too low with the folder beside it that is the root."""
    if (root / split / marker).exists():
        return
    if not root.is_dir():
        raise InputError(f"--root {root} is not a folder")
    has = sorted(p.name for p in root.iterdir() if (p / marker).exists())
    if has:
        raise InputError(f"{option} {split}: no {root / split / marker}; {root} has {', '.join(has)}")
    raise InputError(f"--root {root} is not a {benchmark} root (no {root / split / marker})"
                     + near_root(root, Path(split) / marker))


def near_root(root: Path, marker: Path | str) -> str:
    """``'; give --root X'`` for the folder above or below ``root`` that holds ``marker``, or ''."""
    near = [root.parent, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    found = [p for p in near if (p / marker).exists()]
    return f"; give --root {found[0]}" if found else ""


def prepare(args: argparse.Namespace, run_dir: Path, beside: Sequence[Path] = ()) -> None:
    """Before anything is tracked or written: ``--batch`` / ``--groups`` agree, ``--out`` can
    take ``run_dir`` and the folders ``beside`` it that the run writes at its end (the zip's,
    the summary's: a file in their place failed the run after its last sequence), and a run
    that tracks records its settings beside it, or is refused when the folder holds results
    made with others or another run is writing it (``run_record``)."""
    check_groups(args.batch, args.groups)
    for place in (run_dir, *beside):
        check_writable(place, args.out)
    if not args.score_only:
        rank = Rank.from_env()
        rank.device(args.device)  # an unusable --device fails before the record is written
        if rank.rank == 0:  # one per run: torchrun ends a run's other ranks when its rank 0 is refused
            hold(run_dir)
        claim(run_dir, settings_record(args))


def print_coverage(scored: int, split_size: Optional[int], split: str) -> None:
    """Say so when the summary covers part of the split (``--sequences``)."""
    if split_size is None:
        print(f"the summary covers the {scored} sequences given by --sequences, not a whole split "
              f"(no sequence list of {split} here)")
    elif scored < split_size:
        print(f"the summary covers {scored} of the {split_size} sequences of {split} (--sequences)")


RESUME_HINT = "(finished sequences are kept: run the same command to resume)"


def run_command(command: str, parser: CommandParser,
                run: Callable[[argparse.Namespace], int], argv: Optional[Sequence[str]]) -> int:
    """Parse and run; bad input and Ctrl-C end as one line each (``samn_tracker.exits``)."""
    return guarded(command, on_interrupt=RESUME_HINT)(lambda: run(parser.parse_args(argv)))()


def run_shard(args: argparse.Namespace, sequences: list, writer: ResultWriter,
              missing_score_zero: bool = False) -> bool:
    """Track this rank's share of ``sequences`` (unless ``--score-only``); returns True on
    rank 0 once every rank's results exist, False on the other ranks. Rank 0 waits only for
    ranks that track: with ``--score-only`` or alone, a sequence without results is an
    error naming it, unless the benchmark scores it as zero (``missing_score_zero``)."""
    shard = Rank.from_env()
    if not args.score_only:
        run_sequences(sequences, tracker_factory(args), writer, shard, args.device,
                      progress=not args.no_progress, batch=args.batch, groups=args.groups)
    if shard.rank != 0:
        return False
    if shard.world > 1 and not args.score_only:
        wait_for_all(sequences, writer)
        return True
    missing = [s.name for s in sequences if not (writer.scorable(s) if args.score_only else writer.is_done(s))]
    if missing and not missing_score_zero:
        raise InputError(f"no complete results for {len(missing)} of {len(sequences)} sequences: {listed(missing)} "
                         "(SAMN's own: run without --score-only to track them; another tracker's results need "
                         "a file for each)")
    return True
