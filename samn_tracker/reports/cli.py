"""``samn report``: every table and plot behind one command.

``samn report vot ...`` reads VOT toolkit analyses (``reports.vot``), ``samn report bench
...`` a ``samn bench`` result (``reports.speed``); anything else is the GOT-10k /
TrackingNet / LaSOT / DAVIS report over benchmark summaries (``reports.evaluation``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from samn_tracker.exits import guarded
from samn_tracker.reports.bench_result import bench_result_files, check_bench_result


@guarded("samn report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vot"]:
        from samn_tracker.reports.vot import main as vot_report
        return vot_report(argv[1:])
    if argv[:1] == ["bench"]:
        return bench(argv[1:])
    from samn_tracker.reports.evaluation import main as evaluation_report
    return evaluation_report(argv)


@guarded("samn report bench")
def bench(argv: list[str]) -> int:
    """``samn report bench``, once its files are known to be bench results: the report
    writes next to them, so a wrong file must be refused before anything is written."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("result", type=Path, nargs="?")
    path = parser.parse_known_args(argv)[0].result
    if path is not None:
        for file in bench_result_files(path):
            check_bench_result(file)
    from samn_tracker.reports.speed import main as bench_report
    return bench_report(argv)
