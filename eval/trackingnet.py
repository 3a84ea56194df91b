"""Run SAMN on trackingnet: same as `samn eval trackingnet` (see docs/evaluation.md)."""
import sys

from samn_tracker.evaluation.trackingnet import main

if __name__ == "__main__":
    sys.exit(main())
