"""``samn eval got10k|trackingnet|lasot|otb|davis|keys ...``: dispatch to the benchmark adapters."""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from samn_tracker.command_parser import CommandParser
from samn_tracker.errors import InputError
from samn_tracker.exits import guarded

ADAPTERS = {
    "got10k": ("samn_tracker.evaluation.got10k",
               "GOT-10k val (AO, SR0.5, SR0.75; samn report plots the success curve) or test (the server zip)"),
    "trackingnet": ("samn_tracker.evaluation.trackingnet",
                    "TrackingNet TEST (the server zip) or an annotated split (Success, Precision)"),
    "lasot": ("samn_tracker.evaluation.lasot",
              "LaSOT test or all (Success, Precision, Norm. Precision, per attribute), as its toolkit scores"),
    "otb": ("samn_tracker.evaluation.otb",
            "OTB-2015 (OTB-100), OTB-2013, TB-50, all, UAV123 or UAV20L (Success, Precision, per attribute), as "
            "their toolkit scores"),
    "davis": ("samn_tracker.evaluation.davis",
              "DAVIS 2016 / 2017 semi-supervised (J&F, J, F) and the Codalab zip"),
    "keys": ("samn_tracker.evaluation.key_quality",
             "DAVIS: how well the memory read's keys carry a mask to a new frame (no decoder)"),
}

EXAMPLES = """examples:
  samn eval got10k --root /data/GOT-10k --subset val
  samn eval trackingnet --root /data/TrackingNet --split TEST --preset paper --device cuda
  samn eval lasot --root /data/LaSOT --toolkit-annos /data/LaSOT_Evaluation_Toolkit/annos
  samn eval otb --root /data/OTB100 --version otb2013
  samn eval davis --root /data/DAVIS --year 2016 --sequences blackswan bmx-trees
  samn eval keys --root /data/DAVIS --year 2016 --split val
  torchrun --nproc_per_node 4 -m samn_tracker.evaluation.cli got10k --root /data/GOT-10k

Results are written per sequence as each one finishes: an interrupted run keeps the
finished sequences, and the same command resumes. Options of one benchmark:
samn eval <benchmark> --help."""


def build_parser() -> CommandParser:
    """The help of ``samn eval`` (the adapters parse their own options)."""
    parser = CommandParser(prog="samn eval", epilog=EXAMPLES,
                                     description="Run SAMN on a benchmark, score it and pack the "
                                                 "submission; resumable, shardable with torchrun.")
    sub = parser.add_subparsers(dest="benchmark", title="benchmarks", metavar="BENCHMARK")
    for name, (_, help_text) in ADAPTERS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


@guarded("samn eval", on_interrupt="(finished sequences are kept: run the same command to resume)")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        build_parser().print_help()
        return 0
    if not argv:
        raise InputError(f"choose a benchmark: samn eval {{{'|'.join(ADAPTERS)}}} [options] "
                         "(samn eval --help)")
    if argv[0] not in ADAPTERS:
        raise InputError(f"unknown benchmark {argv[0]!r}; choose from {', '.join(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[argv[0]][0]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
