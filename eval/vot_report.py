"""EAO/A/R tables and plots from `vot analysis` output: same as `samn report vot` (see docs/vot.md)."""
import sys

from samn_tracker.reports.vot import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
