"""Run SAMN on LaSOT: same as `samn eval lasot` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.lasot import main

if __name__ == "__main__":
    sys.exit(main())
