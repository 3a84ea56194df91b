"""Tables and plots from benchmark summaries: same as `samn report` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.reports import main

if __name__ == "__main__":
    sys.exit(main())
