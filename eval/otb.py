"""Run SAMN on OTB: same as `samn eval otb` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.otb import main

if __name__ == "__main__":
    sys.exit(main())
