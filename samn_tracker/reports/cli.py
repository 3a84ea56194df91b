"""``samn report``: every table and plot behind one command.

``samn report vot ...`` reads VOT toolkit analyses (``reports.vot``), ``samn report bench
...`` a ``samn bench`` result (``reports.speed``); anything else is the GOT-10k /
TrackingNet / DAVIS report over benchmark summaries (``reports.evaluation``).
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from samn_tracker.exits import guarded

KINDS = {"vot": "samn_tracker.reports.vot", "bench": "samn_tracker.reports.speed"}


@guarded("samn report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in KINDS:
        return importlib.import_module(KINDS[argv[0]]).main(argv[1:])
    from samn_tracker.reports.evaluation import main as evaluation_report
    return evaluation_report(argv)
