"""Tables and plots: same as `samn report` (vot, bench, or benchmark summaries; see docs/evaluation.md)."""
import sys

from samn_tracker.reports.cli import main

if __name__ == "__main__":
    sys.exit(main())
