"""Run SAMN on got10k: same as `samn eval got10k` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.got10k import main

if __name__ == "__main__":
    sys.exit(main())
