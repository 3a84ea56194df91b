"""Run SAMN on davis: same as `samn eval davis` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.davis import main

if __name__ == "__main__":
    sys.exit(main())
