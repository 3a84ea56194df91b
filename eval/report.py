"""Tables and plots from benchmark summaries: same as `samn report` (see docs/benchmarks.md)."""
import sys

from samn_tracker.benchmarks.reports import main

if __name__ == "__main__":
    sys.exit(main())
