"""EAO/A/R tables and plots from `vot analysis` output; see docs/vot.md."""
import sys

from samn_tracker.vot.report import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
