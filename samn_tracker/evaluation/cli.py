"""``samn eval got10k|trackingnet|davis ...``: dispatch to the benchmark adapters."""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

ADAPTERS = {
    "got10k": "samn_tracker.evaluation.got10k",
    "trackingnet": "samn_tracker.evaluation.trackingnet",
    "davis": "samn_tracker.evaluation.davis",
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ADAPTERS:
        names = "|".join(ADAPTERS)
        print(f"usage: samn eval {{{names}}} [options]  (samn eval <benchmark> --help for options)",
              file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return importlib.import_module(ADAPTERS[argv[0]]).main(argv[1:])
