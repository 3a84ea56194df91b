"""Run SAMN on davis: same as `samn eval davis` (see docs/benchmarks.md)."""
import sys

from samn_tracker.benchmarks.davis import main

if __name__ == "__main__":
    sys.exit(main())
