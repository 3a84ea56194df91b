"""``samn report``: ``samn report vot ...`` for VOT toolkit analyses, otherwise the
GOT-10k / TrackingNet / DAVIS report over benchmark summaries."""
from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["vot"]:
        from samn_tracker.vot.report import main as vot_report
        return vot_report(argv[1:])
    from samn_tracker.evaluation.reports import main as benchmark_report
    return benchmark_report(argv)
